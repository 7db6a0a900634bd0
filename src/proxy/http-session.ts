/**
 * One client connection of an `http` route, proxied on the raw stream: request and response heads are parsed in
 * place (src/proxy/http-head.ts), bodies are only framed (src/proxy/body-framer.ts) and forwarded as the chunks
 * that arrived, never re-serialised.
 *
 * Per request:
 * - the upstream is chosen per request (least-conn counts requests in flight), on a keep-alive connection from
 *   the upstream's idle pool when there is one, so clients that close after each request still reuse upstream
 *   connections (a client's `Connection: close` is dropped towards the upstream and added to the response);
 * - a failed connect is retried on another upstream for every method (the upstream never saw the request);
 *   a reset or close before the response, a 502 and a 503 are retried only for idempotent methods (never a
 *   POST) whose bytes were all kept (at most 64 KiB), up to policy.retries and within the route's retry budget;
 * - when nothing is left to try the proxy answers 503 (no upstream) or 502 (upstream failed), and 504 when
 *   the idle timeout passes with no response;
 * - the response timeout (policy.responseTimeoutMs, from the last request byte sent to the response head): an
 *   idempotent request whose bytes were kept is retried on another upstream, within the budget; any other gets
 *   504. It counts as a failure of the upstream;
 * - a request waiting for its response on an upstream that is ejected or found down by active checks
 *   (src/proxy/upstream-registry.ts `lost`) is failed over the same way, or answered 502 at once: never left
 *   waiting on a peer that vanished. A response already under way is left to finish;
 * - the duration from the request head to the last byte of the response is observed by method and status class.
 * Upgrades (WebSocket) and CONNECT become a raw tunnel after the upstream's 101 (2xx for CONNECT), which the
 * addon carries when both sockets are its own (spliceTunnel, src/proxy/native-socket.ts). Pipelined
 * requests wait, unread, until the response before them is complete. A request head must be complete within the
 * port's header timeout from its first byte (else 408); one with a bare CR or LF is refused at once (400), and so
 * is a chunked body with one. An upstream's response with one is a malformed response (502).
 *
 * On a port shared by exposures each request is routed by Host and path (src/proxy/request-routing.ts, which also
 * says what is refused before a route: 400, 404, 421). Exposures get X-Forwarded-For/-Proto/-Host
 * (src/proxy/forwarded-head.ts), their head (431) and body (413) limits, their redirect_http (308 to https) and
 * their access log. A connection's metrics count for the route of its first request (the port's default route when
 * it never sends one). Upstream connections come from, and go back to, the keep-alive pool of
 * src/proxy/upstream-pool.ts.
 */
import { BodyFramer, MALFORMED, NEED_MORE } from './body-framer.js';
import { now } from './clock.js';
import { connectOnce, type Attempt } from './connector.js';
import { forwardedHead } from './forwarded-head.js';
import { clientAddress } from './access-log.js';
import { normalizeHost, splitTarget } from './host-router.js';
import {
  errorResponse,
  findHeadEnd,
  HEAD_BARE_LINE_END,
  HttpHeadError,
  MAX_HEAD_BYTES,
  parseRequestHead,
  parseResponseHead,
  responseHasNoBody,
  withConnectionClose,
  withoutConnectionHeader,
  type RequestHead,
  type ResponseHead,
} from './http-head.js';
import type { LiveRoute } from './live-route.js';
import type { RetryReason, RouteStats } from './metrics.js';
import { routeRequest } from './request-routing.js';
import { PLAIN_CONNECTION, type ConnectionInfo, type RouteSource } from './route-source.js';
import type { Session } from './session.js';
import { spliceTunnel, type ProxySocket } from './native-socket.js';
import { fromPool, NON_IDEMPOTENT_MAX_IDLE_MS, UpstreamConnection, type UpstreamOwner } from './upstream-pool.js';
import type { GroupState, UpstreamState } from './upstream-registry.js';

/** The most request bytes kept for a retry; a larger request is sent once. */
export const MAX_RETAINED_BYTES = 64 * 1024;

const noop = () => {};

/** What an access-log line of a request says beyond the route. */
interface LoggedRequest {
  readonly method: string;
  readonly host: string | null;
  readonly target: string;
}

type ReqPhase = 'head' | 'body' | 'done';
type ResPhase = 'idle' | 'wait' | 'head' | 'body' | 'tunnel';

