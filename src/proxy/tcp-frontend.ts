/**
 * A listening TCP socket (`tcp bind:port`) and the connections it accepted. Its routes can be swapped at any time:
 * a new connection (and, for http, a new request) takes the routes in force; connections keep the route they
 * started on. Closing it stops accepting at once (the port is free for a new bind) and drains its connections.
 *
 * HTTP requests are routed by Host and path among the routes (src/proxy/host-router.ts). When the routes name
 * certificates the socket terminates TLS: each accepted connection is wrapped in a server TLSSocket whose SNI
 * callback picks the certificate of the route that serves the name (the port's default route's certificate
 * without SNI or for an unknown name). The contexts come from the certificate store, so a certificate reloaded on
 * disk serves the next handshake; connections already open keep theirs. A failed or slow (10 s) handshake is
 * counted and closed; it never reaches a session.
 *
 * A port runs on the native data path when the process has it (src/proxy/native-relay.ts): the addon owns the
 * listening socket and the connections. A plain `tcp` port's connections are relayed by the addon, each a
 * NativeTcpSession (`relay` mode); an `http` port's are stream sockets (src/proxy/native-socket.ts) read and
 * written by an HttpSession as it would a Node socket (`stream` mode); an `http` port with certificates
 * terminates TLS in the addon (`tls` mode): the addon reports each hello's server name, the same choice as the SNI
 * callback's answers it with the addon's context of that certificate (CertEntry.native), and the session starts
 * once the handshake is done, under the same timeout and failure counting. A `tcp` port with certificates is
 * Node's. On the native data path the HTTP sessions' upstream connections are the addon's stream sockets. A
 * port's mode is fixed when it binds (`mode`); routes that would change it make the proxy rebind the port
 * (src/proxy/proxy.ts), as a change of TLS does.
 */
import { PROXY_EVENTS } from './log-events.js';
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { CertEntry } from './certificates.js';
import { ProxyError } from './errors.js';
import { HostRouter, normalizeHost } from './host-router.js';
import { HttpSession } from './http-session.js';
import { PLAIN_CONNECTION, type ConnectionInfo, type RouteSource } from './route-source.js';
import type { LiveRoute } from './live-route.js';
import type { FrontendStats } from './metrics.js';
import type { FrontendSpec } from './routes-file.js';
import { isIP } from 'node:net';
import { nativeRelay, type DataPath, type ListenerKind, type NativeListenerOwner } from './native-relay.js';
import { NativeTcpSession } from './native-session.js';
import { NativeSocket, type Dial } from './native-socket.js';
import { dialNet } from './connector.js';
import type { Session } from './session.js';
import { TcpSession } from './tcp-session.js';

/** How long a client may take to complete its TLS handshake. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long a client may take from the first byte of an HTTP request head to its end (then 408). */
export const HEAD_TIMEOUT_MS = 10_000;

/** How a port with these routes runs on the native data path (null: on Node sockets), given the process's path. */
export type NativeMode = ListenerKind | null;

export function nativeMode(spec: FrontendSpec, path: DataPath): NativeMode {
  if (path !== 'native' || isIP(spec.bind) === 0) return null;
  if (spec.routes.every((r) => r.protocol === 'http')) return spec.tls ? 'tls' : 'stream';
  if (spec.routes.every((r) => r.protocol === 'tcp') && !spec.tls) return 'relay';
  return null;
}

