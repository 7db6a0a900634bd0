/**
 * The desired state of one node, computed from a snapshot: which instances it runs, which loopback listeners and
 * exposures its proxy holds (with every upstream and policy resolved), which config files it delivers. Pure and
 * deterministic; its JSON form is what `glow plan --json` prints and what the daemon and the proxy consume.
 * Host paths (state directory, unit directory) are not part of the plan: the shell adds them.
 */
import { createHash } from 'node:crypto';
import { GlowError } from '../base/errors.js';
import { DEFAULTS, serviceKey } from '../config/model.js';
import type { App, ExposureLimits, Health, Protocol, ProvidedPort, ProxyPolicy, Runtime, Sandbox, ServiceRef, Snapshot } from '../config/model.js';
import { closest } from '../config/suggest.js';

export interface PlannedConfigFile {
  readonly app: string;
  readonly source: string;
  readonly path: string;
  readonly sha256: string;
  readonly onChange: 'reload' | 'restart' | 'none';
  readonly signal: string;
  readonly mode: number;
}

export interface PlannedInstance {
  readonly app: string;
  readonly instance: number;
  readonly image: string;
  readonly version: string;
  readonly runtime: Runtime;
  readonly command?: readonly string[];
  readonly digest?: string;
  /** The app's env plus GLOW_APP, GLOW_VERSION, GLOW_INSTANCE and GLOW_NODE. */
  readonly env: Readonly<Record<string, string>>;
  readonly provides: readonly ProvidedPort[];
  readonly health?: Health;
  readonly config: readonly PlannedConfigFile[];
  readonly stopTimeoutMs: number;
  readonly sandbox: Sandbox;
}

export interface Upstream {
  readonly node: string | null; // null for an external's endpoint
  readonly host: string;
  readonly port: number;
  /** An instance on this node (reached over loopback and preferred by the balancer). */
  readonly local: boolean;
  readonly instance?: number;
}

export interface HealthCheck {
  /** `none` for a udp service without a tcp `health.port`: only passive failures count. */
  readonly type: 'tcp' | 'http' | 'none';
  readonly path?: string;
  /** Check this port of the upstream's host instead of the traffic port. */
  readonly port?: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
}

/** The instances of one service; a route tries its groups in order (the service, then its fallbacks). */
export interface UpstreamGroup {
  readonly service: string;
  readonly kind: 'app' | 'external';
  readonly protocol: Protocol;
  readonly upstreams: readonly Upstream[];
  readonly health: HealthCheck;
}

export interface Listener {
  /** The local port is the identity of a listener on a node. */
  readonly name: string;
  readonly bind: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly service: string;
  readonly policy: Required<ProxyPolicy>;
  readonly groups: readonly UpstreamGroup[];
  /** The apps on this node that require it. */
  readonly for: readonly string[];
}

export interface PlannedExposure {
  readonly name: string;
  readonly bind: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly service: string;
  readonly hosts: readonly string[];
  readonly path?: string;
  readonly tls?: { readonly cert: { readonly repo: string } | { readonly node: string }; readonly key: { readonly repo: string } | { readonly node: string } };
  /** A plain port whose requests for this exposure are answered 308 to https. */
  readonly redirectHttp?: number;
  readonly accessLog: boolean;
  readonly limits: ExposureLimits;
  /** Clients whose X-Forwarded-* headers are kept (glow.yaml `proxy.trusted_proxies`). */
  readonly trustedProxies: readonly string[];
  readonly policy: Required<ProxyPolicy>;
  readonly groups: readonly UpstreamGroup[];
}

/** A certificate or key from the repository that glowd delivers to the proxy (`<state>/tls/<source>`). */
export interface PlannedTlsFile {
  readonly source: string;
  readonly sha256: string;
}

export interface NodePlan {
  readonly node: string;
  readonly address: string;
  readonly revision: string;
  readonly instances: readonly PlannedInstance[];
  readonly listeners: readonly Listener[];
  readonly exposures: readonly PlannedExposure[];
  /** Config files to deliver, one entry per app and path. */
  readonly files: readonly PlannedConfigFile[];
  /** Certificates and keys from the repository that this node's exposures name, sorted by source. */
  readonly tlsFiles: readonly PlannedTlsFile[];
  readonly metricsListen: string;
  readonly stopGraceMs: number;
}

