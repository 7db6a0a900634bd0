/**
 * Keep-alive connections to HTTP upstreams: each is attached to one client session at a time (which gets its
 * bytes and its end) or parked, idle, in its upstream's pool (`UpstreamState.idle`), where the next request to
 * that upstream from any client takes it. Bytes or an end on a parked connection mean it cannot be trusted: it is
 * closed. The proxy sweeps connections idle for too long (src/proxy/proxy.ts).
 */
import { now } from './clock.js';
import type { ProxySocket } from './native-socket.js';
import type { BusyConnection, PooledConnection, UpstreamState } from './upstream-registry.js';

/** Idle upstream connections kept per upstream. */
export const POOL_MAX_PER_UPSTREAM = 128;

/**
 * A request that must not be sent twice goes only on a connection that was busy moments ago: an upstream may close
 * a connection that idled longer (its keep-alive timeout) just as the request is sent, and only an idempotent
 * request can then be retried.
 */
export const NON_IDEMPOTENT_MAX_IDLE_MS = 1000;

/** The session a connection is attached to (src/proxy/http-session.ts): it gets the connection's events. */
export interface UpstreamOwner {
  upstreamData(chunk: Buffer): void;
  upstreamDrain(): void;
  /** The upstream ended (`closed` false: FIN) or the socket closed. */
  upstreamGone(c: UpstreamConnection, closed: boolean): void;
  /** The connection's upstream was ejected or found down by active checks. */
  upstreamLost(c: UpstreamConnection, reason: string): void;
}

const noop = () => {};

/**
 * A keep-alive connection to an upstream: attached to one session at a time (and then in its upstream's `busy`
 * set), or parked in the upstream's pool.
 */
export class UpstreamConnection implements PooledConnection, BusyConnection {
  session: UpstreamOwner | null = null;
  idleSince = 0;
  /** Responses completed on it: a failure on a reused connection may be a stale keep-alive, not a sick upstream. */
  served = 0;

  constructor(
    readonly socket: ProxySocket,
    readonly state: UpstreamState,
  ) {
    socket.on('data', (d: Buffer) => {
      if (this.session) this.session.upstreamData(d);
      else this.destroy();
    });
    socket.on('drain', () => this.session?.upstreamDrain());
    socket.on('end', () => {
      if (this.session) this.session.upstreamGone(this, false);
      else this.destroy();
    });
    socket.on('error', noop);
    socket.on('close', () => {
      if (this.session) this.session.upstreamGone(this, true);
      else this.#unpool();
    });
  }

  attachTo(session: UpstreamOwner): void {
    this.session = session;
    this.state.busy.add(this);
  }

  lost(reason: string): void {
    this.session?.upstreamLost(this, reason);
  }

  /** Back to the pool (idleSince was set when its last response completed), or closed when it cannot be kept. */
  park(): void {
    this.session = null;
    this.state.busy.delete(this);
    const pool = this.state.idle as UpstreamConnection[];
    if (this.state.retired || pool.length >= POOL_MAX_PER_UPSTREAM || this.socket.destroyed) return this.destroy();
    pool.push(this);
  }

  #unpool(): void {
    const pool = this.state.idle as UpstreamConnection[];
    const i = pool.indexOf(this);
    if (i >= 0) pool.splice(i, 1);
  }

  destroy(): void {
    this.session = null;
    this.state.busy.delete(this);
    this.socket.destroy();
  }
}

/** Takes the most recently used idle connection to `u` from its pool (idle at most `maxIdleMs`), or null. */
export function fromPool(u: UpstreamState, maxIdleMs: number): UpstreamConnection | null {
  const pool = u.idle as UpstreamConnection[];
  const t = now();
  while (pool.length > 0) {
    if (t - pool[pool.length - 1]!.idleSince > maxIdleMs) return null;
    const c = pool.pop()!;
    if (!c.socket.destroyed && c.socket.writable && c.socket.readable) return c;
    c.destroy();
  }
  return null;
}

/** Closes pooled connections idle for longer than `maxIdleMs` (run periodically by the proxy). */
export function sweepPool(u: UpstreamState, maxIdleMs: number, t: number): void {
  const pool = u.idle as UpstreamConnection[];
  let kept = 0;
  for (const c of pool) {
    if (t - c.idleSince > maxIdleMs) c.destroy();
    else pool[kept++] = c;
  }
  pool.length = kept;
}