export class HttpSession implements Session, UpstreamOwner {
  /** The stats this connection counts in (set by its first request; see the file comment). */
  private connStats: RouteStats | null = null;
  private route: LiveRoute;
  private remoteAddr: string | null = null;
  private logged: LoggedRequest | null = null;
  private reqBytes = 0;
  private resBytes = 0;
  private bodySeen = 0;
  private servedBy: string | null = null;
  private closed = false;
  private draining = false;
  private clientEnded = false;
  /** Our side is ended: whatever the client still sends is dropped. */
  private finishing = false;

  // request
  private reqPhase: ReqPhase = 'head';
  private partial: Buffer | null = null;
  private req: RequestHead | null = null;
  private readonly reqFramer = new BodyFramer();
  private retained: Buffer[] | null = null;
  private retainedBytes = 0;
  private pending: Buffer[] | null = null;
  private stash: Buffer | null = null;
  private startedAt = 0;
  /** The request head goes out as it came (not rewritten), so it can share a write with the body. */
  private reqHeadInPlace = true;
  private wantsClose = false;
  private attempts = 0;
  private tried: Set<UpstreamState> | null = null;
  /** Why the request's last attempt failed (it is being retried), or null. */
  private lastFailure: RetryReason | null = null;
  private pausedForUpstream = false;
  private pausedForStash = false;
  /** Runs while a request head is partly here (src/proxy/route-source.ts `headTimeoutMs`). */
  private headTimer: NodeJS.Timeout | null = null;

  // upstream and response
  private up: UpstreamConnection | null = null;
  /** The connection of the previous request, kept for the next one (a client's requests stay on a warm connection). */
  private idleUp: UpstreamConnection | null = null;
  private group: GroupState | null = null;
  private connecting: Attempt | null = null;
  private resPhase: ResPhase = 'idle';
  private resPartial: Buffer | null = null;
  private res: ResponseHead | null = null;
  private readonly resFramer = new BodyFramer();
  private responded = false;
  /** The response head not yet written, and where it starts in the current chunk (-1: rewritten, elsewhere). */
  private resHead: Buffer | null = null;
  private resHeadAt = -1;
  /**
   * The response timeout, from the last request byte sent to the response head (policy.responseTimeoutMs): its
   * deadline (0: none) and the connection it is for. Its timer is lazy: a response that comes in time only clears
   * the deadline, and the timer, when it fires, looks at the deadline in force (the next request's, or none) and
   * sleeps again until it, so that a keep-alive connection costs one timer per timeout period, not two timer
   * operations per request. Closing the session clears it.
   */
  private resDeadline = 0;
  private resFor: UpstreamConnection | null = null;
  private resTimer: NodeJS.Timeout | null = null;
  private resTimerAt = 0;
  private readonly onResTimer = () => this.resTimerFired();

  constructor(
    private readonly client: ProxySocket,
    private readonly source: RouteSource,
    private readonly onClose: (s: Session) => void,
    private readonly conn: ConnectionInfo = PLAIN_CONNECTION,
  ) {
    this.route = source.only ?? source.fallback;
    if (source.only) this.attribute(source.only);
    client.setTimeout(this.route.spec.policy.idleTimeoutMs);
    client.on('data', (chunk: Buffer) => this.clientData(chunk));
    client.on('drain', () => {
      if (this.up && this.up.session === this) this.up.socket.resume();
    });
    client.on('end', () => this.clientEnd());
    client.on('timeout', () => this.idleTimeout());
    client.on('error', noop);
    client.on('close', () => this.clientClosed());
  }

  private attribute(route: LiveRoute): void {
    const s = (this.connStats = route.stats);
    s.opened += 1;
    s.active += 1;
  }

  private remote(): string {
    return (this.remoteAddr ??= clientAddress(this.client.remoteAddress));
  }

  // ---- client side ----

  private clientData(chunk: Buffer): void {
    if (this.finishing) return;
    if (this.resPhase === 'tunnel') {
      if (this.up && !this.up.socket.write(chunk)) this.pauseClient('upstream');
      return;
    }
    if (this.reqPhase === 'done') {
      this.stash = this.stash ? Buffer.concat([this.stash, chunk]) : chunk;
      this.pauseClient('stash');
      return;
    }
    if (this.partial) {
      const joined = Buffer.concat([this.partial, chunk]);
      const from = this.partial.length;
      this.partial = null;
      this.process(joined, 0, from);
    } else this.process(chunk, 0, 0);
  }