/** The node plan of `node`; throws GLOW_E_NODE_UNKNOWN (with a suggestion) for a node the repository lacks. */
export function planNode(snapshot: Snapshot, node: string): NodePlan {
  const me = snapshot.nodes.get(node);
  if (!me) {
    const near = closest(node, snapshot.nodes.keys());
    throw new GlowError(
      'GLOW_E_NODE_UNKNOWN',
      `there is no node \`${node}\` in this repository (no nodes/${node}.yaml)${near ? `; did you mean \`${near}\`?` : ''}`,
    );
  }
  const groupCache = new Map<string, UpstreamGroup>();
  const groupOf = (ref: ServiceRef) => {
    const key = serviceKey(ref);
    let g = groupCache.get(key);
    if (!g) groupCache.set(key, (g = upstreamGroup(snapshot, ref, node)));
    return g;
  };
  // The service, then its fallbacks in order, each followed by its own fallbacks (the loader refuses loops).
  const groupsOf = (ref: ServiceRef) => {
    const chain: ServiceRef[] = [];
    const follow = (r: ServiceRef) => {
      if (chain.some((c) => serviceKey(c) === serviceKey(r))) return;
      chain.push(r);
      for (const f of snapshot.fallbacks.get(serviceKey(r)) ?? []) follow(f);
    };
    follow(ref);
    return chain.map(groupOf);
  };

  const fileCache = new Map<string, PlannedConfigFile[]>();
  const filesOf = (app: App) => {
    let list = fileCache.get(app.name);
    if (!list) {
      list = app.config.map((c) => ({
        app: app.name,
        source: c.source,
        path: c.path,
        sha256: sha256(snapshot.files.get(c.source)!),
        onChange: c.onChange,
        signal: c.signal,
        mode: c.mode,
      }));
      fileCache.set(app.name, list);
    }
    return list;
  };

  const instances: PlannedInstance[] = [];
  const listeners = new Map<number, { l: Omit<Listener, 'for'>; for: Set<string> }>();
  for (const inst of snapshot.instances) {
    if (inst.node !== node) continue;
    const app = snapshot.apps.get(inst.app)!;
    instances.push({
      app: app.name,
      instance: inst.instance,
      image: app.image,
      version: app.version,
      runtime: app.runtime,
      ...(app.command ? { command: app.command } : {}),
      ...(app.digest ? { digest: app.digest } : {}),
      env: {
        ...app.env,
        GLOW_APP: app.name,
        GLOW_VERSION: app.version,
        GLOW_INSTANCE: String(inst.instance),
        GLOW_NODE: node,
      },
      provides: app.provides,
      ...(app.health ? { health: app.health } : {}),
      config: filesOf(app),
      stopTimeoutMs: app.stopTimeoutMs,
      sandbox: app.sandbox,
    });
    for (const r of app.requires) {
      const key = r.local * 2 + (groupOf(r.service).protocol === 'udp' ? 1 : 0);
      const seen = listeners.get(key);
      if (seen) {
        seen.for.add(app.name);
        continue;
      }
      const groups = groupsOf(r.service);
      const { fallback: _f, service: _s, local: _l, ...own } = r;
      listeners.set(key, {
        l: {
          name: `${r.local}`,
          bind: '127.0.0.1',
          port: r.local,
          protocol: groups[0]!.protocol,
          service: serviceKey(r.service),
          policy: { ...snapshot.settings.proxy, ...own },
          groups,
        },
        for: new Set([app.name]),
      });
    }
  }

  const exposures: PlannedExposure[] = [];
  for (const e of snapshot.exposures.values()) {
    if (!e.nodes.includes(node)) continue;
    exposures.push({
      name: e.name,
      bind: me.bind ?? '0.0.0.0',
      port: e.port,
      protocol: e.protocol,
      service: serviceKey(e.service),
      hosts: e.hosts,
      ...(e.path !== undefined ? { path: e.path } : {}),
      ...(e.tls ? { tls: e.tls } : {}),
      ...(e.redirectHttp !== undefined ? { redirectHttp: e.redirectHttp } : {}),
      accessLog: e.accessLog,
      limits: e.limits,
      trustedProxies: snapshot.settings.trustedProxies,
      policy: e.responseTimeoutMs !== undefined ? { ...snapshot.settings.proxy, responseTimeoutMs: e.responseTimeoutMs } : snapshot.settings.proxy,
      groups: groupsOf(e.service),
    });
  }
  const tlsSources = new Set<string>();
  for (const e of exposures) if (e.tls) for (const ref of [e.tls.cert, e.tls.key]) if ('repo' in ref) tlsSources.add(ref.repo);
  const tlsFiles = [...tlsSources].sort().map((source) => ({ source, sha256: sha256(snapshot.files.get(source)!) }));

  const files: PlannedConfigFile[] = [];
  for (const app of new Set(instances.map((i) => i.app))) files.push(...filesOf(snapshot.apps.get(app)!));

  return {
    node,
    address: me.address,
    revision: snapshot.revision,
    instances,
    listeners: [...listeners.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, v]) => ({ ...v.l, for: [...v.for].sort() })),
    exposures,
    files,
    tlsFiles,
    metricsListen: snapshot.settings.metricsListen,
    stopGraceMs: snapshot.settings.stopGraceMs,
  };
}

function upstreamGroup(snapshot: Snapshot, ref: ServiceRef, node: string): UpstreamGroup {
  const app = snapshot.apps.get(ref.name);
  if (app) {
    const port = app.provides.find((p) => p.port === ref.port)!;
    const upstreams: Upstream[] = snapshot.instances
      .filter((i) => i.app === app.name)
      .map((i) => ({
        node: i.node,
        host: i.node === node ? '127.0.0.1' : snapshot.nodes.get(i.node)!.address,
        port: ref.port,
        local: i.node === node,
        instance: i.instance,
      }))
      .sort((a, b) => Number(b.local) - Number(a.local) || (a.node! < b.node! ? -1 : a.node! > b.node! ? 1 : 0));
    return { service: serviceKey(ref), kind: 'app', protocol: port.protocol, upstreams, health: healthCheck(app.health, port.protocol, app.provides.filter((p) => p.protocol !== 'udp').map((p) => p.port)) };
  }
  const ext = snapshot.externals.get(ref.name)!;
  const port = ext.ports.find((p) => p.port === ref.port)!;
  return {
    service: serviceKey(ref),
    kind: 'external',
    protocol: port.protocol,
    upstreams: port.addresses.map((a) => ({ node: null, host: a.host, port: a.port, local: false })),
    health: healthCheck(ext.health, port.protocol, ext.ports.filter((p) => p.protocol !== 'udp').map((p) => p.port)),
  };
}

/**
 * How the proxy checks the upstreams of one service: the app's `health` (HTTP GET or TCP connect) on the traffic
 * port, or on `health.port`. A udp port is checked through the app's first tcp port when it has an HTTP check or a
 * health port, and otherwise only passively.
 */
function healthCheck(h: Health | undefined, protocol: Protocol, tcpPorts: readonly number[]): HealthCheck {
  const timing = {
    intervalMs: h?.intervalMs ?? DEFAULTS.health.intervalMs,
    timeoutMs: h?.timeoutMs ?? DEFAULTS.health.timeoutMs,
    rise: h?.rise ?? DEFAULTS.health.rise,
    fall: h?.fall ?? DEFAULTS.health.fall,
  };
  const checkPort = h?.port ?? (protocol === 'udp' && h?.http !== undefined ? tcpPorts[0] : undefined);
  const port = checkPort !== undefined ? { port: checkPort } : {};
  if (h?.http !== undefined && (protocol !== 'udp' || checkPort !== undefined)) return { type: 'http', path: h.http, ...port, ...timing };
  if (protocol === 'udp' && h?.port === undefined) return { type: 'none', ...timing };
  return { type: 'tcp', ...port, ...timing };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
