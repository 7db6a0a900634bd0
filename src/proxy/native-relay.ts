/**
 * The proxy's two data paths for plain TCP and HTTP listeners, and the native one's JavaScript side.
 *
 * - `native`: the addon built from native/relay.c (`build/Release/glow_relay.node`, by `npm ci`) owns the sockets
 *   on Node's own libuv loop; every decision stays here. A tcp port's connections are relayed by the addon
 *   (src/proxy/native-session.ts picks the upstream, retries, refuses, counts); an http port's connections and the
 *   HTTP sessions' upstream connections are the addon's stream sockets (src/proxy/native-socket.ts), which the
 *   HTTP sessions read and write as they would Node sockets.
 * - `portable`: the JavaScript path (src/proxy/tcp-session.ts), the reference behaviour, used wherever the addon is
 *   not built, and on demand.
 *
 * `GLOW_PROXY_DATA_PATH=portable` forces the portable path; `native` requires the addon (the proxy fails to start
 * without it); unset, the native path is used when the addon loads. `GLOW_PROXY_ADDON` names another build of it
 * (the sanitizer build the tests run). On the native path an http port with certificates terminates TLS in the
 * addon too (stream sockets with OpenSSL on them; the addon asks which certificate a hello gets, see `tls` in
 * src/proxy/tcp-frontend.ts); a tcp port with TLS is Node's on either path, and UDP is always Node's.
 *
 * The addon reports what happens as events, batched once per loop iteration into one shared Float64Array (kind,
 * id, a, b per event). A relay connection: accepted (a: the listener), connected, connect failed (a: the negative
 * errno, b: 1 for a timeout) and closed (a: bytes read from the client, b: bytes written to it). A stream socket:
 * accepted, connected, data (a, b: where its bytes are in the shared data area), end of stream, drain, error (a:
 * the negative errno), idle timeout, closed (a, b: the bytes a splice read from it and wrote to it). A TLS stream
 * socket also: hello (a, b: where the server name it asked for is in the data area; b = 0: none), which tlsUse()
 * answers, and secure (a: the protocol version).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ProxyError } from './errors.js';
import { TLS_CIPHERS, TLS_CURVES, TLS_MIN_VERSION, type NativeTls } from './certificates.js';
import { NativeSocket, type StreamOps } from './native-socket.js';

export type DataPath = 'native' | 'portable';

/** What a native listener is told. */
export interface NativeListenerOwner {
  accepted(id: number): void;
}

/** What a native connection's owner is told. */
export interface NativeConnection {
  connected(): void;
  connectFailed(errno: number, timedOut: boolean): void;
  closed(bytesIn: number, bytesOut: number): void;
}

/** The addon's functions (native/relay.c); the stream sockets' are StreamOps' own, by id. */
interface Addon extends Omit<StreamOps, 'ownStream'> {
  init(onEvents: (n: number) => void, events: Float64Array, data: Buffer): number;
  listen(host: string, port: number, backlog: number, kind: number): number;
  closeListener(id: number): void;
  connect(id: number, ip: string, port: number, connectTimeoutMs: number, idleTimeoutMs: number): boolean;
  reset(id: number): void;
  abort(id: number): void;
  open(): number;
  sconnect(ip: string, port: number): number;
  tlsbase(minVersion: number, ciphers: string, ciphersuites: string, groups: string): void;
  tlsctx(cert: Buffer, key: Buffer): number;
  tlsfree(id: number): void;
  tlsuse(id: number, ctx: number): void;
}

/** What a native listener's connections are (L_RELAY, L_STREAMS, L_TLS in native/relay.c). */
export type ListenerKind = 'relay' | 'stream' | 'tls';
const LISTENER_KINDS: Record<ListenerKind, number> = { relay: 0, stream: 1, tls: 2 };
const TLS_VERSIONS: Record<string, number> = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 };

const EV_ACCEPT = 1;
const EV_CONNECTED = 2;
const EV_CONNECT_FAILED = 3;
const EV_CLOSED = 4;
const EV_S_CONNECTED = 5;
const EV_S_DATA = 6;
const EV_S_EOF = 7;
const EV_S_DRAIN = 8;
const EV_S_ERROR = 9;
const EV_S_TIMEOUT = 10;
const EV_S_CLOSED = 11;
const EV_T_HELLO = 12;
const EV_T_SECURE = 13;
/** The addon's batch (EV_BATCH in native/relay.c); init() checks the array is large enough. */
const BATCH = 2048;
/** The data area of a batch: reads of at most 64 KiB each, handed over when less than that is left. */
const DATA_AREA = 1024 * 1024;

