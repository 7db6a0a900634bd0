/**
 * Reading the routes file that glowd writes (src/node/routes.ts) and turning it into the proxy's frontends.
 *
 * The file is checked in full before anything is applied: a file that does not have the shape of ProxyRoutes
 * version 1 is refused with GLOW_E_PROXY_ROUTES_INVALID and the path of the first bad value, and the running
 * proxy keeps the routes it has. Pure apart from `readRoutesFile`.
 *
 * A frontend is one bound socket: `tcp|udp bind:port`. It carries one or more routes: a loopback listener is one
 * route; exposures are routes too, and several http exposures may share one port (Host routing, a later issue),
 * so a frontend holds a list and the first route serves until that issue lands.
 */
import { readFileSync } from 'node:fs';
import type { HealthCheck, Listener, PlannedExposure, Upstream, UpstreamGroup } from '../plan/node-plan.js';
import type { ProxyRoutes } from '../node/routes.js';
import type { Balance, Protocol } from '../config/model.js';
import { ProxyError } from './errors.js';

export interface RoutePolicy {
  readonly balance: Balance;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly retries: number;
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
}

export interface FrontendSpec {
  /** `tcp 127.0.0.1:15432`, `udp 0.0.0.0:53`: the identity of a bound socket across reloads. */
  readonly key: string;
  readonly transport: 'tcp' | 'udp';
  readonly bind: string;
  readonly port: number;
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
  return value as ProxyRoutes;
}

/** The frontends of a routes file, sorted by key; routes that share a socket are grouped on one frontend. */
export function frontendsOf(routes: ProxyRoutes): FrontendSpec[] {
  const byKey = new Map<string, { transport: 'tcp' | 'udp'; bind: string; port: number; routes: RouteSpec[] }>();
  const add = (bind: string, port: number, route: RouteSpec) => {
    const transport = route.protocol === 'udp' ? 'udp' : 'tcp';
    const key = `${transport} ${bind.includes(':') ? `[${bind}]` : bind}:${port}`;
    let f = byKey.get(key);
    if (!f) byKey.set(key, (f = { transport, bind, port, routes: [] }));
    f.routes.push(route);
  };
  for (const l of routes.listeners) add(l.bind, l.port, routeOfListener(l));
  for (const e of routes.exposures) add(e.bind, e.port, routeOfExposure(e));
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, f]) => ({ key, ...f }));
}

function routeOfListener(l: Listener): RouteSpec {
  return { name: l.name, kind: 'listener', service: l.service, protocol: l.protocol, policy: l.policy, groups: l.groups, hosts: [] };
}

function routeOfExposure(e: PlannedExposure): RouteSpec {
  return { name: e.name, kind: 'exposure', service: e.service, protocol: e.protocol, policy: e.policy, groups: e.groups, hosts: e.hosts };
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
    this.arr(o['hosts'] ?? [], `${at}.hosts`).forEach((h, i) => this.str(h, `${at}.hosts[${i}]`));
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
