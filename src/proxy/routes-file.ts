/**
 * Reading the routes file that glowd writes (src/render/routes.ts) and turning it into the proxy's frontends.
 *
 * The file is checked in full before anything is applied: a file that does not have the shape of ProxyRoutes
 * version 1 is refused with GLOW_E_PROXY_ROUTES_INVALID and the path of the first bad value, and the running
 * proxy keeps the routes it has. Pure apart from `readRoutesFile`.
 *
 * A frontend is one bound socket: `tcp|udp bind:port`. It carries one or more routes: a loopback listener is one
 * route; exposures are routes too, several http exposures may share one port (routed by Host and path, see
 * src/proxy/host-router.ts), and an exposure with `redirectHttp` adds a route on that plain port that answers 308.
 * A tcp frontend terminates TLS when its routes name certificates: all of them, or none (a mix is refused).
 */
import { readFileSync } from 'node:fs';
import type { HealthCheck, Listener, Upstream, UpstreamGroup } from '../plan/node-plan.js';
import type { ProxyRoutes, RoutedExposure } from '../render/routes.js';
import type { Balance, ExposureLimits, Protocol } from '../config/model.js';
import { parseCidr } from '../config/notation.js';
import type { TlsFiles } from './certificates.js';
import { ProxyError } from './errors.js';
import { MAX_HEAD_BYTES } from './http-head.js';

export interface RoutePolicy {
  readonly balance: Balance;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** HTTP: the longest wait for a response head once the request is sent (src/proxy/http-session.ts); 0: none. */
  readonly responseTimeoutMs: number;
  readonly retries: number;
}

/** The response timeout of a routes file that does not name one (written before the key existed). */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000;

function policyOf(p: Omit<RoutePolicy, 'responseTimeoutMs'> & { readonly responseTimeoutMs?: number }): RoutePolicy {
  return p.responseTimeoutMs === undefined ? { ...p, responseTimeoutMs: DEFAULT_RESPONSE_TIMEOUT_MS } : (p as RoutePolicy);
}

/** What one listener or exposure asks of the proxy. */
export interface RouteSpec {
  /** The metrics label `listener`: the listener's name (its local port) or the exposure's name. */
  readonly name: string;
  readonly kind: 'listener' | 'exposure';
  readonly service: string;
  readonly protocol: Protocol;
  readonly policy: RoutePolicy;
  /** The service, then its fallbacks in order. */
  readonly groups: readonly UpstreamGroup[];
  /** Exposures: the Host names it answers (empty: any). */
  readonly hosts: readonly string[];
  /** Exposures: the path prefix it answers (absent: any). */
  readonly path?: string;
  /** Exposures: the certificate and key files (absolute paths) when it terminates TLS. */
  readonly tls?: TlsFiles;
  /** A redirect_http route: answers every request with 308 to `https://host[:redirectTo]/…`; no upstreams. */
  readonly redirectTo?: number;
  /** One access-log line per request or connection. */
  readonly accessLog: boolean;
  readonly limits: ExposureLimits;
  /** Exposures set X-Forwarded-For/-Proto/-Host; loopback listeners pass heads as they are. */
  readonly forwarded: boolean;
  /** Clients whose X-Forwarded-* headers are kept and appended to (CIDRs). */
  readonly trustedProxies: readonly string[];
}

/** A loopback listener's limits: the head limit of the parser, no body limit. */
export const LISTENER_LIMITS: ExposureLimits = { headBytes: MAX_HEAD_BYTES, bodyBytes: 0 };

export interface FrontendSpec {
  /** `tcp 127.0.0.1:15432`, `udp 0.0.0.0:53`: the identity of a bound socket across reloads. */
  readonly key: string;
  readonly transport: 'tcp' | 'udp';
  readonly bind: string;
  readonly port: number;
  /** Terminates TLS (its routes name certificates). */
  readonly tls: boolean;
  readonly routes: readonly RouteSpec[];
}