/** Where `npm ci` builds the addon: build/Release of the package root (three folders above dist/src/proxy). */
export const ADDON_PATH = fileURLToPath(new URL('../../../build/Release/glow_relay.node', import.meta.url));

export class NativeRelay implements StreamOps, NativeTls {
  private readonly listeners = new Map<number, NativeListenerOwner>();
  private readonly connections = new Map<number, NativeConnection>();
  private readonly streams = new Map<number, NativeSocket>();
  private readonly events = new Float64Array(BATCH * 4);
  /** Where the addon puts what stream sockets read; each read is copied out (a session may keep it for long). */
  private readonly data = Buffer.alloc(DATA_AREA);
  private tlsReady = false;

  constructor(private readonly addon: Addon) {
    addon.init((n) => this.dispatch(n), this.events, this.data);
  }

  /**
   * Binds; throws an error whose `code` is the errno's name (EADDRINUSE...). Its connections are relay connections
   * (a tcp port), or stream sockets (an http port) the owner wraps in NativeSocket, plain or terminating TLS.
   */
  listen(host: string, port: number, owner: NativeListenerOwner, kind: ListenerKind = 'relay'): number {
    if (kind === 'tls') this.tlsBase();
    const id = this.addon.listen(host, port, 4096, LISTENER_KINDS[kind]);
    this.listeners.set(id, owner);
    return id;
  }

  /** Stops accepting at once (the port is free); the listener's connections go on. */
  closeListener(id: number): void {
    this.listeners.delete(id);
    this.addon.closeListener(id);
  }

  /** The connection's events go to `conn` until it closes. */
  own(id: number, conn: NativeConnection): void {
    this.connections.set(id, conn);
  }

  /** One connect attempt; its outcome comes back as connected() or connectFailed(). */
  connect(id: number, ip: string, port: number, connectTimeoutMs: number, idleTimeoutMs: number): boolean {
    return this.addon.connect(id, ip, port, connectTimeoutMs, idleTimeoutMs);
  }

  /** The stream socket's events go to `s` until it closes. */
  ownStream(id: number, s: NativeSocket): void {
    this.streams.set(id, s);
  }

  /** A stream socket to an upstream's address (an IP): a NativeSocket that emits 'connect', or 'error' then 'close'. */
  dial(ip: string, port: number): NativeSocket {
    return new NativeSocket(this, this.addon.sconnect(ip, port));
  }

  swrite(id: number, a: Buffer, b?: Buffer): boolean {
    return b === undefined ? this.addon.swrite(id, a) : this.addon.swrite(id, a, b);
  }

  send(id: number): void {
    this.addon.send(id);
  }

  sdestroy(id: number, reset: boolean): void {
    this.addon.sdestroy(id, reset);
  }

  sread(id: number, on: boolean): void {
    this.addon.sread(id, on);
  }

  sidle(id: number, ms: number): void {
    this.addon.sidle(id, ms);
  }

  splice(a: number, b: number): boolean {
    return this.addon.splice(a, b);
  }

  /** The addon's TLS settings, once: those of Node's contexts (src/proxy/certificates.ts). */
  private tlsBase(): void {
    if (this.tlsReady) return;
    const all = TLS_CIPHERS.split(':');
    const suites = all.filter((c) => c.startsWith('TLS_')).join(':');
    const ciphers = all.filter((c) => !c.startsWith('TLS_')).join(':');
    this.addon.tlsbase(TLS_VERSIONS[TLS_MIN_VERSION]!, ciphers, suites, TLS_CURVES);
    this.tlsReady = true;
  }

  tlsContext(cert: Buffer, key: Buffer): number {
    this.tlsBase();
    return this.addon.tlsctx(cert, key);
  }

  tlsFree(id: number): void {
    this.addon.tlsfree(id);
  }

  /** The answer to a TLS socket's hello: the context of the certificate it gets (0: none, the handshake fails). */
  tlsUse(id: number, ctx: number): void {
    this.addon.tlsuse(id, ctx);
  }

  reset(id: number): void {
    this.addon.reset(id);
  }

  abort(id: number): void {
    this.addon.abort(id);
  }

