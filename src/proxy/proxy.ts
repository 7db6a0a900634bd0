/**
 * The proxy: every frontend of the node, changed in place when new routes arrive.
 *
 * `apply(routes)` compares the frontends wanted (by key, `tcp|udp bind:port`) with those running:
 * - a frontend that is gone stops accepting at once and drains: its TCP connections run until their peers end
 *   them (or their idle timeout), HTTP connections close at their next request boundary, UDP sessions end;
 * - a frontend that stays keeps its socket and takes the new routes for new connections (and new HTTP requests);
 * - a new frontend binds; one that cannot bind is reported (log, /status, glow_proxy_frontend_up) and tried
 *   again every few seconds, while everything else serves.
 * Upstreams that stay keep their health and ejections (src/proxy/upstream-registry.ts). Nothing restarts.
 *
 * `reload(file)` reads and checks the whole file first: a bad file is logged and counted, and the routes in force
 * stay. Reloads run one at a time. `stop(drainMs)` stops accepting everywhere, drains, and ends what is left
 * when the time is up.
 */
import { PROXY_EVENTS } from './log-events.js';
import type { Logger } from 'pino';
import type { ProxyRoutes } from '../render/routes.js';
import type { AccessLog } from './access-log.js';
import { DEFAULT_PANIC_SHARE } from './balancer.js';
import { CertStore } from './certificates.js';
import { now } from './clock.js';
import { sweepPool } from './upstream-pool.js';
import { LiveRoute } from './live-route.js';
import { ProxyMetrics, type CertificateView } from './metrics.js';
import { DEFAULT_RETRY_BUDGET, RetryBudget, type RetryBudgetOptions } from './retry-budget.js';
import { frontendsOf, readRoutesFile, type FrontendSpec, type RouteSpec } from './routes-file.js';
import { chooseDataPath, nativeRelay, type DataPath } from './native-relay.js';
import { HEAD_TIMEOUT_MS, nativeMode, TcpFrontend, TLS_HANDSHAKE_TIMEOUT_MS } from './tcp-frontend.js';
import { UdpFrontend } from './udp-frontend.js';
import { DEFAULT_EJECTION, type EjectionPolicy } from './upstream-health.js';
import { UpstreamRegistry } from './upstream-registry.js';

export interface ProxyOptions {
  readonly log: Logger;
  readonly ejection?: EjectionPolicy;
  /** The last group's panic threshold (share of usable upstreams); see src/proxy/balancer.ts. */
  readonly panicShare?: number;
  readonly retryBudget?: RetryBudgetOptions;
  /** Idle keep-alive connections to upstreams are closed after this long (shorter than most servers' own). */
  readonly poolIdleMs?: number;
  /** A frontend that failed to bind is tried again this often. */
  readonly bindRetryMs?: number;
  /** Where exposures with `accessLog` write their lines (none: they write nothing). */
  readonly accessLog?: AccessLog;
  /** Certificate files are looked at this often for changes (default 1000 ms). */
  readonly certPollMs?: number;
  /** How long an HTTP client may take to send a request head once it began (default HEAD_TIMEOUT_MS, 10 s; then 408). */
  readonly headTimeoutMs?: number;
  /** How long a client may take to complete its TLS handshake (default TLS_HANDSHAKE_TIMEOUT_MS; tests shorten it). */
  readonly tlsHandshakeTimeoutMs?: number;
  /** The data path of plain TCP listeners (default: chooseDataPath(), from GLOW_PROXY_DATA_PATH; src/proxy/native-relay.ts). */
  readonly dataPath?: DataPath;
}

type Frontend = TcpFrontend | UdpFrontend;

export interface ApplyResult {
  readonly opened: string[];
  readonly closed: string[];
  readonly kept: string[];
  /** Frontends that could not bind, with the error code. */
  readonly failed: { key: string; error: string }[];
}