  /** Handles buf[off..] as request bytes; `searchFrom` skips what an earlier search for the head end covered. */
  private process(buf: Buffer, off: number, searchFrom: number): void {
    let fresh = false;
    if (this.reqPhase === 'head') {
      const end = findHeadEnd(buf, off, off + searchFrom);
      if (end === HEAD_BARE_LINE_END) return void this.reject('badRequest', 400, 'Bad Request', 'a bare CR or LF in the head\n');
      if (end < 0) {
        if (buf.length - off > this.source.maxHeadBytes) return void this.reject('headTooLarge', 431, 'Request Header Fields Too Large', 'request head too large\n');
        this.partial = off === 0 ? buf : buf.subarray(off);
        if (off < buf.length) this.headTimer ??= setTimeout(() => this.headTimeout(), this.source.headTimeoutMs);
        return;
      }
      this.clearHeadTimer();
      if (end - off > this.source.maxHeadBytes) return void this.reject('headTooLarge', 431, 'Request Header Fields Too Large', 'request head too large\n');
      let head: RequestHead;
      try {
        head = parseRequestHead(buf, off, end);
      } catch (e) {
        if (e instanceof HttpHeadError) return void this.reject('badRequest', 400, 'Bad Request', `${e.message}\n`);
        throw e;
      }
      const bytes = buf.subarray(off, end);
      const out = this.startRequest(head, bytes, buf, off);
      if (out === null || this.closed) return;
      fresh = true;
      if (out !== bytes) {
        this.sendUp(out);
        off = end;
      }
      // Otherwise the head stays in place and goes out with the body bytes of this chunk, in one write.
    }
    if (this.reqPhase === 'body') {
      const from = fresh && this.reqHeadInPlace ? off : -1;
      const bodyStart = fresh && this.reqHeadInPlace ? off + this.req!.length : off;
      const r = this.reqFramer.feed(buf, bodyStart, buf.length);
      if (r === MALFORMED) return this.responded ? this.abort() : this.answer(400, 'Bad Request', 'malformed chunked body\n');
      const to = r === NEED_MORE ? buf.length : r;
      const limit = this.route.spec.limits.bodyBytes;
      if (limit > 0 && (this.bodySeen += to - bodyStart) > limit) {
        // Only a chunked body gets here (a Content-Length over the limit is refused before anything is sent).
        if (this.responded) return this.abort();
        return this.answer(413, 'Content Too Large', 'request body too large\n');
      }
      const start = from >= 0 ? from : bodyStart;
      if (to > start) this.sendUp(start === 0 && to === buf.length ? buf : buf.subarray(start, to));
      if (r === NEED_MORE) {
        if (fresh) this.acquire();
        return;
      }
      off = r;
      this.reqPhase = 'done';
      if (!fresh) this.armResponseTimer();
    } else if (fresh && this.reqHeadInPlace) {
      this.sendUp(off === 0 && this.req!.length === buf.length ? buf : buf.subarray(off, off + this.req!.length));
      off += this.req!.length;
    }
    if (fresh) this.acquire();
    if (this.closed) return;
    if (off < buf.length) {
      // The next request, pipelined: it waits, unread, for the response to this one.
      this.stash = buf.subarray(off);
      this.pauseClient('stash');
    }
  }

