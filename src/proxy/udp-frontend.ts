/**
 * A UDP listener: one session per client address and port, pinned to one upstream through a connected socket of
 * its own (so replies come back to the right client), closed after `idleTimeoutMs` without a datagram either
 * way. A session re-picks its upstream when that upstream fails (ICMP port unreachable surfaces as
 * ECONNREFUSED on the connected socket, and counts as a passive failure) or stops being usable (ejected, or down
 * by active checks) while another one is. The first datagrams of a session wait (up to 64) while its socket
 * connects; a datagram that has no upstream is dropped and counted as refused.
 */
import { PROXY_EVENTS } from './log-events.js';
import { createSocket, type RemoteInfo, type Socket as DgramSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { now } from './clock.js';
import type { LiveRoute, RoutePick } from './live-route.js';
import type { FrontendSpec } from './routes-file.js';
import type { UpstreamState } from './upstream-registry.js';

const MAX_QUEUED = 64;

class UdpSession {
  socket: DgramSocket | null = null;
  pick: RoutePick | null = null;
  connected = false;
  queue: Buffer[] = [];
  lastActive = now();
  closed = false;

  constructor(
    readonly key: string,
    readonly address: string,
    readonly port: number,
    /** The route it started on; a session whose upstream leaves the routes moves to the route in force. */
    public route: LiveRoute,
  ) {}
}

export class UdpFrontend {
  readonly key: string;
  spec: FrontendSpec;
  bound = false;
  error: string | null = null;
  private socket: DgramSocket | null = null;
  private routes: readonly LiveRoute[];
  private readonly sessions = new Map<string, UdpSession>();
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    spec: FrontendSpec,
    routes: readonly LiveRoute[],
    private readonly log: Logger,
  ) {
    this.key = spec.key;
    this.spec = spec;
    this.routes = routes;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get liveRoutes(): readonly LiveRoute[] {
    return this.routes;
  }

  setRoutes(spec: FrontendSpec, routes: readonly LiveRoute[]): void {
    this.spec = spec;
    this.routes = routes;
    this.startSweeper();
  }

  listen(): Promise<void> {
    return new Promise((resolve) => {
      const s = createSocket({ type: isIPv6(this.spec.bind) ? 'udp6' : 'udp4' });
      const onError = (e: NodeJS.ErrnoException) => {
        this.error = e.code ?? e.message;
        s.close();
        resolve();
      };
      s.once('error', onError);
      s.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.fromClient(msg, rinfo));
      s.bind({ address: this.spec.bind, port: this.spec.port }, () => {
        s.removeListener('error', onError);
        s.on('error', (e: Error) => this.log.warn({ event: PROXY_EVENTS.listenerError, frontend: this.key, err: e.message }, 'udp listener error'));
        this.socket = s;
        this.bound = true;
        this.error = null;
        this.startSweeper();
        resolve();
      });
    });
  }

  private startSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    const idle = this.routes[0]!.spec.policy.idleTimeoutMs;
    const every = Math.max(50, Math.min(idle / 4, 30_000));
    this.sweeper = setInterval(() => this.sweep(idle), every);
    this.sweeper.unref();
  }

  private sweep(idleMs: number): void {
    const t = now();
    for (const s of this.sessions.values()) if (t - s.lastActive >= idleMs) this.closeSession(s);
  }

  private fromClient(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    let s = this.sessions.get(key);
    if (!s) {
      if (this.closed) return;
      const route = this.routes[0]!;
      s = new UdpSession(key, rinfo.address, rinfo.port, route);
      route.stats.udpSessions += 1;
      route.stats.udpActive += 1;
      this.sessions.set(key, s);
      if (!this.connectSession(s, null)) {
        this.closeSession(s);
        route.stats.udpDatagramsIn += 1;
        route.stats.refusedNoUpstream += 1;
        return;
      }
    }
    s.route.stats.udpDatagramsIn += 1;
    s.lastActive = now();
    // The pinned upstream left the routes, or went away (ejected, down): move to one that is usable, if any.
    if (s.connected && s.pick && (s.pick.upstream.retired || !s.pick.upstream.usable(s.lastActive))) {
      if (s.pick.upstream.retired && s.route !== this.routes[0]) {
        s.route.stats.udpActive -= 1;
        s.route = this.routes[0]!;
        s.route.stats.udpActive += 1;
      }
      const again = s.route.pick(null);
      if (again && again.upstream !== s.pick.upstream && (again.upstream.usable(s.lastActive) || s.pick.upstream.retired)) this.repick(s, null, again);
    }
    if (!s.connected) {
      if (s.queue.length < MAX_QUEUED) s.queue.push(msg);
      return;
    }
    this.sendUp(s, msg);
  }

  private sendUp(s: UdpSession, msg: Buffer): void {
    const sock = s.socket!;
    sock.send(msg, (err) => {
      if (err) this.upstreamFailed(s, sock, err as NodeJS.ErrnoException);
    });
  }

  /** Opens the session's socket to a picked upstream; false when there is none. */
  private connectSession(s: UdpSession, tried: Set<UpstreamState> | null, given?: RoutePick): boolean {
    const pick = given ?? s.route.pick(tried);
    if (!pick) return false;
    s.pick = pick;
    s.connected = false;
    pick.upstream.active += 1;
    const u = pick.upstream;
    const sock = createSocket({ type: isIPv6(u.host) ? 'udp6' : 'udp4' });
    s.socket = sock;
    sock.on('message', (reply: Buffer) => {
      if (s.closed || s.socket !== sock) return;
      s.lastActive = now();
      s.route.stats.udpDatagramsOut += 1;
      this.socket?.send(reply, s.port, s.address);
    });
    sock.on('error', (e: NodeJS.ErrnoException) => this.upstreamFailed(s, sock, e));
    sock.connect(u.port, u.host, () => {
      if (s.closed || s.socket !== sock) return;
      s.connected = true;
      s.route.trafficOf(u).connections += 1;
      const queued = s.queue;
      s.queue = [];
      for (const m of queued) this.sendUp(s, m);
    });
    return true;
  }

  private upstreamFailed(s: UdpSession, sock: DgramSocket, e: NodeJS.ErrnoException): void {
    if (s.closed || s.socket !== sock || !s.pick) return;
    const { upstream, group } = s.pick;
    s.route.trafficOf(upstream).connectFailures += 1;
    s.route.registry.failure(upstream, group, e.code ?? e.message);
    if (!this.repick(s, new Set([upstream]))) this.closeSession(s);
  }

  private repick(s: UdpSession, tried: Set<UpstreamState> | null, given?: RoutePick): boolean {
    const old = s.socket;
    if (s.pick) s.pick.upstream.active -= 1;
    s.pick = null;
    s.socket = null;
    old?.close();
    return this.connectSession(s, tried, given);
  }

  private closeSession(s: UdpSession): void {
    if (s.closed) return;
    s.closed = true;
    this.sessions.delete(s.key);
    s.route.stats.udpActive -= 1;
    if (s.pick) s.pick.upstream.active -= 1;
    s.pick = null;
    try {
      s.socket?.close();
    } catch {
      /* already closed */
    }
    s.socket = null;
  }

  /** Stops receiving; sessions end with the socket (UDP has nothing to drain). */
  close(): void {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const s of [...this.sessions.values()]) this.closeSession(s);
    if (this.socket) {
      try {
        this.socket.close();
      } catch {
        /* already closed */
      }
    }
    this.socket = null;
    this.bound = false;
  }
}