export class Proxy {
  readonly metrics: ProxyMetrics;
  readonly registry: UpstreamRegistry;
  readonly certs: CertStore;
  private readonly access: AccessLog | null;
  private readonly log: Logger;
  private readonly frontends = new Map<string, Frontend>();
  private readonly draining = new Set<TcpFrontend>();
  private routes: LiveRoute[] = [];
  private readonly budgets = new Map<string, RetryBudget>();
  private readonly panicShare: number;
  private readonly budgetOptions: RetryBudgetOptions;
  private readonly bindRetryMs: number;
  private readonly headTimeoutMs: number;
  private readonly handshakeTimeoutMs: number;
  readonly dataPath: DataPath;
  private node = '';
  private appliedAt: string | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly sweeper: NodeJS.Timeout;
  private bindRetry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(opts: ProxyOptions) {
    this.log = opts.log;
    this.panicShare = opts.panicShare ?? DEFAULT_PANIC_SHARE;
    this.budgetOptions = opts.retryBudget ?? DEFAULT_RETRY_BUDGET;
    this.bindRetryMs = opts.bindRetryMs ?? 2000;
    this.headTimeoutMs = opts.headTimeoutMs ?? HEAD_TIMEOUT_MS;
    this.handshakeTimeoutMs = opts.tlsHandshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS;
    this.dataPath = opts.dataPath ?? chooseDataPath();
    this.registry = new UpstreamRegistry(opts.log, opts.ejection ?? DEFAULT_EJECTION, {
      onRetired: (u) => this.metrics.retireUpstream(u),
    });
    this.certs = new CertStore(opts.log, opts.certPollMs ?? 1000, this.dataPath === 'native' ? nativeRelay() : null);
    this.access = opts.accessLog ?? null;
    this.metrics = new ProxyMetrics({
      upstreams: () => this.registry.upstreams(),
      frontends: () => this.frontends.values(),
      certificates: () => this.certificateViews(),
    });
    const poolIdleMs = opts.poolIdleMs ?? 3000;
    this.sweeper = setInterval(() => {
      const t = now();
      for (const u of this.registry.upstreams()) if (u.idle.length) sweepPool(u, poolIdleMs, t);
    }, Math.max(100, poolIdleMs / 4));
    this.sweeper.unref();
  }

  /** Applies routes (serialised with reloads). */
  apply(routes: ProxyRoutes): Promise<ApplyResult> {
    const run = this.chain.then(() => this.applyNow(routes));
    this.chain = run.catch(() => {});
    return run;
  }

  /** Re-reads the routes file; a bad file is logged and counted and the routes in force stay. */
  reload(file: string): Promise<boolean> {
    const run = this.chain.then(async () => {
      let routes: ProxyRoutes;
      try {
        routes = readRoutesFile(file);
      } catch (e) {
        this.metrics.reloadsFailed += 1;
        this.log.error({ event: PROXY_EVENTS.routesRefused, file, code: (e as { code?: string }).code, err: (e as Error).message }, 'routes file refused; the routes in force stay');
        return false;
      }
      const r = await this.applyNow(routes);
      this.metrics.reloadsOk += 1;
      this.log.info({ event: PROXY_EVENTS.routesReloaded, file, opened: r.opened, closed: r.closed, kept: r.kept.length, failed: r.failed }, 'routes reloaded');
      return true;
    });
    this.chain = run.catch(() => {});
    return run;
  }

  private async applyNow(routes: ProxyRoutes): Promise<ApplyResult> {
    if (this.stopped) return { opened: [], closed: [], kept: [], failed: [] };
    const specs = frontendsOf(routes);
    const wanted = new Map(specs.map((s) => [s.key, s]));
    const live = new Map<string, LiveRoute[]>();
    const all: LiveRoute[] = [];
    for (const spec of specs) {
      const lr = spec.routes.map((r) => new LiveRoute(r, this.registry, this.metrics, this.budgetOf(r), this.panicShare, this.certs, this.access));
      live.set(spec.key, lr);
      all.push(...lr);
    }
    const result: ApplyResult = { opened: [], closed: [], kept: [], failed: [] };
    // Close first, so that a port moving between frontends is free for its new bind.
    for (const [key, f] of this.frontends) {
      if (wanted.has(key)) continue;
      this.frontends.delete(key);
      this.retire(f);
      result.closed.push(key);
    }
    const binding: Frontend[] = [];
    for (const spec of specs) {
      let f = this.frontends.get(spec.key);
      if (f instanceof TcpFrontend && (f.spec.tls !== spec.tls || f.mode !== nativeMode(spec, this.dataPath))) {
        // Plain to TLS or back, or tcp to http on the native path: the same port, another kind of socket. The
        // old one drains, the new one binds.
        this.frontends.delete(spec.key);
        this.retire(f);
        result.closed.push(spec.key);
        f = undefined;
      }
      if (f) {
        f.setRoutes(spec, live.get(spec.key)!);
        result.kept.push(spec.key);
        if (!f.bound) binding.push(f);
        continue;
      }
      const nf = this.create(spec, live.get(spec.key)!);
      this.frontends.set(spec.key, nf);
      binding.push(nf);
      result.opened.push(spec.key);
    }
    await Promise.all(binding.map((f) => f.listen()));
    for (const f of binding) {
      if (f.bound) continue;
      result.failed.push({ key: f.key, error: f.error ?? 'unknown' });
      this.log.error({ event: PROXY_EVENTS.listenerBindFailed, frontend: f.key, code: 'GLOW_E_PROXY_BIND', err: f.error }, 'listener could not bind; retrying');
    }
    const old = this.routes;
    this.routes = all;
    for (const r of old) r.release();
    this.node = routes.node;
    this.appliedAt = new Date().toISOString();
    this.scheduleBindRetry();
    return result;
  }

