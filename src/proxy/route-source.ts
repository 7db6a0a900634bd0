/**
 * What a listening socket (src/proxy/tcp-frontend.ts) tells the sessions it starts: the routes of the port as they
 * are now (an HTTP session asks again for every request), its limits and counters, and what the accepting socket
 * knows about the connection (TLS terminated, the SNI name).
 */
import type { CertEntry } from './certificates.js';
import type { LiveRoute } from './live-route.js';
import type { FrontendStats } from './metrics.js';
import type { Dial } from './native-socket.js';

export interface RouteSource {
  /** The one route of a port without Host or path routing (a loopback listener, a lone catch-all exposure). */
  readonly only: LiveRoute | null;
  /** The port's default route: a connection's idle timeout before its first request, its metrics if it never sends one. */
  readonly fallback: LiveRoute;
  /** The route in force now for a request (host normalised, or null when none was sent; path without query). */
  route(host: string | null, path: string): LiveRoute | null;
  /** The largest head any route of the port accepts. */
  readonly maxHeadBytes: number;
  /** How long a client may take from the first byte of a request head to its blank line (then 408, closed). */
  readonly headTimeoutMs: number;
  readonly stats: FrontendStats;
  /** How the port's sessions open upstream connections (a Node socket, or the native relay's stream socket). */
  readonly dial: Dial;
  /** The certificate a TLS handshake with this server name was given. */
  certFor(servername: string): CertEntry | null;
}

/** What the accepting socket knows about a connection. */
export interface ConnectionInfo {
  /** TLS was terminated here. */
  readonly secure: boolean;
  /** The SNI name the client sent (TLS), normalised. */
  readonly servername: string | null;
  readonly tlsVersion: string | null;
}

export const PLAIN_CONNECTION: ConnectionInfo = { secure: false, servername: null, tlsVersion: null };
