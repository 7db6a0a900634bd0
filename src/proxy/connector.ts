/**
 * Opening connections to upstreams: one attempt with the route's connect timeout (`connectOnce`), and the TCP
 * loop that retries a failed or timed-out connect on another upstream, following the fallback chain, before the
 * client sees anything (`connectWithRetries`). Every attempt counts in the upstream's active connections while it
 * runs; a failure counts towards the upstream's passive ejection and in the metrics.
 */
import { connect, type Socket } from 'node:net';
import type { LiveRoute, RoutePick } from './live-route.js';
import type { ProxySocket } from './native-socket.js';
import type { UpstreamState } from './upstream-registry.js';

export type ConnectOutcome = 'connected' | 'failed' | 'timeout';

/** A Node socket to an upstream (the portable path's dial). */
export function dialNet(host: string, port: number): Socket {
  return connect({ host, port, allowHalfOpen: true, noDelay: true });
}

/**
 * TCP keep-alive on every upstream connection: the first probe after this much silence, then (libuv's, on Linux)
 * one a second, and the connection is reset after 10 unanswered: a peer that vanished (a partition, a node that
 * lost power) is noticed in about 20 s on a long-lived TCP connection or an idle pooled HTTP one, not after the
 * idle timeout. (Node cannot set TCP_USER_TIMEOUT, which would bound unacknowledged data too; bytes in flight to a
 * vanished peer are bounded instead by the HTTP response timeout and by the upstream being ejected or found
 * down, src/proxy/http-session.ts.)
 */
export const UPSTREAM_KEEPALIVE_MS = 10_000;

export interface Attempt {
  /** Stops the attempt; its callback is not called. */
  cancel(): void;
}

/**
 * One connect to `pick.upstream`. On success the socket is returned with its timeout cleared and no listeners of
 * ours left, and the upstream's `active` stays incremented: the caller owns it and decrements it when done.
 * A connect counts as the upstream's success for TCP; for HTTP only a response does (`connectIsSuccess` false),
 * so that an instance that accepts and never answers still gets ejected.
 */
export function connectOnce<S extends ProxySocket = Socket>(
  route: LiveRoute,
  pick: RoutePick,
  cb: (outcome: ConnectOutcome, socket: S | null, reason: string) => void,
  connectIsSuccess = true,
  dial: (host: string, port: number) => S = dialNet as unknown as (host: string, port: number) => S,
): Attempt {
  const u = pick.upstream;
  u.active += 1;
  const socket = dial(u.host, u.port);
  socket.setTimeout(route.spec.policy.connectTimeoutMs);
  let settled = false;
  const cleanup = () => {
    settled = true;
    socket.removeListener('timeout', onTimeout);
    socket.removeListener('error', onError);
    socket.removeListener('connect', onConnect);
  };
  const fail = (outcome: 'failed' | 'timeout', reason: string) => {
    cleanup();
    socket.destroy();
    attemptFailed(route, pick, outcome, reason);
    cb(outcome, null, reason);
  };
  const onTimeout = () => fail('timeout', timeoutReason(route));
  const onError = (e: NodeJS.ErrnoException) => fail('failed', e.code ?? e.message);
  const onConnect = () => {
    cleanup();
    socket.setTimeout(0);
    socket.setKeepAlive(true, UPSTREAM_KEEPALIVE_MS);
    attemptConnected(route, pick, connectIsSuccess);
    cb('connected', socket, '');
  };
  socket.on('timeout', onTimeout);
  socket.on('error', onError);
  socket.on('connect', onConnect);
  return {
    cancel() {
      if (settled) return;
      cleanup();
      socket.destroy();
      u.active -= 1;
    },
  };
}

export type Refusal = 'no_upstream' | 'connect_failed';

/** The reason of a connect that timed out, as health and the logs show it. */
export function timeoutReason(route: LiveRoute): string {
  return `no connection within ${route.spec.policy.connectTimeoutMs} ms`;
}

/** A connect attempt failed: it no longer counts as active, and counts in the metrics and towards ejection. */
export function attemptFailed(route: LiveRoute, pick: RoutePick, outcome: 'failed' | 'timeout', reason: string): void {
  const u = pick.upstream;
  u.active -= 1;
  const traffic = route.trafficOf(u);
  if (outcome === 'timeout') traffic.connectTimeouts += 1;
  else traffic.connectFailures += 1;
  route.registry.failure(u, pick.group, reason);
}

/** A connect attempt succeeded (it stays active: its owner decrements `active` when the connection closes). */
export function attemptConnected(route: LiveRoute, pick: RoutePick, connectIsSuccess: boolean): void {
  route.trafficOf(pick.upstream).connections += 1;
  if (connectIsSuccess) route.registry.success(pick.upstream);
}

/**
 * One connect attempt, however it is made: the socket path's connectOnce, or the native relay's
 * (src/proxy/native-session.ts). It calls back once, with what connected (null when it did not).
 */
export type ConnectOne<T> = (pick: RoutePick, cb: (outcome: ConnectOutcome, connection: T | null) => void) => Attempt;

/**
 * Connects to the route's best upstream, retrying a failed connect on another one (up to policy.retries), then
 * calls back with the connection and its upstream, or with the refusal reason. What connects after a cancel is
 * given to `dispose`.
 */
export function retryConnects<T>(
  route: LiveRoute,
  one: ConnectOne<T>,
  cb: (connection: T | null, upstream: UpstreamState | null, refusal: Refusal | null) => void,
  dispose: (connection: T) => void = () => {},
): Attempt {
  const max = route.spec.policy.retries + 1;
  let tried: Set<UpstreamState> | null = null;
  let attempts = 0;
  let current: Attempt | null = null;
  let cancelled = false;
  const next = () => {
    const pick = route.pick(tried);
    if (!pick) {
      cb(null, null, attempts === 0 ? 'no_upstream' : 'connect_failed');
      return;
    }
    attempts += 1;
    current = one(pick, (outcome, connection) => {
      current = null;
      if (cancelled) {
        if (connection !== null) dispose(connection);
        return;
      }
      if (outcome === 'connected') return cb(connection, pick.upstream, null);
      if (attempts >= max) return cb(null, null, 'connect_failed');
      (tried ??= new Set()).add(pick.upstream);
      route.stats.retry(outcome === 'timeout' ? 'connect_timeout' : 'connect_failure');
      next();
    });
  };
  next();
  return {
    cancel() {
      cancelled = true;
      current?.cancel();
    },
  };
}

/** retryConnects with Node sockets (the portable TCP path). */
export function connectWithRetries(
  route: LiveRoute,
  cb: (socket: Socket | null, upstream: UpstreamState | null, refusal: Refusal | null) => void,
): Attempt {
  return retryConnects<Socket>(route, (pick, done) => connectOnce<Socket>(route, pick, (outcome, socket) => done(outcome, socket)), cb, (s) => s.destroy());
}