  peer(id: number): string | null {
    return this.addon.peer(id);
  }

  /** Connections the addon holds, closed ones not yet reported included (for tests). */
  get open(): number {
    return this.addon.open();
  }

  private dispatch(n: number): void {
    const ev = this.events;
    for (let i = 0; i < n * 4; i += 4) {
      const kind = ev[i]!;
      const id = ev[i + 1]!;
      if (kind === EV_ACCEPT) {
        const owner = this.listeners.get(ev[i + 2]!);
        // A listener closed meanwhile: nobody takes the connection (a relay connection or a stream socket; the
        // call about the other kind finds nothing).
        if (owner) owner.accepted(id);
        else {
          this.addon.reset(id);
          this.addon.sdestroy(id, true);
        }
        continue;
      }
      if (kind >= EV_S_CONNECTED) {
        const s = this.streams.get(id);
        if (!s) continue;
        if (kind === EV_S_DATA) {
          const at = ev[i + 2]!;
          const len = ev[i + 3]!;
          const chunk = Buffer.allocUnsafe(len); // a small one is a slice of Node's buffer pool
          this.data.copy(chunk, 0, at, at + len);
          s.data(chunk);
        } else if (kind === EV_S_DRAIN) s.drained();
        else if (kind === EV_S_EOF) s.endOfStream();
        else if (kind === EV_S_CONNECTED) s.connected();
        else if (kind === EV_S_ERROR) s.failed(ev[i + 2]!);
        else if (kind === EV_S_TIMEOUT) s.timedOut();
        else if (kind === EV_S_CLOSED) {
          this.streams.delete(id);
          s.closed(ev[i + 2]!, ev[i + 3]!);
        } else if (kind === EV_T_HELLO) {
          const at = ev[i + 2]!;
          const len = ev[i + 3]!;
          s.hello(len > 0 ? this.data.toString('latin1', at, at + len) : null);
        } else if (kind === EV_T_SECURE) s.secure(tlsVersionName(ev[i + 2]!));
        continue;
      }
      const conn = this.connections.get(id);
      if (!conn) continue;
      if (kind === EV_CONNECTED) conn.connected();
      else if (kind === EV_CONNECT_FAILED) conn.connectFailed(ev[i + 2]!, ev[i + 3] === 1);
      else if (kind === EV_CLOSED) {
        this.connections.delete(id);
        conn.closed(ev[i + 2]!, ev[i + 3]!);
      }
    }
  }
}

function tlsVersionName(v: number): string {
  for (const [name, n] of Object.entries(TLS_VERSIONS)) if (n === v) return name;
  return `0x${v.toString(16)}`;
}

let relay: NativeRelay | null = null;
let loadError: string | null = null;

/** The process's one native relay, or null with the reason in `nativeUnavailable()`. */
export function nativeRelay(): NativeRelay | null {
  if (relay || loadError) return relay;
  const file = process.env['GLOW_PROXY_ADDON'] || ADDON_PATH;
  if (!existsSync(file)) {
    loadError = `the native relay is not built (${file} is missing: \`npm ci\` builds it with node-gyp, which needs g++ and make)`;
    return null;
  }
  try {
    relay = new NativeRelay(createRequire(import.meta.url)(file) as Addon);
  } catch (e) {
    loadError = `the native relay did not load: ${(e as Error).message}`;
  }
  return relay;
}

/** Why the native path is not available (null when it is). */
export function nativeUnavailable(): string | null {
  nativeRelay();
  return loadError;
}

/**
 * The data path of this process's plain TCP listeners: from GLOW_PROXY_DATA_PATH, else native when the addon
 * loads. Throws when `native` is asked for and the addon is not there.
 */
export function chooseDataPath(wanted: string | undefined = process.env['GLOW_PROXY_DATA_PATH']): DataPath {
  if (wanted === 'portable') return 'portable';
  if (wanted !== undefined && wanted !== '' && wanted !== 'native') {
    throw new ProxyError('GLOW_E_PROXY_DATA_PATH', `GLOW_PROXY_DATA_PATH is ${wanted}: it is native or portable`);
  }
  if (nativeRelay()) return 'native';
  if (wanted === 'native') throw new ProxyError('GLOW_E_PROXY_DATA_PATH', `GLOW_PROXY_DATA_PATH is native, but ${loadError}`);
  return 'portable';
}
