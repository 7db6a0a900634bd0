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
    const stats = route.stats;
    stats.opened += 1;
    stats.active += 1;
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
        this.refusal = refusal;
        if (refusal === 'no_upstream') stats.refusedNoUpstream += 1;
        else stats.refusedConnectFailed += 1;
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
    const stats = this.route.stats;
    stats.active -= 1;
    stats.closed += 1;
    stats.receivedBytes += this.client.bytesRead;
    stats.sentBytes += this.client.bytesWritten;
    this.attempt?.cancel();
    const up = this.upstream;
    if (up && !up.destroyed) {
      // The client is gone both ways (or was reset): nobody is left to read the upstream.
      if (this.client.readableEnded && this.client.writableFinished) up.end();
      else up.resetAndDestroy();
    }
    this.route.access?.write({
      exposure: this.route.spec.name,
      client: this.remote,
      upstream: this.upstreamAddress,
      result: this.refusal ?? 'ok',
      duration_ms: Math.round((now() - this.startedAt) * 10) / 10,
      received_bytes: this.client.bytesRead,
      sent_bytes: this.client.bytesWritten,
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
