/**
 * One proxied TCP connection: connect to an upstream (with retries, before reading a byte from the client), then
 * relay both ways with a hand-written loop (pause on a full write buffer, resume on drain), pass half-closes on,
 * close both on an error or after `idleTimeoutMs` without traffic, and count bytes once, at close, from
 * `bytesRead`/`bytesWritten`. Nothing is allocated per chunk.
 *
 * A connection that no upstream accepts is reset (the client sees ECONNRESET, never data from a wrong place) and
 * counted in `glow_proxy_refused_total`. (A TLS client cannot be reset: its connection is closed.) An exposure
 * with an access log gets one line per connection when it closes.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { clientAddress } from './access-log.js';
import { now } from './clock.js';
import { connectWithRetries, type Attempt, type Refusal } from './connector.js';
import type { ConnectionInfo } from './route-source.js';
import type { LiveRoute } from './live-route.js';
import type { Session } from './session.js';
import type { UpstreamState } from './upstream-registry.js';

/** Resets a connection (RST) when it is a plain TCP one; a TLS connection is closed. */
export function resetSocket(s: Socket): void {
  if (s instanceof TLSSocket) s.destroy();
  else s.resetAndDestroy();
}

/** A TCP connection was accepted (both data paths count alike). */
export function recordOpen(route: LiveRoute): void {
  route.stats.opened += 1;
  route.stats.active += 1;
}

/** No upstream took a TCP connection. */
export function recordRefusal(route: LiveRoute, refusal: Refusal): Refusal {
  if (refusal === 'no_upstream') route.stats.refusedNoUpstream += 1;
  else route.stats.refusedConnectFailed += 1;
  return refusal;
}

export interface ClosedConnection {
  readonly startedAt: number;
  readonly client: string;
  readonly upstream: string | null;
  readonly refusal: Refusal | null;
  readonly receivedBytes: number;
  readonly sentBytes: number;
  readonly tls: string | null;
}

/** A TCP connection closed: its counters, and its access-log line when the route keeps one. */
export function recordClose(route: LiveRoute, c: ClosedConnection): void {
  const stats = route.stats;
  stats.active -= 1;
  stats.closed += 1;
  stats.receivedBytes += c.receivedBytes;
  stats.sentBytes += c.sentBytes;
  route.access?.write({
    exposure: route.spec.name,
    client: c.client,
    upstream: c.upstream,
    result: c.refusal ?? 'ok',
    duration_ms: Math.round((now() - c.startedAt) * 10) / 10,
    received_bytes: c.receivedBytes,
    sent_bytes: c.sentBytes,
    tls: c.tls,
  });
}

export class TcpSession implements Session {
  private upstream: Socket | null = null;
  private attempt: Attempt | null = null;
  private closed = false;
  private readonly startedAt = now();
  private upstreamAddress: string | null = null;
  private refusal: Refusal | null = null;
  private readonly remote: string;

  constructor(
    private readonly client: Socket,
    private readonly route: LiveRoute,
    private readonly onClose: (s: Session) => void,
    private readonly conn: ConnectionInfo | null = null,
  ) {
    this.remote = route.access ? clientAddress(client.remoteAddress) : '';
    recordOpen(route);
    client.setTimeout(route.spec.policy.idleTimeoutMs);
    client.on('timeout', () => this.abort());
    client.on('error', () => {
      /* 'close' follows */
    });
    client.on('close', () => this.clientClosed());
    // A paused socket still emits 'end' when the peer closes before sending anything: remember it.
    client.on('end', () => this.upstream?.end());
    this.attempt = connectWithRetries(route, (socket, state, refusal) => {
      this.attempt = null;
      if (socket === null) {
        this.refusal = recordRefusal(route, refusal!);
        if (!client.destroyed) resetSocket(client);
        return;
      }
      this.upstreamAddress = state!.address;
      if (this.closed) {
        socket.destroy();
        state!.active -= 1;
        return;
      }
      this.relay(socket, state!);
    });
  }

  private relay(up: Socket, state: UpstreamState): void {
    this.upstream = up;
    const client = this.client;
    client.on('data', (chunk: Buffer) => {
      if (!up.write(chunk)) client.pause();
    });
    up.on('drain', () => client.resume());
    up.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) up.pause();
    });
    client.on('drain', () => up.resume());
    if (client.readableEnded) up.end();
    up.on('end', () => client.end());
    up.on('error', () => {
      /* 'close' follows */
    });
    up.on('close', (hadError: boolean) => {
      state.active -= 1;
      // An upstream reset is passed on as a reset; a clean close has already ended the client's side.
      if (hadError && !client.destroyed) resetSocket(client);
    });
  }

  private clientClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.attempt?.cancel();
    const up = this.upstream;
    if (up && !up.destroyed) {
      // The client is gone both ways (or was reset): nobody is left to read the upstream.
      if (this.client.readableEnded && this.client.writableFinished) up.end();
      else up.resetAndDestroy();
    }
    recordClose(this.route, {
      startedAt: this.startedAt,
      client: this.remote,
      upstream: this.upstreamAddress,
      refusal: this.refusal,
      receivedBytes: this.client.bytesRead,
      sentBytes: this.client.bytesWritten,
      tls: this.conn?.tlsVersion ?? null,
    });
    this.onClose(this);
  }

  /** A draining TCP connection runs until either side ends it (or the idle timeout). */
  drain(): void {}

  abort(): void {
    this.attempt?.cancel();
    if (this.upstream && !this.upstream.destroyed) this.upstream.destroy();
    if (!this.client.destroyed) this.client.destroy();
  }
}
