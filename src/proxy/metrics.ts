/**
 * The proxy's metrics, in a prom-client Registry of its own (never the global one).
 *
 * The hot path never touches prom-client: connections, bytes, retries and failures are plain numbers on
 * `RouteStats` and `UpstreamTraffic` objects (one per label set, kept for the life of the process so that counters
 * never go back), and the metrics read them when scraped (`collect`). Only the HTTP duration histogram is fed
 * per request, with label objects built once per route.
 *
 * Labels: `listener` (a listener's name, which is its local port, or an exposure's name) and `service` on what
 * happens at the proxy's front; `service` (the group's service: the service itself or a fallback), `upstream`
 * (host:port) and `node` (the upstream's node, empty for an external) on what happens towards an upstream.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class RouteStats {
  opened = 0;
  closed = 0;
  active = 0;
  receivedBytes = 0;
  sentBytes = 0;
  refusedNoUpstream = 0;
  refusedConnectFailed = 0;
  readonly retries = new Map<RetryReason, number>();
  udpSessions = 0;
  udpActive = 0;
  udpDatagramsIn = 0;
  udpDatagramsOut = 0;
  /** HTTP request durations by method and status class (index: method × 6 + class). */
  readonly http: (HttpSeries | undefined)[] = [];

  constructor(
    readonly listener: string,
    readonly service: string,
  ) {}

  retry(reason: RetryReason): void {
    this.retries.set(reason, (this.retries.get(reason) ?? 0) + 1);
  }
}