  private budgetOf(r: RouteSpec): RetryBudget {
    const key = `${r.kind} ${r.name}`;
    let b = this.budgets.get(key);
    if (!b) this.budgets.set(key, (b = new RetryBudget(this.budgetOptions)));
    return b;
  }

  private create(spec: FrontendSpec, routes: LiveRoute[]): Frontend {
    return spec.transport === 'udp' ? new UdpFrontend(spec, routes, this.log) : new TcpFrontend(spec, routes, this.log, this.metrics.frontend(spec.key), this.headTimeoutMs, this.dataPath, this.handshakeTimeoutMs);
  }

  /** Every (exposure, certificate) served now, for the metrics. */
  private *certificateViews(): Iterable<CertificateView> {
    for (const r of this.routes) {
      const c = r.cert;
      if (c) yield { exposure: r.spec.name, certificate: c.files.cert, notAfterMs: c.context ? c.notAfterMs : 0, ok: c.context !== null && c.error === null };
    }
  }

  private retire(f: Frontend): void {
    if (f instanceof UdpFrontend) {
      f.close();
      return;
    }
    this.draining.add(f);
    void f.close().then(() => this.draining.delete(f));
  }

  private scheduleBindRetry(): void {
    if (this.bindRetry || this.stopped) return;
    if (![...this.frontends.values()].some((f) => !f.bound)) return;
    this.bindRetry = setTimeout(() => {
      this.bindRetry = null;
      const run = this.chain.then(async () => {
        if (this.stopped) return;
        const unbound = [...this.frontends.values()].filter((f) => !f.bound);
        await Promise.all(unbound.map((f) => f.listen()));
        for (const f of unbound) if (f.bound) this.log.info({ event: PROXY_EVENTS.listenerBound, frontend: f.key }, 'listener bound');
        this.scheduleBindRetry();
      });
      this.chain = run.catch(() => {});
    }, this.bindRetryMs);
  }

  /** Whether every frontend is bound. */
  get ready(): boolean {
    for (const f of this.frontends.values()) if (!f.bound) return false;
    return true;
  }

  status(): ProxyStatus {
    const t = now();
    const frontend = (f: Frontend, draining: boolean): FrontendStatus => ({
      key: f.key,
      bound: f.bound,
      tls: f.spec.tls,
      error: f.error,
      draining,
      native: f instanceof TcpFrontend && f.native,
      connections: f instanceof TcpFrontend ? f.sessions.size : f.sessionCount,
      routes: routeStatus(f.liveRoutes, t),
    });
    return {
      node: this.node,
      appliedAt: this.appliedAt,
      frontends: [...[...this.frontends.values()].map((f) => frontend(f, false)), ...[...this.draining].map((f) => frontend(f, true))],
    };
  }

