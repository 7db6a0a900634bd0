/**
 * Which route of a port serves a request (src/proxy/http-session.ts asks once per request): the Host — the
 * authority of an absolute-form target (`GET http://host/…`) when there is one, else the Host header — and the path,
 * matched by the port's routes (src/proxy/host-router.ts). Refused before any route: a Host that is no host name
 * and an HTTP/1.1 request without one (400), a host no route serves (404), and on TLS a Host whose certificate is
 * not the one the client's SNI chose (421). A loopback listener has one route and reads no Host at all.
 */
import { hostOf, targetOf, type RequestHead } from './http-head.js';
import { normalizeHost, splitTarget } from './host-router.js';
import type { LiveRoute } from './live-route.js';
import type { ConnectionInfo, RouteSource } from './route-source.js';

export interface Routed {
  readonly route: LiveRoute;
  /** The host the request was routed on, as sent (with its port, if any); null when it sent none. */
  readonly host: string | null;
  /** The host came from an absolute-form target, not from the Host header. */
  readonly hostFromTarget: boolean;
  /** The request target as sent ('' on a port that does not route). */
  readonly target: string;
}

export interface Refused {
  /** The FrontendStats counter it counts in. */
  readonly reason: 'badRequest' | 'noRoute' | 'misdirected';
  readonly status: 400 | 404 | 421;
  readonly text: string;
  readonly body: string;
}

const refused = (reason: Refused['reason'], status: Refused['status'], text: string, body: string): Refused => ({ reason, status, text, body });

/** Routes the request whose head was parsed at buf[off..] (as given to parseRequestHead). */
export function routeRequest(source: RouteSource, conn: ConnectionInfo, buf: Buffer, off: number, head: RequestHead): Routed | Refused {
  const only = source.only;
  if (only !== null && !only.spec.forwarded) return { route: only, host: null, hostFromTarget: false, target: '' };
  const target = targetOf(buf, off, head);
  const split = splitTarget(target);
  const hostValue = split.host ?? hostOf(buf, off, head);
  let host: string | null = null;
  if (hostValue !== null) {
    host = normalizeHost(hostValue);
    if (host === null) return refused('badRequest', 400, 'Bad Request', 'invalid Host header\n');
  } else if (head.minor === 1) return refused('badRequest', 400, 'Bad Request', 'no Host header\n');
  const route = only ?? source.route(host, split.path);
  if (route === null) return refused('noRoute', 404, 'Not Found', 'not found\n');
  const sni = conn.servername;
  if (sni !== null && route.cert !== null && host !== sni && source.certFor(sni) !== route.cert) {
    return refused('misdirected', 421, 'Misdirected Request', 'this host is not served on this TLS connection\n');
  }
  return { route, host: hostValue, hostFromTarget: split.host !== null, target };
}