export class TcpFrontend implements RouteSource, NativeListenerOwner {
  readonly key: string;
  spec!: FrontendSpec;
  bound = false;
  error: string | null = null;
  /** How it runs on the native data path, if it does (fixed for the frontend's life). */
  readonly mode: NativeMode;
  readonly dial: Dial;
  private server: Server | null = null;
  private nativeListener: number | null = null;
  // Set by setRoutes(), from the constructor on.
  private routes!: readonly LiveRoute[];
  private router!: HostRouter<LiveRoute>;
  only!: LiveRoute | null;
  fallback!: LiveRoute;
  maxHeadBytes!: number;
  readonly sessions = new Set<Session>();
  private readonly handshaking = new Set<TLSSocket | NativeSocket>();
  private drained: Promise<void> | null = null;
  private resolveDrained: (() => void) | null = null;
  private readonly forget = (s: Session) => {
    this.sessions.delete(s);
    if (this.resolveDrained && this.sessions.size === 0) this.resolveDrained();
  };
  private readonly sni = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
    const cert = this.sniCert(servername);
    if (cert === null) return cb(null); // the default context (the `secureContext` of the socket)
    if (cert.context === null) return cb(new ProxyError('GLOW_E_PROXY_TLS', `no certificate is loaded for ${servername}`));
    cb(null, cert.context);
  };

  constructor(
    spec: FrontendSpec,
    routes: readonly LiveRoute[],
    private readonly log: Logger,
    readonly stats: FrontendStats,
    readonly headTimeoutMs: number = HEAD_TIMEOUT_MS,
    path: DataPath = 'portable',
    private readonly handshakeTimeoutMs: number = TLS_HANDSHAKE_TIMEOUT_MS,
  ) {
    this.key = spec.key;
    this.mode = nativeMode(spec, path);
    const relay = path === 'native' ? nativeRelay() : null;
    // Upstreams given by name are connected with Node sockets (the addon connects to addresses).
    this.dial = relay ? (host, port) => (isIP(host) !== 0 ? relay.dial(host, port) : dialNet(host, port)) : dialNet;
    this.setRoutes(spec, routes);
  }

  /** The route of a new TCP connection (a tcp port has exactly one). */
  current(): LiveRoute {
    return this.routes[0]!;
  }

  route(host: string | null, path: string): LiveRoute | null {
    return this.router.match(host, path);
  }

  /** The certificate of the route that serves a client's server name; null: the port's default. */
  private sniCert(servername: string): CertEntry | null {
    const host = normalizeHost(servername);
    return host === null ? null : this.certFor(host);
  }

  /** The port's default certificate (without SNI, or for a name no route serves): its default route's, else any loaded. */
  private defaultCert(loaded: (c: CertEntry) => boolean): CertEntry | null {
    const f = this.fallback.cert;
    return f && loaded(f) ? f : (this.routes.find((r) => r.cert && loaded(r.cert))?.cert ?? null);
  }

  certFor(servername: string): CertEntry | null {
    for (const r of this.router.forHost(servername)) if (r.cert) return r.cert;
    return null;
  }

  get liveRoutes(): readonly LiveRoute[] {
    return this.routes;
  }

  /** The port's routes, now and after a reload (what is derived from them is derived here only). */
  setRoutes(spec: FrontendSpec, routes: readonly LiveRoute[]): void {
    this.spec = spec;
    this.routes = routes;
    this.router = new HostRouter(routes);
    this.only = this.router.only;
    this.fallback = defaultRoute(routes);
    this.maxHeadBytes = maxHead(routes);
    this.stats.tls ||= spec.tls;
  }

  /** On the native data path. */
  get native(): boolean {
    return this.mode !== null;
  }

  /** Binds; resolves either way (the error is kept in `error`). */
  listen(): Promise<void> {
    if (this.mode) return Promise.resolve(this.listenNative());
    return new Promise((resolve) => {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
      const onError = (e: NodeJS.ErrnoException) => {
        this.error = e.code ?? e.message;
        resolve();
      };
      server.once('error', onError);
      server.listen({ host: this.spec.bind, port: this.spec.port, backlog: 4096 }, () => {
        server.removeListener('error', onError);
        server.on('error', (e: Error) => this.log.warn({ event: PROXY_EVENTS.listenerError, frontend: this.key, err: e.message }, 'listener error'));
        this.server = server;
        this.bound = true;
        this.error = null;
        resolve();
      });
    });
  }

  private listenNative(): void {
    try {
      this.nativeListener = nativeRelay()!.listen(this.spec.bind, this.spec.port, this, this.mode!);
      this.bound = true;
      this.error = null;
    } catch (e) {
      this.error = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
  }

  /** A connection the native listener accepted. */
  accepted(id: number): void {
    const relay = nativeRelay()!;
    if (this.mode === 'stream') return this.start(new NativeSocket(relay, id), PLAIN_CONNECTION);
    if (this.mode === 'tls') return this.handshakeNative(new NativeSocket(relay, id));
    const session = new NativeTcpSession(relay, id, this.current(), this.forget);
    this.sessions.add(session); // its close (and so `forget`) always comes later, from the next batch of events
  }

  private accept(socket: Socket): void {
    if (this.spec.tls) return this.handshake(socket);
    this.start(socket, PLAIN_CONNECTION);
  }

  private start(socket: Socket | NativeSocket, conn: ConnectionInfo): void {
    const route = this.current();
    const session =
      route.spec.protocol === 'http' || socket instanceof NativeSocket
        ? new HttpSession(socket, this, this.forget, conn)
        : new TcpSession(socket, route, this.forget, conn);
    this.sessions.add(session); // its 'close' (and so `forget`) always comes later, asynchronously
  }

  private handshake(raw: Socket): void {
    const http = this.fallback.spec.protocol === 'http';
    const def = this.defaultCert((c) => c.context !== null)?.context;
    const t = new TLSSocket(raw, {
      isServer: true,
      ...(def ? { secureContext: def } : {}),
      SNICallback: this.sni,
      ...(http ? { ALPNProtocols: ['http/1.1'] } : {}),
      requestCert: false,
    });
    this.handshaking.add(t);
    let secure = false;
    const failed = () => {
      if (secure || !this.handshaking.delete(t)) return;
      this.stats.tlsHandshakeFailures += 1;
      t.destroy();
    };
    t.setTimeout(this.handshakeTimeoutMs, failed);
    t.on('error', failed);
    t.once('close', failed);
    t.once('secure', () => {
      secure = true;
      this.handshaking.delete(t);
      t.setTimeout(0);
      if (this.drained) return void t.destroy();
      const servername = typeof t.servername === 'string' ? normalizeHost(t.servername) : null;
      this.start(t, { secure: true, servername, tlsVersion: t.getProtocol() });
    });
  }

  /** The same handshake in the addon (`tls` mode): its hello is answered here, with the addon's contexts. */
  private handshakeNative(s: NativeSocket): void {
    const relay = nativeRelay()!;
    this.handshaking.add(s);
    const failed = () => {
      if (!this.handshaking.delete(s)) return;
      this.stats.tlsHandshakeFailures += 1;
      s.destroy();
    };
    s.setTimeout(this.handshakeTimeoutMs);
    s.on('timeout', failed);
    s.on('error', failed);
    s.on('end', failed);
    s.once('close', failed);
    s.once('hello', (servername: string | null) => {
      const cert = servername === null ? null : this.sniCert(servername);
      relay.tlsUse(s.id, cert ? cert.native : (this.defaultCert((c) => c.native !== 0)?.native ?? 0));
    });
    s.once('secure', () => {
      if (!this.handshaking.delete(s)) return;
      s.removeListener('timeout', failed);
      s.removeListener('error', failed);
      s.removeListener('end', failed);
      s.removeListener('close', failed);
      s.setTimeout(0);
      if (this.drained) return void s.destroy();
      const servername = s.servername === null ? null : normalizeHost(s.servername);
      this.start(s, { secure: true, servername, tlsVersion: s.tlsVersion });
    });
  }

  /** Stops accepting now and drains the connections; resolves when the last one is gone. */
  close(): Promise<void> {
    if (this.drained) return this.drained;
    this.drained = new Promise((resolve) => (this.resolveDrained = resolve));
    this.server?.close();
    this.server = null;
    if (this.nativeListener !== null) nativeRelay()!.closeListener(this.nativeListener);
    this.nativeListener = null;
    this.bound = false;
    for (const t of this.handshaking) t.destroy();
    this.handshaking.clear();
    for (const s of this.sessions) s.drain();
    if (this.sessions.size === 0) this.resolveDrained!();
    return this.drained;
  }

  abortAll(): void {
    for (const t of this.handshaking) t.destroy();
    for (const s of [...this.sessions]) s.abort();
  }
}

/** The catch-all route (no hosts), else the first: serves requests without a route's name and TLS without SNI. */
function defaultRoute(routes: readonly LiveRoute[]): LiveRoute {
  return routes.find((r) => r.spec.hosts.length === 0 && !r.spec.path) ?? routes.find((r) => r.spec.hosts.length === 0) ?? routes[0]!;
}

function maxHead(routes: readonly LiveRoute[]): number {
  let m = 0;
  for (const r of routes) m = Math.max(m, r.spec.limits.headBytes);
  return m;
}