export function readRoutesFile(path: string): ProxyRoutes {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ProxyError('GLOW_E_PROXY_ROUTES_UNREADABLE', `cannot read the routes file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseRoutes(text, path);
}

export function parseRoutes(text: string, path = 'routes.json'): ProxyRoutes {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ProxyError('GLOW_E_PROXY_ROUTES_INVALID', `${path} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  const v = new Validator(path);
  v.routes(value);
  const routes = value as ProxyRoutes;
  // Per socket: TLS for all routes or for none; no TLS on udp.
  for (const f of frontendsOf(routes)) {
    const withTls = f.routes.filter((r) => r.tls);
    if (f.transport === 'udp' && withTls.length) throw new ProxyError('GLOW_E_PROXY_ROUTES_INVALID', `${path}: ${f.key}: exposure ${withTls[0]!.name} asks for TLS on udp`);
    if (withTls.length && withTls.length !== f.routes.length) {
      const plain = f.routes.find((r) => !r.tls)!;
      throw new ProxyError('GLOW_E_PROXY_ROUTES_INVALID', `${path}: ${f.key}: ${withTls[0]!.kind} ${withTls[0]!.name} terminates TLS but ${plain.kind} ${plain.name} on the same socket does not`);
    }
  }
  return routes;
}

/** The frontends of a routes file, sorted by key; routes that share a socket are grouped on one frontend. */
export function frontendsOf(routes: ProxyRoutes): FrontendSpec[] {
  const byKey = new Map<string, { transport: 'tcp' | 'udp'; bind: string; port: number; tls: boolean; routes: RouteSpec[] }>();
  const add = (bind: string, port: number, route: RouteSpec) => {
    const transport = route.protocol === 'udp' ? 'udp' : 'tcp';
    const key = `${transport} ${bind.includes(':') ? `[${bind}]` : bind}:${port}`;
    let f = byKey.get(key);
    if (!f) byKey.set(key, (f = { transport, bind, port, tls: false, routes: [] }));
    f.routes.push(route);
    if (route.tls) f.tls = true;
  };
  for (const l of routes.listeners) add(l.bind, l.port, routeOfListener(l));
  for (const e of routes.exposures) {
    const r = routeOfExposure(e);
    add(e.bind, e.port, r);
    if (e.redirectHttp !== undefined) {
      const { tls: _t, ...plain } = r;
      add(e.bind, e.redirectHttp, { ...plain, groups: [], redirectTo: e.port });
    }
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, f]) => ({ key, ...f }));
}

function routeOfListener(l: Listener): RouteSpec {
  return {
    name: l.name,
    kind: 'listener',
    service: l.service,
    protocol: l.protocol,
    policy: policyOf(l.policy),
    groups: l.groups,
    hosts: [],
    accessLog: false,
    limits: LISTENER_LIMITS,
    forwarded: false,
    trustedProxies: [],
  };
}

function routeOfExposure(e: RoutedExposure): RouteSpec {
  return {
    name: e.name,
    kind: 'exposure',
    service: e.service,
    protocol: e.protocol,
    policy: policyOf(e.policy),
    groups: e.groups,
    hosts: e.hosts,
    ...(e.path !== undefined ? { path: e.path } : {}),
    ...(e.tls ? { tls: e.tls } : {}),
    accessLog: e.accessLog === true,
    limits: e.limits ?? LISTENER_LIMITS,
    forwarded: true,
    trustedProxies: e.trustedProxies ?? [],
  };
}

type Obj = Record<string, unknown>;

/** A small structural check with the JSON path of the first bad value in its message. */
class Validator {
  constructor(private readonly file: string) {}

  private fail(at: string, what: string): never {
    throw new ProxyError('GLOW_E_PROXY_ROUTES_INVALID', `${this.file}: ${at} ${what}`);
  }

  private obj(v: unknown, at: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(at, 'must be an object');
    return v as Obj;
  }

  private arr(v: unknown, at: string): unknown[] {
    if (!Array.isArray(v)) this.fail(at, 'must be an array');
    return v;
  }

  private str(v: unknown, at: string): string {
    if (typeof v !== 'string' || v === '') this.fail(at, 'must be a non-empty string');
    return v;
  }

  private int(v: unknown, at: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(at, `must be an integer in ${min}–${max}`);
    return v;
  }

  private oneOf<T extends string>(v: unknown, at: string, allowed: readonly T[]): T {
    if (!allowed.includes(v as T)) this.fail(at, `must be one of ${allowed.join(', ')}`);
    return v as T;
  }

  routes(v: unknown): void {
    const r = this.obj(v, '$');
    if (r['version'] !== 1) this.fail('$.version', 'must be 1 (this proxy reads routes version 1)');
    this.str(r['node'], '$.node');
    this.arr(r['listeners'], '$.listeners').forEach((l, i) => this.listener(l, `$.listeners[${i}]`));
    this.arr(r['exposures'] ?? [], '$.exposures').forEach((e, i) => this.exposure(e, `$.exposures[${i}]`));
  }

  private common(o: Obj, at: string): void {
    this.str(o['bind'], `${at}.bind`);
    this.int(o['port'], `${at}.port`, 1, 65535);
    const protocol = this.oneOf(o['protocol'], `${at}.protocol`, ['tcp', 'udp', 'http'] as const);
    this.str(o['service'], `${at}.service`);
    const p = this.obj(o['policy'], `${at}.policy`);
    this.oneOf(p['balance'], `${at}.policy.balance`, ['least-conn', 'round-robin'] as const);
    this.int(p['connectTimeoutMs'], `${at}.policy.connectTimeoutMs`, 1, 3_600_000);
    this.int(p['idleTimeoutMs'], `${at}.policy.idleTimeoutMs`, 1, 2_147_483_647);
    if (p['responseTimeoutMs'] !== undefined) this.int(p['responseTimeoutMs'], `${at}.policy.responseTimeoutMs`, 0, 2_147_483_647);
    this.int(p['retries'], `${at}.policy.retries`, 0, 100);
    const groups = this.arr(o['groups'], `${at}.groups`);
    if (groups.length === 0) this.fail(`${at}.groups`, 'must hold at least the service itself');
    groups.forEach((g, i) => this.group(g, `${at}.groups[${i}]`, protocol));
  }

