/**
 * One TCP connection on the native data path (src/proxy/native-relay.ts): the addon holds the sockets and moves
 * the bytes; this object makes the decisions the portable path's TcpSession makes, with the same shared code: the
 * upstream is picked and a failed or timed-out connect retried on another one before the client sees anything
 * (retryConnects, src/proxy/connector.ts), a connection no upstream takes is reset and counted as refused, and
 * the counters and the access-log line are written when it closes (recordClose, src/proxy/tcp-session.ts).
 *
 * The relay itself (backpressure, half-close, a reset passed on as a reset, the idle timeout) is the addon's:
 * native/relay.c. An upstream given by name is looked up here first (the addon connects to addresses).
 */
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { clientAddress } from './access-log.js';
import { now } from './clock.js';
import { attemptConnected, attemptFailed, retryConnects, timeoutReason, type Attempt, type ConnectOutcome, type Refusal } from './connector.js';
import type { LiveRoute, RoutePick } from './live-route.js';
import type { NativeConnection, NativeRelay } from './native-relay.js';
import type { Session } from './session.js';
import { recordClose, recordOpen, recordRefusal } from './tcp-session.js';
import type { UpstreamState } from './upstream-registry.js';

export class NativeTcpSession implements Session, NativeConnection {
  private attempt: Attempt | null = null;
  /** The attempt in flight hears the addon's connected()/connectFailed(). */
  private pending: ((outcome: ConnectOutcome, reason: string) => void) | null = null;
  private upstream: UpstreamState | null = null;
  private refusal: Refusal | null = null;
  private done = false;
  private readonly startedAt = now();
  private readonly remote: string;

  constructor(
    private readonly relay: NativeRelay,
    private readonly id: number,
    private readonly route: LiveRoute,
    private readonly onClose: (s: Session) => void,
  ) {
    this.remote = route.access ? clientAddress(relay.peer(id) ?? undefined) : '';
    recordOpen(route);
    relay.own(id, this);
    this.attempt = retryConnects<true>(
      route,
      (pick, cb) => this.connectOne(pick, cb),
      (ok, upstream, refusal) => {
        this.attempt = null;
        if (ok === null) {
          this.refusal = recordRefusal(route, refusal!);
          relay.reset(id);
          return;
        }
        this.upstream = upstream;
      },
    );
  }

  private connectOne(pick: RoutePick, cb: (outcome: ConnectOutcome, connection: true | null) => void): Attempt {
    const u = pick.upstream;
    const policy = this.route.spec.policy;
    u.active += 1;
    let live = true;
    const settle = (outcome: ConnectOutcome, reason: string) => {
      if (!live) return;
      live = false;
      this.pending = null;
      if (outcome === 'connected') {
        attemptConnected(this.route, pick, true);
        cb('connected', true);
      } else {
        attemptFailed(this.route, pick, outcome, reason);
        cb(outcome, null);
      }
    };
    this.pending = settle;
    const start = (ip: string) => {
      if (live && !this.relay.connect(this.id, ip, u.port, policy.connectTimeoutMs, policy.idleTimeoutMs)) settle('failed', 'closed');
    };
    if (isIP(u.host)) start(u.host);
    else lookup(u.host, (err, address) => (err ? settle('failed', err.code ?? err.message) : start(address)));
    return {
      cancel: () => {
        if (!live) return;
        live = false;
        this.pending = null;
        u.active -= 1;
      },
    };
  }

  connected(): void {
    this.pending?.('connected', '');
  }

  connectFailed(errno: number, timedOut: boolean): void {
    this.pending?.(timedOut ? 'timeout' : 'failed', timedOut ? timeoutReason(this.route) : getSystemErrorName(errno));
  }

  closed(bytesIn: number, bytesOut: number): void {
    if (this.done) return;
    this.done = true;
    this.attempt?.cancel();
    if (this.upstream) this.upstream.active -= 1;
    recordClose(this.route, {
      startedAt: this.startedAt,
      client: this.remote,
      upstream: this.upstream?.address ?? null,
      refusal: this.refusal,
      receivedBytes: bytesIn,
      sentBytes: bytesOut,
      tls: null,
    });
    this.onClose(this);
  }

  /** A draining TCP connection runs until either side ends it (or the idle timeout). */
  drain(): void {}

  abort(): void {
    // An attempt in flight (a lookup, a retry) must not connect what is being closed.
    this.attempt?.cancel();
    this.relay.abort(this.id);
  }
}