/** One series of the request histogram: bucket counts (not cumulative), sum and count. */
export interface HttpSeries {
  readonly method: string;
  readonly statusClass: string;
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

const METHOD_INDEX = new Map(['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'OTHER'].map((m, i) => [m, i]));
const CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'];

export type RetryReason = 'connect_failure' | 'connect_timeout' | 'reset' | 'status_502' | 'status_503' | 'response_timeout' | 'upstream_lost';

/** Traffic from one listener to one upstream. */
export class UpstreamTraffic {
  connections = 0;
  connectFailures = 0;
  connectTimeouts = 0;
  /** HTTP requests with no response head within the response timeout. */
  responseTimeouts = 0;
  /** HTTP requests waiting for a response when the upstream was ejected or found down (failed over or 502). */
  lostRequests = 0;
  constructor(
    readonly listener: string,
    readonly service: string,
    readonly upstream: string,
    readonly node: string,
  ) {}
}

/** What the metrics read about upstreams at scrape time (the registry of live upstreams provides it). */
export interface UpstreamView {
  readonly service: string;
  readonly address: string;
  readonly node: string;
  readonly ejectionsTotal: number;
  /** Takes new traffic now: healthy by active checks and not ejected. */
  readonly up: boolean;
}

export interface FrontendView {
  readonly key: string;
  readonly bound: boolean;
}

/** What happens on a socket before a request has a route (or a TLS connection a session). */
export class FrontendStats {
  badRequest = 0;
  headTooLarge = 0;
  headTimeout = 0;
  noRoute = 0;
  misdirected = 0;
  tlsHandshakeFailures = 0;
  /** The socket terminates TLS (or did): its handshake failures are shown. */
  tls = false;
  constructor(readonly frontend: string) {}
}

/** A certificate as an exposure serves it (read at scrape time). */
export interface CertificateView {
  readonly exposure: string;
  readonly certificate: string;
  /** Expiry of the certificate served, ms since the epoch; 0 when none is loaded. */
  readonly notAfterMs: number;
  /** Loaded, and its files as they are now are the ones served (no load error). */
  readonly ok: boolean;
}

export const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly routes = new Map<string, RouteStats>();
  private readonly traffic = new Map<string, UpstreamTraffic>();
  /** Ejections of upstreams that are gone, so that the counter never goes back. */
  private readonly pastEjections = new Map<string, { service: string; upstream: string; node: string; value: number }>();
  private readonly fronts = new Map<string, FrontendStats>();
  reloadsOk = 0;
  reloadsFailed = 0;

  constructor(views: { upstreams: () => Iterable<UpstreamView>; frontends: () => Iterable<FrontendView>; certificates?: () => Iterable<CertificateView> }) {
    const r = this.registry;
    const routes = () => this.routes.values();
    const traffic = () => this.traffic.values();
    const routeCounter = (name: string, help: string, read: (s: RouteStats) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['listener', 'service'] as const,
        registers: [r],
        collect() {
          this.reset();
          for (const s of routes()) this.inc({ listener: s.listener, service: s.service }, read(s));
        },
      });
    routeCounter('glow_proxy_connections_opened_total', 'Client connections accepted.', (s) => s.opened);
    routeCounter('glow_proxy_connections_closed_total', 'Client connections closed.', (s) => s.closed);
    new Gauge({
      name: 'glow_proxy_connections_active',
      help: 'Client connections open now.',
      labelNames: ['listener', 'service'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const s of routes()) this.set({ listener: s.listener, service: s.service }, s.active);
      },
    });
    routeCounter('glow_proxy_received_bytes_total', 'Bytes received from clients (counted when a connection closes).', (s) => s.receivedBytes);
    routeCounter('glow_proxy_sent_bytes_total', 'Bytes sent to clients (counted when a connection closes).', (s) => s.sentBytes);
    new Counter({
      name: 'glow_proxy_refused_total',
      help: 'Client connections or requests the proxy could not serve: no upstream to try, or every attempt failed.',
      labelNames: ['listener', 'service', 'reason'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const s of routes()) {
          this.inc({ listener: s.listener, service: s.service, reason: 'no_upstream' }, s.refusedNoUpstream);
          this.inc({ listener: s.listener, service: s.service, reason: 'connect_failed' }, s.refusedConnectFailed);
        }
      },
    });
    new Counter({
      name: 'glow_proxy_retries_total',
      help: 'Attempts on another upstream after a failure, by reason.',
      labelNames: ['listener', 'service', 'reason'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const s of routes()) for (const [reason, n] of s.retries) this.inc({ listener: s.listener, service: s.service, reason }, n);
      },
    });
    const trafficCounter = (name: string, help: string, read: (t: UpstreamTraffic) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['listener', 'service', 'upstream', 'node'] as const,
        registers: [r],
        collect() {
          this.reset();
          for (const t of traffic()) this.inc({ listener: t.listener, service: t.service, upstream: t.upstream, node: t.node }, read(t));
        },
      });
    trafficCounter('glow_proxy_upstream_connections_total', 'Connections established to an upstream.', (t) => t.connections);
    trafficCounter('glow_proxy_upstream_connect_failures_total', 'Connects to an upstream that failed (refused, unreachable, reset), timeouts excluded.', (t) => t.connectFailures);
    trafficCounter('glow_proxy_upstream_connect_timeouts_total', 'Connects to an upstream that took longer than connectTimeoutMs.', (t) => t.connectTimeouts);
    trafficCounter('glow_proxy_http_response_timeouts_total', 'HTTP requests an upstream sent no response head for within responseTimeoutMs (retried elsewhere or answered 504).', (t) => t.responseTimeouts);
    trafficCounter('glow_proxy_http_upstream_lost_total', 'HTTP requests waiting for a response on an upstream that was ejected or found down (retried elsewhere or answered 502).', (t) => t.lostRequests);
    const past = () => this.pastEjections.values();
    new Counter({
      name: 'glow_proxy_upstream_ejections_total',
      help: 'Passive ejections of an upstream after consecutive failures of real traffic.',
      labelNames: ['service', 'upstream', 'node'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const p of past()) this.inc({ service: p.service, upstream: p.upstream, node: p.node }, p.value);
        for (const u of views.upstreams()) this.inc({ service: u.service, upstream: u.address, node: u.node }, u.ejectionsTotal);
      },
    });
    new Gauge({
      name: 'glow_proxy_upstream_up',
      help: 'Whether an upstream takes new traffic now: healthy by active checks and not ejected (1) or not (0).',
      labelNames: ['service', 'upstream', 'node'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const u of views.upstreams()) this.set({ service: u.service, upstream: u.address, node: u.node }, u.up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'glow_proxy_upstreams_healthy',
      help: 'Upstreams of a service that take new traffic now.',
      labelNames: ['service'] as const,
      registers: [r],
      collect() {
        this.reset();
        const count = new Map<string, number>();
        for (const u of views.upstreams()) count.set(u.service, (count.get(u.service) ?? 0) + (u.up ? 1 : 0));
        for (const [service, n] of count) this.set({ service }, n);
      },
    });
    new Gauge({
      name: 'glow_proxy_upstreams',
      help: 'Upstreams of a service in the routes.',
      labelNames: ['service'] as const,
      registers: [r],
      collect() {
        this.reset();
        const count = new Map<string, number>();
        for (const u of views.upstreams()) count.set(u.service, (count.get(u.service) ?? 0) + 1);
        for (const [service, n] of count) this.set({ service }, n);
      },
    });
    r.registerMetric(new DurationHistogram(routes) as never);
    routeCounter('glow_proxy_udp_sessions_total', 'UDP sessions (one per client address and port) opened.', (s) => s.udpSessions);
    new Gauge({
      name: 'glow_proxy_udp_sessions_active',
      help: 'UDP sessions open now.',
      labelNames: ['listener', 'service'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const s of routes()) this.set({ listener: s.listener, service: s.service }, s.udpActive);
      },
    });
    routeCounter('glow_proxy_udp_received_datagrams_total', 'UDP datagrams received from clients.', (s) => s.udpDatagramsIn);
    routeCounter('glow_proxy_udp_sent_datagrams_total', 'UDP datagrams sent to clients.', (s) => s.udpDatagramsOut);
    const self = this;
    new Counter({
      name: 'glow_proxy_reloads_total',
      help: 'Reloads of the routes file, by result (a failed reload keeps the routes in force).',
      labelNames: ['result'] as const,
      registers: [r],
      collect() {
        this.reset();
        this.inc({ result: 'ok' }, self.reloadsOk);
        this.inc({ result: 'error' }, self.reloadsFailed);
      },
    });
    new Gauge({
      name: 'glow_proxy_frontend_up',
      help: 'Whether a listening socket (protocol bind:port) is bound (1) or failed to bind (0).',
      labelNames: ['frontend'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const f of views.frontends()) this.set({ frontend: f.key }, f.bound ? 1 : 0);
      },
    });
    const fronts = () => this.fronts.values();
    new Counter({
      name: 'glow_proxy_http_rejected_total',
      help: 'HTTP requests answered by the proxy before any route: bad_request (400, smuggling shapes included), head_too_large (431), head_timeout (408: the head was not complete within the head timeout), no_route (404: no exposure of the port serves the host), misdirected (421: TLS name and Host lead to different certificates).',
      labelNames: ['frontend', 'reason'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const f of fronts()) {
          this.inc({ frontend: f.frontend, reason: 'bad_request' }, f.badRequest);
          this.inc({ frontend: f.frontend, reason: 'head_too_large' }, f.headTooLarge);
          this.inc({ frontend: f.frontend, reason: 'head_timeout' }, f.headTimeout);
          this.inc({ frontend: f.frontend, reason: 'no_route' }, f.noRoute);
          this.inc({ frontend: f.frontend, reason: 'misdirected' }, f.misdirected);
        }
      },
    });
    new Counter({
      name: 'glow_proxy_tls_handshake_failures_total',
      help: 'TLS handshakes that failed or timed out on a socket that terminates TLS.',
      labelNames: ['frontend'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const f of fronts()) if (f.tls) this.inc({ frontend: f.frontend }, f.tlsHandshakeFailures);
      },
    });
    const certs = views.certificates ?? (() => []);
    new Gauge({
      name: 'glow_proxy_certificate_expiry_timestamp_seconds',
      help: 'When the certificate an exposure serves expires (seconds since the epoch).',
      labelNames: ['exposure', 'certificate'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const c of certs()) if (c.notAfterMs > 0) this.set({ exposure: c.exposure, certificate: c.certificate }, c.notAfterMs / 1000);
      },
    });
    new Gauge({
      name: 'glow_proxy_certificate_up',
      help: 'Whether an exposure\'s certificate files are loaded as they are now (1), or cannot be (0: the previous pair, if any, still serves).',
      labelNames: ['exposure', 'certificate'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const c of certs()) this.set({ exposure: c.exposure, certificate: c.certificate }, c.ok ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: r, prefix: 'glow_proxy_' });
    // prom-client's nodejs_active_*_total are gauges named like counters: promtool refuses them.
    for (const m of r.getMetricsAsArray()) {
      const { name, type } = m as unknown as { name: string; type: string };
      if (name.endsWith('_total') && type !== 'counter') r.removeSingleMetric(name);
    }
  }

  route(listener: string, service: string): RouteStats {
    const key = `${listener}\0${service}`;
    let s = this.routes.get(key);
    if (!s) this.routes.set(key, (s = new RouteStats(listener, service)));
    return s;
  }

  frontend(key: string): FrontendStats {
    let f = this.fronts.get(key);
    if (!f) this.fronts.set(key, (f = new FrontendStats(key)));
    return f;
  }

  upstreamTraffic(listener: string, service: string, upstream: string, node: string): UpstreamTraffic {
    const key = `${listener}\0${service}\0${upstream}\0${node}`;
    let t = this.traffic.get(key);
    if (!t) this.traffic.set(key, (t = new UpstreamTraffic(listener, service, upstream, node)));
    return t;
  }

  /** An upstream left the routes: keep its ejections in the counter. */
  retireUpstream(u: UpstreamView): void {
    if (u.ejectionsTotal === 0) return;
    const key = `${u.service}\0${u.address}\0${u.node}`;
    const p = this.pastEjections.get(key);
    if (p) p.value += u.ejectionsTotal;
    else this.pastEjections.set(key, { service: u.service, upstream: u.address, node: u.node, value: u.ejectionsTotal });
  }

  observeHttp(stats: RouteStats, method: string, status: number, seconds: number): void {
    const cls = status >= 100 && status < 600 ? Math.floor(status / 100) : 0;
    const i = (METHOD_INDEX.get(method) ?? 9) * 6 + cls;
    let series = stats.http[i];
    if (series === undefined) {
      series = { method, statusClass: CLASSES[cls]!, buckets: new Float64Array(HTTP_BUCKETS.length + 1), sum: 0, count: 0 };
      stats.http[i] = series;
    }
    let b = 0;
    while (b < HTTP_BUCKETS.length && seconds > HTTP_BUCKETS[b]!) b++;
    series.buckets[b]! += 1;
    series.sum += seconds;
    series.count += 1;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * `glow_proxy_http_request_duration_seconds`: a histogram that prom-client's Registry prints like its own, read at
 * scrape time from the plain counts on RouteStats (no label hashing per request).
 */
class DurationHistogram {
  readonly name = 'glow_proxy_http_request_duration_seconds';
  readonly help = 'HTTP requests from the first byte of the request head to the last byte of the response, by method and status class.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(private readonly routes: () => Iterable<RouteStats>) {}

  get(): { name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] } {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const s of this.routes()) {
      for (const series of s.http) {
        if (!series) continue;
        const labels = { listener: s.listener, service: s.service, method: series.method, status_class: series.statusClass };
        let acc = 0;
        for (let b = 0; b < HTTP_BUCKETS.length; b++) {
          acc += series.buckets[b]!;
          values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: HTTP_BUCKETS[b]! }, value: acc });
        }
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: series.count });
        values.push({ metricName: `${this.name}_sum`, labels, value: series.sum });
        values.push({ metricName: `${this.name}_count`, labels, value: series.count });
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}