  private listener(v: unknown, at: string): void {
    const o = this.obj(v, at);
    this.str(o['name'], `${at}.name`);
    this.common(o, at);
  }

  private exposure(v: unknown, at: string): void {
    const o = this.obj(v, at);
    this.str(o['name'], `${at}.name`);
    this.common(o, at);
    this.arr(o['hosts'] ?? [], `${at}.hosts`).forEach((h, i) => {
      const host = this.str(h, `${at}.hosts[${i}]`);
      if (!/^(\*\.)?[a-z0-9_.-]+$/.test(host)) this.fail(`${at}.hosts[${i}]`, 'must be a lower-case host name or `*.` and one');
    });
    if (o['path'] !== undefined) {
      const p = this.str(o['path'], `${at}.path`);
      if (!p.startsWith('/') || /[\s\x00-\x1f\x7f]/.test(p)) this.fail(`${at}.path`, 'must be an absolute path without spaces or control characters');
    }
    if (o['tls'] !== undefined) {
      const t = this.obj(o['tls'], `${at}.tls`);
      for (const part of ['cert', 'key'] as const) {
        const p = this.str(t[part], `${at}.tls.${part}`);
        if (!p.startsWith('/')) this.fail(`${at}.tls.${part}`, 'must be an absolute path (the file glowd delivered, or one of the node)');
      }
    }
    if (o['redirectHttp'] !== undefined) {
      this.int(o['redirectHttp'], `${at}.redirectHttp`, 1, 65535);
      if (o['protocol'] !== 'http') this.fail(`${at}.redirectHttp`, 'is for http exposures only');
      if (o['tls'] === undefined) this.fail(`${at}.redirectHttp`, 'needs tls');
    }
    if (o['accessLog'] !== undefined && typeof o['accessLog'] !== 'boolean') this.fail(`${at}.accessLog`, 'must be true or false');
    if (o['limits'] !== undefined) {
      const l = this.obj(o['limits'], `${at}.limits`);
      this.int(l['headBytes'], `${at}.limits.headBytes`, 1024, 1024 * 1024);
      this.int(l['bodyBytes'], `${at}.limits.bodyBytes`, 0, Number.MAX_SAFE_INTEGER);
    }
    this.arr(o['trustedProxies'] ?? [], `${at}.trustedProxies`).forEach((c, i) => {
      if (typeof c !== 'string' || !parseCidr(c).ok) this.fail(`${at}.trustedProxies[${i}]`, 'must be an address or a network written address/prefix');
    });
  }

  private group(v: unknown, at: string, protocol: Protocol): UpstreamGroup {
    const g = this.obj(v, at);
    this.str(g['service'], `${at}.service`);
    this.oneOf(g['kind'], `${at}.kind`, ['app', 'external'] as const);
    const gp = this.oneOf(g['protocol'], `${at}.protocol`, ['tcp', 'udp', 'http'] as const);
    if ((gp === 'udp') !== (protocol === 'udp')) this.fail(`${at}.protocol`, `is ${gp} but the route is ${protocol}`);
    this.arr(g['upstreams'], `${at}.upstreams`).forEach((u, i) => this.upstream(u, `${at}.upstreams[${i}]`));
    this.health(g['health'], `${at}.health`);
    return g as unknown as UpstreamGroup;
  }

  private upstream(v: unknown, at: string): Upstream {
    const u = this.obj(v, at);
    if (u['node'] !== null) this.str(u['node'], `${at}.node`);
    this.str(u['host'], `${at}.host`);
    this.int(u['port'], `${at}.port`, 1, 65535);
    if (typeof u['local'] !== 'boolean') this.fail(`${at}.local`, 'must be true or false');
    if (u['instance'] !== undefined) this.int(u['instance'], `${at}.instance`, 0, 1_000_000);
    return u as unknown as Upstream;
  }

  private health(v: unknown, at: string): HealthCheck {
    const h = this.obj(v, at);
    const type = this.oneOf(h['type'], `${at}.type`, ['tcp', 'http', 'none'] as const);
    if (type === 'http') {
      const path = this.str(h['path'], `${at}.path`);
      if (!path.startsWith('/') || /[\s\x00-\x1f\x7f]/.test(path)) this.fail(`${at}.path`, 'must be an absolute path without spaces or control characters');
    }
    if (h['port'] !== undefined) this.int(h['port'], `${at}.port`, 1, 65535);
    this.int(h['intervalMs'], `${at}.intervalMs`, 1, 86_400_000);
    this.int(h['timeoutMs'], `${at}.timeoutMs`, 1, 86_400_000);
    this.int(h['rise'], `${at}.rise`, 1, 1000);
    this.int(h['fall'], `${at}.fall`, 1, 1000);
    return h as unknown as HealthCheck;
  }
}