  /**
   * Routes and sets up a request; returns the head to send (the same bytes, or a rewritten copy), or null when the
   * proxy answered it itself (no route, a limit, a redirect).
   */
  private startRequest(head: RequestHead, bytes: Buffer, buf: Buffer, off: number): Buffer | null {
    const routed = routeRequest(this.source, this.conn, buf, off, head);
    if ('reason' in routed) return this.reject(routed.reason, routed.status, routed.text, routed.body);
    const { route, host: hostValue, hostFromTarget, target } = routed;
    this.route = route;
    if (this.connStats === null) this.attribute(route);
    const spec = route.spec;
    route.budget.request(now());
    this.req = head;
    this.startedAt = now();
    this.wantsClose = head.close || this.draining;
    this.attempts = 0;
    this.tried = null;
    this.lastFailure = null;
    this.responded = false;
    this.res = null;
    this.resHead = null;
    this.resPhase = 'wait';
    this.reqBytes = 0;
    this.resBytes = 0;
    this.bodySeen = 0;
    this.servedBy = null;
    this.logged = route.access ? { method: buf.toString('latin1', off, off + Math.min(head.targetStart - 1, 32)), host: hostValue, target: target.length > 1024 ? `${target.slice(0, 1024)}…` : target } : null;
    if (spec.redirectTo !== undefined) {
      const port = spec.redirectTo === 443 ? '' : `:${spec.redirectTo}`;
      const where = hostValue === null ? null : normalizeHost(hostValue);
      if (where === null) {
        this.answer(400, 'Bad Request', 'a redirect to https needs a Host header\n');
        return null;
      }
      const path = target.startsWith('/') ? target : splitTarget(target).path;
      this.answer(308, 'Permanent Redirect', `https://${where}${port}${path}\n`, `Location: https://${where}${port}${path}\r\n`);
      return null;
    }
    if (head.length > spec.limits.headBytes) {
      this.answer(431, 'Request Header Fields Too Large', 'request head too large\n');
      return null;
    }
    if (spec.limits.bodyBytes > 0 && head.contentLength > spec.limits.bodyBytes) {
      this.answer(413, 'Content Too Large', 'request body too large\n');
      return null;
    }
    // Keep the upstream connection reusable when only the client wants to close.
    const dropConnection = head.close && head.minor === 1 && head.connectionIsCloseOnly;
    const out = spec.forwarded
      ? forwardedHead(bytes, head, { dropConnection, host: hostValue, hostFromTarget, client: this.remote(), secure: this.conn.secure, trust: route })
      : dropConnection ? withoutConnectionHeader(bytes, head.connectionLines) : bytes;
    this.reqHeadInPlace = out === bytes;
    if (head.chunked) this.reqFramer.reset('chunked');
    else if (head.contentLength > 0) this.reqFramer.reset('length', head.contentLength);
    else this.reqFramer.reset('none');
    this.reqPhase = this.reqFramer.done ? 'done' : 'body';
    this.retained = head.idempotent ? [] : null;
    this.retainedBytes = 0;
    this.pending = [];
    return out;
  }

  /** Request bytes towards the upstream: kept for a retry while allowed, queued until a connection is attached. */
  private sendUp(data: Buffer): void {
    this.reqBytes += data.length;
    if (this.retained !== null) {
      this.retainedBytes += data.length;
      if (this.retainedBytes > MAX_RETAINED_BYTES) this.retained = null;
      else this.retained.push(data);
    }
    if (this.pending !== null) {
      this.pending.push(data);
      // Waiting for a connection: read no more than this until it is there.
      if (this.connecting) this.pauseClient('upstream');
      return;
    }
    if (this.up && !this.up.socket.write(data)) this.pauseClient('upstream');
  }

  private pauseClient(why: 'upstream' | 'stash'): void {
    if (why === 'upstream') this.pausedForUpstream = true;
    else this.pausedForStash = true;
    this.client.pause();
  }

  private resumeClient(why: 'upstream' | 'stash'): void {
    const was = this.pausedForUpstream || this.pausedForStash;
    if (why === 'upstream') this.pausedForUpstream = false;
    else this.pausedForStash = false;
    if (was && !this.pausedForUpstream && !this.pausedForStash && !this.closed) this.client.resume();
  }

  private clientEnd(): void {
    this.clientEnded = true;
    if (this.resPhase === 'tunnel') {
      this.up?.socket.end();
      return;
    }
    // Half-closed between requests: nothing more will come.
    if (this.resPhase === 'idle' && this.stash === null && !this.finishing) this.finish();
  }

  private idleTimeout(): void {
    if (this.resPhase === 'wait' || (this.resPhase === 'head' && !this.responded)) {
      const u = this.up?.state;
      this.dropUpstream();
      if (u && this.group) this.route.registry.failure(u, this.group, 'no response within idleTimeoutMs');
      return this.answer(504, 'Gateway Timeout', 'the upstream did not answer in time\n');
    }
    this.abort();
  }

  /** A request head begun and not finished within the port's head timeout (slow clients hold no connection). */
  private headTimeout(): void {
    this.headTimer = null;
    if (this.closed || this.finishing || this.reqPhase !== 'head' || this.partial === null) return;
    this.partial = null;
    this.reject('headTimeout', 408, 'Request Timeout', 'the request head took too long\n');
  }

  private clearHeadTimer(): void {
    if (this.headTimer === null) return;
    clearTimeout(this.headTimer);
    this.headTimer = null;
  }

