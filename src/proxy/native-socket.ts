/**
 * The sockets an HTTP session reads and writes (src/proxy/http-session.ts, src/proxy/upstream-pool.ts), on either
 * data path:
 *
 * - `ProxySocket`: what the sessions use of a socket, which a Node socket (net or TLS, the portable path) has;
 * - `NativeSocket`: the same on the native data path, a stream socket of the addon (native/relay.c). The addon
 *   reads, and hands what it read over once per loop iteration with the other events; a write goes to the kernel
 *   at once (uv_try_write), and what it does not take is queued in the addon: the write returns false and 'drain'
 *   follows. There is no stream machinery between the bytes and the session.
 *
 * A NativeSocket behaves as a Node socket made with `allowHalfOpen: true` and `noDelay: true`: events 'connect',
 * 'data', 'end' (the peer's end of stream), 'drain', 'timeout', 'error' (then 'close') and 'close', which comes
 * once the socket is gone: after destroy(), after an error, or once both ends have sent their end of stream. Two
 * differences, both of the sweeper that keeps idle timeouts in the addon: 'timeout' comes between the timeout and
 * 100 ms later (src/proxy/native-relay.ts), and the connect timeout of an upstream is kept the same way.
 * `writableLength` only says whether a write is waiting (the high-water mark) or not (0): a session asks it only
 * to know whether to wait for 'drain'.
 */
import { EventEmitter } from 'node:events';
import { getSystemErrorName } from 'node:util';

/** What the HTTP sessions use of a socket. */
export interface ProxySocket {
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
  write(data: Buffer): boolean;
  end(): unknown;
  end(data: Buffer): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  cork(): void;
  uncork(): void;
  setTimeout(ms: number): unknown;
  setKeepAlive(enable: boolean, initialDelayMs: number): unknown;
  readonly destroyed: boolean;
  readonly writable: boolean;
  readonly readable: boolean;
  readonly writableLength: number;
  readonly writableHighWaterMark: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly remoteAddress?: string | undefined;
}

/** What a NativeSocket asks of the addon (src/proxy/native-relay.ts `NativeRelay`). */
export interface StreamOps {
  ownStream(id: number, s: NativeSocket): void;
  peer(id: number): string | null;
  swrite(id: number, a: Buffer, b?: Buffer): boolean;
  send(id: number): void;
  sdestroy(id: number, reset: boolean): void;
  sread(id: number, on: boolean): void;
  sidle(id: number, ms: number): void;
  splice(a: number, b: number): boolean;
}

/**
 * Makes a tunnel of two sockets (a WebSocket after its 101, a CONNECT after its 2xx) when both are the addon's:
 * from then on the addon moves the bytes both ways (half-close and resets passed on, as the tcp relay does), and the
 * sockets' events go on as before, without 'data' (their byte counts grow at their close). False, and nothing
 * changes, when either is a Node socket: the session then carries the tunnel's bytes itself.
 */
export function spliceTunnel(a: ProxySocket, b: ProxySocket): boolean {
  return a instanceof NativeSocket && b instanceof NativeSocket && a.spliceWith(b);
}

/** Opens a socket to an upstream (it emits 'connect', or 'error' then 'close'). */
export type Dial = (host: string, port: number) => ProxySocket;

/** How much a paused NativeSocket reads ahead before the addon stops reading (a Node socket's readable high-water mark). */
const READ_AHEAD = 16 * 1024;

/** A stream socket's error, as a Node socket's ('error' event; never thrown): `code` is the errno's name. */
export class SocketError extends Error {
  constructor(
    readonly code: string,
    readonly errno: number,
  ) {
    super(code);
    this.name = 'SocketError';
  }
}

/** A stream socket of the native relay (see the file comment). */
export class NativeSocket extends EventEmitter implements ProxySocket {
  bytesRead = 0;
  bytesWritten = 0;
  destroyed = false;
  readonly writableHighWaterMark = 16 * 1024;
  private ended = false;
  private eof = false;
  /** A write returned false and its 'drain' has not come yet. */
  private blocked = false;
  private paused = false;
  /** Read while paused, not yet emitted (null: the end of stream), as a Node socket's read-ahead (see pause()). */
  private ahead: (Buffer | null)[] | null = null;
  private aheadBytes = 0;
  /** The addon stopped reading (read-ahead full). */
  private stopped = false;
  private corked: Buffer[] | null = null;
  private remote: string | null | undefined;
  /** A TLS socket's: the server name its hello asked for (null: none), and the protocol once the handshake is done. */
  servername: string | null = null;
  tlsVersion: string | null = null;

  constructor(
    private readonly relay: StreamOps,
    readonly id: number,
  ) {
    super();
    relay.ownStream(id, this);
  }

  get writable(): boolean {
    return !this.destroyed && !this.ended;
  }

  get readable(): boolean {
    return !this.destroyed && !this.eof;
  }

  get writableLength(): number {
    return this.blocked ? this.writableHighWaterMark : 0;
  }