  /** Stops accepting everywhere, drains for up to `drainMs`, then ends what is left. */
  async stop(drainMs: number): Promise<void> {
    this.stopped = true;
    if (this.bindRetry) clearTimeout(this.bindRetry);
    this.bindRetry = null;
    await this.chain;
    for (const [key, f] of this.frontends) {
      this.frontends.delete(key);
      this.retire(f);
    }
    const tcp = [...this.draining];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(tcp.map((f) => f.close())), new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))]);
    clearTimeout(timer);
    for (const f of tcp) f.abortAll();
    this.draining.clear();
    for (const r of this.routes) r.release();
    this.routes = [];
    this.registry.close();
    this.certs.close();
    clearInterval(this.sweeper);
  }
}

export interface UpstreamStatus {
  readonly address: string;
  readonly node: string | null;
  readonly instance: number | null;
  readonly local: boolean;
  /** By active checks (false while not yet checked: see `state`). */
  readonly healthy: boolean;
  /** What active checks say: `unknown` until the first check of a new upstream. */
  readonly state: 'unknown' | 'up' | 'down';
  readonly ejected: boolean;
  /** Milliseconds of ejection left. */
  readonly ejectedForMs: number;
  readonly ejections: number;
  readonly active: number;
  readonly lastCheckError: string | null;
}

export interface GroupStatus {
  readonly service: string;
  readonly kind: 'app' | 'external';
  readonly check: string;
  readonly upstreams: UpstreamStatus[];
}

export interface CertificateStatus {
  readonly cert: string;
  readonly key: string;
  /** Loaded and serving. */
  readonly loaded: boolean;
  readonly subject: string;
  readonly names: readonly string[];
  /** ISO time the certificate served expires; null when none is loaded. */
  readonly notAfter: string | null;
  readonly fingerprint: string;
  /** Why the files as they are now cannot be loaded (GLOW_E_PROXY_TLS); the previous pair, if any, serves. */
  readonly error: string | null;
}

export interface RouteStatus {
  readonly name: string;
  readonly kind: 'listener' | 'exposure';
  readonly service: string;
  readonly protocol: string;
  /** Exposures: the hosts it answers (empty: any), its path prefix, its certificate. */
  readonly hosts?: readonly string[];
  readonly path?: string;
  readonly tls?: CertificateStatus;
  /** A redirect_http route: every request answered 308 to https on this port. */
  readonly redirectTo?: number;
  readonly groups: GroupStatus[];
}

export interface FrontendStatus {
  readonly key: string;
  readonly bound: boolean;
  /** Terminates TLS. */
  readonly tls?: boolean;
  readonly error: string | null;
  readonly draining: boolean;
  /** On the native data path (src/proxy/native-relay.ts). */
  readonly native?: boolean;
  readonly connections: number;
  readonly routes: RouteStatus[];
}

export interface ProxyStatus {
  readonly node: string;
  readonly appliedAt: string | null;
  readonly frontends: FrontendStatus[];
}

function routeStatus(live: readonly LiveRoute[], t: number): RouteStatus[] {
  return live.map((lr) => {
    const spec = lr.spec;
    const c = lr.cert;
    return {
      name: spec.name,
      kind: spec.kind,
      service: spec.service,
      protocol: spec.protocol,
      ...(spec.kind === 'exposure' ? { hosts: spec.hosts } : {}),
      ...(spec.path !== undefined ? { path: spec.path } : {}),
      ...(c
        ? {
            tls: {
              cert: c.files.cert,
              key: c.files.key,
              loaded: c.context !== null,
              subject: c.subject,
              names: c.names,
              notAfter: c.context ? new Date(c.notAfterMs).toISOString() : null,
              fingerprint: c.fingerprint,
              error: c.error,
            },
          }
        : {}),
      ...(spec.redirectTo !== undefined ? { redirectTo: spec.redirectTo } : {}),
      groups: lr.groups.map((g) => ({
        service: g.service,
        kind: g.spec.kind,
        check: g.spec.health.type === 'http' ? `http ${g.spec.health.path}` : g.spec.health.type,
        upstreams: g.members.map((u) => ({
          address: u.address,
          node: u.upstream.node,
          instance: u.upstream.instance ?? null,
          local: u.local,
          healthy: u.health.healthy,
          state: u.health.state,
          ejected: u.health.isEjected(t),
          ejectedForMs: Math.max(0, Math.round(u.health.ejectedUntilMs() - t)),
          ejections: u.health.ejectionsTotal,
          active: u.active,
          lastCheckError: u.health.lastCheckError,
        })),
      })),
    };
  });
}