  private clientClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearHeadTimer();
    if (this.connStats === null) this.attribute(this.source.fallback);
    const s = this.connStats!;
    s.active -= 1;
    s.closed += 1;
    s.receivedBytes += this.client.bytesRead;
    s.sentBytes += this.client.bytesWritten;
    this.connecting?.cancel();
    this.connecting = null;
    this.clearResponseTimer();
    if (this.resTimer !== null) clearTimeout(this.resTimer);
    this.resTimer = null;
    if (this.up) {
      this.up.state.active -= 1;
      this.up.destroy();
      this.up = null;
    }
    this.releaseIdle();
    this.onClose(this);
  }

  // ---- choosing and attaching an upstream ----

  private acquire(): void {
    const route = this.route;
    const kept = this.idleUp;
    const pick = route.pick(this.tried, kept?.state ?? null);
    const maxIdleMs = this.req!.idempotent ? Infinity : NON_IDEMPOTENT_MAX_IDLE_MS;
    if (kept) {
      this.idleUp = null;
      if (pick && pick.upstream === kept.state && kept.socket.writable && !kept.state.retired && now() - kept.idleSince <= maxIdleMs) {
        this.attempts += 1;
        this.group = pick.group;
        kept.state.active += 1;
        return this.attach(kept);
      }
      kept.park();
    }
    if (!pick) {
      // A retry that finds no other upstream: the client hears of the failure it had, as without a retry.
      if (this.lastFailure !== null) return this.fail(this.lastFailure);
      route.stats.refusedNoUpstream += 1;
      return this.answer(503, 'Service Unavailable', 'no upstream is available\n');
    }
    this.attempts += 1;
    this.group = pick.group;
    const pooled = fromPool(pick.upstream, maxIdleMs);
    if (pooled) {
      pick.upstream.active += 1;
      return this.attach(pooled);
    }
    if (this.reqPhase === 'body') this.pauseClient('upstream');
    this.connecting = connectOnce(route, pick, (outcome, socket, _reason) => {
      this.connecting = null;
      if (this.closed) {
        socket?.destroy();
        if (socket) pick.upstream.active -= 1;
        return;
      }
      if (socket) return this.attach(new UpstreamConnection(socket, pick.upstream));
      this.retryOrFail(pick.upstream, outcome === 'timeout' ? 'connect_timeout' : 'connect_failure');
    }, false, this.source.dial);
  }

  private attach(c: UpstreamConnection): void {
    c.attachTo(this);
    this.up = c;
    this.servedBy = c.state.address;
    const pending = this.pending;
    this.pending = null;
    if (pending && pending.length > 0) {
      let ok: boolean;
      if (pending.length === 1) ok = c.socket.write(pending[0]!);
      else {
        c.socket.cork();
        for (const b of pending) c.socket.write(b);
        c.socket.uncork();
        ok = c.socket.writableLength < c.socket.writableHighWaterMark;
      }
      if (ok && this.pausedForUpstream) this.resumeClient('upstream');
      else if (!ok) this.pauseClient('upstream');
    }
    if (this.resPhase === 'wait') this.resPhase = 'head';
    this.armResponseTimer();
  }

  /** Starts the response timeout once the whole request is on an upstream connection (at most once per attempt). */
  private armResponseTimer(): void {
    const ms = this.route.spec.policy.responseTimeoutMs;
    if (ms <= 0 || this.resDeadline !== 0 || this.up === null || this.reqPhase !== 'done' || this.resPhase !== 'head') return;
    this.resDeadline = now() + ms;
    this.resFor = this.up;
    // A timer still running (set for an earlier request) fires before this deadline and sleeps again until it;
    // one set under a longer timeout (the route changed) would fire after it: it is set anew.
    if (this.resTimer !== null && this.resTimerAt <= this.resDeadline) return;
    if (this.resTimer !== null) clearTimeout(this.resTimer);
    this.resTimerAt = this.resDeadline;
    this.resTimer = setTimeout(this.onResTimer, ms);
  }

  private clearResponseTimer(): void {
    this.resDeadline = 0;
    this.resFor = null;
  }

  private resTimerFired(): void {
    this.resTimer = null;
    if (this.resDeadline === 0 || this.closed) return;
    const left = this.resDeadline - now();
    if (left > 0) {
      this.resTimerAt = this.resDeadline;
      this.resTimer = setTimeout(this.onResTimer, left);
      return;
    }
    const c = this.resFor!;
    this.clearResponseTimer();
    this.responseTimeout(c);
  }

  /** No response head within the response timeout: another upstream for an idempotent request, else 504. */
  private responseTimeout(c: UpstreamConnection): void {
    if (this.closed || c !== this.up || this.resPhase !== 'head') return;
    const u = c.state;
    const group = this.group!;
    this.route.trafficOf(u).responseTimeouts += 1;
    this.dropUpstream();
    this.route.registry.failure(u, group, `no response within ${this.route.spec.policy.responseTimeoutMs} ms`);
    // A 1xx already reached the client: it cannot be told otherwise.
    if (this.responded) return void this.client.destroy();
    this.retryOrFail(u, 'response_timeout');
  }

  /** After a failure before any response byte reached the client: another upstream, or an answer of our own. */
  private retryOrFail(failed: UpstreamState, reason: RetryReason): void {
    const route = this.route;
    const req = this.req!;
    const connectFailure = reason === 'connect_failure' || reason === 'connect_timeout';
    const canReplay = connectFailure || (req.idempotent && this.retained !== null);
    const allowed = canReplay && this.attempts < route.spec.policy.retries + 1 && route.budget.tryRetry(now());
    if (!allowed) return this.fail(reason);
    (this.tried ??= new Set()).add(failed);
    this.lastFailure = reason;
    route.stats.retry(reason);
    // A failed connect sent nothing: what is pending still is the whole request so far. Otherwise replay it.
    if (!connectFailure) this.pending = [...this.retained!];
    this.resPhase = 'wait';
    this.resPartial = null;
    this.acquire();
  }

  /** The proxy's answer to a request whose last attempt failed for `reason` and that goes to no other upstream. */
  private fail(reason: RetryReason): void {
    if (reason === 'connect_failure' || reason === 'connect_timeout') {
      this.route.stats.refusedConnectFailed += 1;
      return this.answer(503, 'Service Unavailable', 'no upstream accepted the connection\n');
    }
    if (reason === 'response_timeout') return this.answer(504, 'Gateway Timeout', 'the upstream did not answer in time\n');
    if (reason === 'status_503') return this.answer(503, 'Service Unavailable', 'no upstream is available\n');
    return this.answer(502, 'Bad Gateway', 'the upstream failed before answering\n');
  }

  private dropIdle(): void {
    const c = this.idleUp;
    this.idleUp = null;
    c?.destroy();
  }

  /** Gives the kept connection back to its upstream's pool (the client is going away). */
  private releaseIdle(): void {
    const c = this.idleUp;
    this.idleUp = null;
    c?.park();
  }

  /** Detaches and closes the current upstream connection (not reusable). */
  private dropUpstream(): void {
    this.clearResponseTimer();
    const c = this.up;
    if (!c) return;
    this.up = null;
    c.state.active -= 1;
    c.destroy();
  }

  // ---- upstream side ----

  upstreamData(chunk: Buffer): void {
    if (this.up === null) {
      // Bytes on the kept connection between requests: it cannot be trusted any more.
      this.dropIdle();
      return;
    }
    if (this.resPhase === 'tunnel') {
      if (!this.client.write(chunk)) this.up!.socket.pause();
      return;
    }
    if (this.resPhase !== 'head' && this.resPhase !== 'body') {
      // Bytes nobody asked for: this connection cannot be trusted any more.
      this.dropUpstream();
      return;
    }
    let buf = chunk;
    let searchFrom = 0;
    if (this.resPartial) {
      searchFrom = this.resPartial.length;
      buf = Buffer.concat([this.resPartial, chunk]);
      this.resPartial = null;
    }
    this.response(buf, 0, searchFrom);
  }

  private response(buf: Buffer, off: number, searchFrom: number): void {
    while (this.resPhase === 'head') {
      const end = findHeadEnd(buf, off, off + searchFrom);
      searchFrom = 0;
      if (end === HEAD_BARE_LINE_END) return this.upstreamBroken('a bare CR or LF in the response head');
      if (end < 0) {
        if (buf.length - off > MAX_HEAD_BYTES) return this.upstreamBroken('response head too large');
        this.resPartial = off === 0 ? buf : buf.subarray(off);
        return;
      }
      let res: ResponseHead;
      try {
        res = parseResponseHead(buf, off, end);
      } catch (e) {
        if (e instanceof HttpHeadError) return this.upstreamBroken(e.message);
        throw e;
      }
      const req = this.req!;
      const head = buf.subarray(off, end);
      off = end;
      if (res.status >= 100 && res.status < 200 && res.status !== 101) {
        this.responded = true;
        this.retained = null;
        this.resBytes += head.length;
        this.client.write(head);
        continue;
      }
      if (
        (res.status === 502 || res.status === 503) &&
        !this.responded &&
        this.reqPhase === 'done' &&
        req.idempotent &&
        this.retained !== null &&
        this.attempts < this.route.spec.policy.retries + 1
      ) {
        const u = this.up!.state;
        if (this.route.budget.tryRetry(now())) {
          this.dropUpstream();
          this.route.registry.failure(u, this.group!, `HTTP ${res.status}`);
          (this.tried ??= new Set()).add(u);
          this.lastFailure = res.status === 502 ? 'status_502' : 'status_503';
          this.route.stats.retry(this.lastFailure);
          this.pending = [...this.retained];
          this.resPhase = 'wait';
          this.acquire();
          return;
        }
      }
      this.res = res;
      this.responded = true;
      this.retained = null;
      this.clearResponseTimer();
      const tunnel = (res.status === 101 && req.upgrade) || (req.method === 'CONNECT' && res.status >= 200 && res.status < 300);
      if (tunnel) {
        this.client.write(head);
        this.resPhase = 'tunnel';
        this.client.setTimeout(this.route.spec.policy.idleTimeoutMs);
        if (off < buf.length) this.client.write(buf.subarray(off));
        const stash = this.stash;
        this.stash = null;
        if (stash) this.up!.socket.write(stash);
        this.reqPhase = 'done';
        this.resumeClient('stash');
        this.resumeClient('upstream');
        if (this.clientEnded) this.up!.socket.end();
        // On the native path the addon moves the tunnel's bytes from here on (src/proxy/native-socket.ts).
        spliceTunnel(this.client, this.up!.socket);
        return;
      }
      const out = this.wantsClose && !res.close ? withConnectionClose(head, res.connectionLines) : head;
      if (responseHasNoBody(req.head, res.status)) this.resFramer.reset('none');
      else if (res.chunked) this.resFramer.reset('chunked');
      else if (res.contentLength >= 0) this.resFramer.reset('length', res.contentLength);
      else this.resFramer.reset('close');
      // The head goes out with the first body bytes, in one write.
      this.resHead = out;
      this.resHeadAt = out === head ? off - head.length : -1;
      this.resPhase = 'body';
    }
    if (this.resPhase === 'body') {
      const r = this.resFramer.feed(buf, off, buf.length);
      if (r === MALFORMED) return this.upstreamBroken('malformed chunked body');
      const to = r === NEED_MORE ? buf.length : r;
      if (!this.emit(buf, off, to)) this.up!.socket.pause();
      if (r !== NEED_MORE) this.complete(r < buf.length);
    }
  }

  /** Writes buf[from, to) to the client, after the response head if it is still to go: one write either way. */
  private emit(buf: Buffer, from: number, to: number): boolean {
    const head = this.resHead;
    this.resBytes += Math.max(0, to - from) + (head !== null ? head.length : 0);
    if (head === null) return from < to ? this.client.write(from === 0 && to === buf.length ? buf : buf.subarray(from, to)) : true;
    this.resHead = null;
    if (this.resHeadAt >= 0) {
      const at = this.resHeadAt;
      return this.client.write(at === 0 && to === buf.length ? buf : buf.subarray(at, to));
    }
    if (from >= to) return this.client.write(head);
    this.client.cork();
    this.client.write(head);
    this.client.write(buf.subarray(from, to));
    this.client.uncork();
    return this.client.writableLength < this.client.writableHighWaterMark;
  }

  upstreamDrain(): void {
    this.resumeClient('upstream');
  }

  /** The upstream ended (FIN) or closed while attached to this session. */
  upstreamGone(c: UpstreamConnection, closed: boolean): void {
    if (c === this.idleUp) return this.dropIdle();
    if (c !== this.up) return;
    if (this.resPhase === 'tunnel') {
      if (closed) {
        this.up = null;
        c.state.active -= 1;
        c.destroy();
        if (!this.client.destroyed) this.client.end();
      } else this.client.end();
      return;
    }
    if (this.resPhase === 'body' && this.resFramer.mode === 'close') {
      // A response framed by the end of the connection is complete.
      this.complete(true);
      return;
    }
    if (!this.responded && (this.resPhase === 'head' || this.resPhase === 'wait')) {
      const u = c.state;
      const stale = c.served > 0;
      this.dropUpstream();
      if (!stale) this.route.registry.failure(u, this.group!, 'closed before a response');
      return this.retryOrFail(u, 'reset');
    }
    // Cut in the middle of a response: the client cannot be told otherwise.
    this.dropUpstream();
    this.client.destroy();
  }

  /**
   * The upstream of `c` was ejected or found down. A request still waiting for its response on it is failed over
   * (idempotent, bytes kept, within the budget) or answered 502 now; a response already under way goes on.
   */
  upstreamLost(c: UpstreamConnection, _reason: string): void {
    if (c === this.idleUp) return this.dropIdle();
    if (c !== this.up || this.closed || this.responded || (this.resPhase !== 'head' && this.resPhase !== 'wait')) return;
    const u = c.state;
    this.route.trafficOf(u).lostRequests += 1;
    this.dropUpstream();
    this.retryOrFail(u, 'upstream_lost');
  }

  private upstreamBroken(reason: string): void {
    const u = this.up?.state;
    this.dropUpstream();
    if (u && this.group) this.route.registry.failure(u, this.group, reason);
    // Once a byte of the response went to the client it cannot be told otherwise; until then it gets a 502.
    if (this.resBytes > 0) this.client.destroy();
    else this.answer(502, 'Bad Gateway', 'the upstream sent a malformed response\n');
  }

  /** The response is complete; `garbage` means the upstream sent more than the response, so it is not reused. */
  private complete(garbage: boolean): void {
    const req = this.req!;
    const res = this.res!;
    // A body the upstream's close delimited reaches the client delimited the same way: its connection ends too.
    const closeDelimited = this.resFramer.mode === 'close';
    this.observe(res.status);
    const c = this.up!;
    this.up = null;
    this.clearResponseTimer();
    c.state.active -= 1;
    c.served += 1;
    if (res.status < 500) this.route.registry.success(c.state);
    const reusable = !garbage && !res.close && this.reqPhase === 'done' && !closeDelimited && !req.upgrade;
    if (reusable) {
      c.idleSince = now();
      this.idleUp = c;
      // Paused if the client's write of the last bytes returned false (its 'drain' resumes only `this.up`): an idle
      // connection is read, for its next response and to notice the upstream's close.
      c.socket.resume();
    } else c.destroy();
    this.resPhase = 'idle';
    this.req = null;
    this.res = null;
    if (this.wantsClose || this.draining || this.reqPhase !== 'done' || res.close || closeDelimited) return this.finish();
    this.reqPhase = 'head';
    const stash = this.stash;
    this.stash = null;
    const wasPaused = this.pausedForStash;
    this.pausedForStash = false;
    if (stash) this.process(stash, 0, 0);
    else if (this.clientEnded) return this.finish();
    if (wasPaused && !this.closed && !this.pausedForStash && !this.pausedForUpstream) this.client.resume();
  }

  private observe(status: number): void {
    const seconds = (now() - this.startedAt) / 1000;
    this.route.observeHttp(this.req!.method, status, seconds);
    const r = this.logged;
    if (r === null) return;
    this.logged = null;
    this.route.access!.write({
      exposure: this.route.spec.name,
      client: this.remote(),
      method: r.method,
      host: r.host,
      target: r.target,
      status,
      duration_ms: Math.round(seconds * 10_000) / 10,
      upstream: this.servedBy,
      request_bytes: this.reqBytes,
      response_bytes: this.resBytes,
      tls: this.conn.tlsVersion,
    });
  }

  /** An answer of the proxy's own, then the connection closes. */
  private answer(status: number, reason: string, body: string, headers = ''): void {
    const response = errorResponse(status, reason, body, headers);
    this.resBytes = response.length;
    if (this.req) this.observe(status);
    this.connecting?.cancel();
    this.connecting = null;
    this.dropUpstream();
    this.resPhase = 'idle';
    this.reqPhase = 'done';
    this.req = null;
    this.finish(response);
  }

  /** An answer before the request has a route: counted on the port, never in a route's histogram. */
  private reject(reason: 'badRequest' | 'headTooLarge' | 'headTimeout' | 'noRoute' | 'misdirected', status: number, text: string, body: string): null {
    this.source.stats[reason] += 1;
    this.req = null;
    this.logged = null;
    this.answer(status, text, body);
    return null;
  }

  /** Ends our side, and reads (and drops) whatever the client still sends until it closes too. */
  private finish(last?: Buffer): void {
    this.finishing = true;
    this.clearHeadTimer();
    this.stash = null;
    this.releaseIdle();
    if (this.client.destroyed) return;
    if (last) this.client.end(last);
    else this.client.end();
    this.client.resume();
  }

  drain(): void {
    this.draining = true;
    if (this.resPhase === 'idle' && this.partial === null && this.stash === null && !this.finishing) this.finish();
  }

  abort(): void {
    this.connecting?.cancel();
    this.connecting = null;
    this.client.destroy();
  }
}