  get remoteAddress(): string | undefined {
    if (this.remote === undefined) this.remote = this.relay.peer(this.id);
    return this.remote ?? undefined;
  }

  write(data: Buffer): boolean {
    if (!this.writable) return false;
    if (this.corked) {
      this.corked.push(data);
      return true;
    }
    this.bytesWritten += data.length;
    const ok = this.relay.swrite(this.id, data);
    if (!ok) this.blocked = true;
    return ok;
  }

  cork(): void {
    this.corked ??= [];
  }

  uncork(): void {
    const bufs = this.corked;
    if (!bufs) return;
    this.corked = null;
    if (bufs.length === 0 || !this.writable) return;
    let n = 0;
    for (const b of bufs) n += b.length;
    this.bytesWritten += n;
    const ok =
      bufs.length === 1
        ? this.relay.swrite(this.id, bufs[0]!)
        : bufs.length === 2
          ? this.relay.swrite(this.id, bufs[0]!, bufs[1]!)
          : this.relay.swrite(this.id, Buffer.concat(bufs, n));
    if (!ok) this.blocked = true;
  }

  end(data?: Buffer): this {
    if (data) this.write(data);
    this.uncork();
    if (this.ended || this.destroyed) return this;
    this.ended = true;
    this.relay.send(this.id);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.corked = null;
    this.relay.sdestroy(this.id, false);
    return this;
  }

  /**
   * Stops emitting 'data'. As a Node socket's stream does, it reads ahead up to the high-water mark (one read may
   * pass it) before the addon stops reading: a peer's reset is noticed meanwhile, and what was read is emitted on
   * resume(), before the end of stream if that came too.
   */
  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    const ahead = this.ahead;
    if (ahead) {
      this.ahead = null;
      this.aheadBytes = 0;
      for (let i = 0; i < ahead.length; i++) {
        if (this.destroyed) return this;
        if (this.paused) {
          // paused again by a listener: the rest waits for the next resume()
          this.ahead = ahead.slice(i);
          for (const b of this.ahead) if (b) this.aheadBytes += b.length;
          return this;
        }
        const b = ahead[i]!;
        if (b) this.emit('data', b);
        else this.emit('end');
      }
    }
    if (this.stopped && !this.destroyed) {
      this.stopped = false;
      this.relay.sread(this.id, true);
    }
    return this;
  }

  /** The idle timeout, from now (0: none): 'timeout' once per idle spell, as a Node socket's. */
  setTimeout(ms: number): this {
    if (!this.destroyed) this.relay.sidle(this.id, ms);
    return this;
  }

  /** The addon sets TCP keep-alive on every upstream connection (KEEPALIVE_S in native/relay.c). */
  setKeepAlive(): this {
    return this;
  }

  /** See spliceTunnel. What either read ahead while paused is emitted first; if that pauses it again, no splice. */
  spliceWith(other: NativeSocket): boolean {
    this.resume();
    other.resume();
    if (this.destroyed || other.destroyed || this.paused || other.paused || !this.relay.splice(this.id, other.id)) return false;
    this.stopped = other.stopped = false; // the splice reads both
    return true;
  }

  // ---- the addon's events (src/proxy/native-relay.ts dispatches them) ----

  connected(): void {
    if (!this.destroyed) this.emit('connect');
  }

  data(chunk: Buffer): void {
    if (this.destroyed) return;
    this.bytesRead += chunk.length;
    if (!this.paused) return void this.emit('data', chunk);
    (this.ahead ??= []).push(chunk);
    this.aheadBytes += chunk.length;
    if (this.aheadBytes >= READ_AHEAD && !this.stopped) {
      this.stopped = true;
      this.relay.sread(this.id, false);
    }
  }

  endOfStream(): void {
    this.eof = true;
    if (this.destroyed) return;
    if (this.paused) (this.ahead ??= []).push(null);
    else this.emit('end');
  }

  /** A TLS socket's hello came: 'hello' (the server name, or null), which must be answered (NativeRelay.tlsUse). */
  hello(servername: string | null): void {
    this.servername = servername;
    if (!this.destroyed) this.emit('hello', servername);
  }

  /** A TLS socket's handshake is done: 'secure'. */
  secure(version: string): void {
    this.tlsVersion = version;
    if (!this.destroyed) this.emit('secure');
  }

  drained(): void {
    this.blocked = false;
    if (!this.destroyed) this.emit('drain');
  }

  /** An error: the addon closes the socket ('close' follows). */
  failed(errno: number): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const code = getSystemErrorName(errno);
    if (this.listenerCount('error') > 0) this.emit('error', new SocketError(code, errno));
  }

  timedOut(): void {
    if (!this.destroyed) this.emit('timeout');
  }

  /** Gone; `splicedIn`/`splicedOut`: the bytes a splice read from it and wrote to it. */
  closed(splicedIn: number, splicedOut: number): void {
    this.bytesRead += splicedIn;
    this.bytesWritten += splicedOut;
    this.destroyed = true;
    this.emit('close');
  }
}
