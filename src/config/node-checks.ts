/**
 * What would collide on one node: per node, every port something binds — the metrics endpoint, the ports the
 * instances provide, the exposures (and their redirect_http ports), the local listeners of the services the
 * node's apps require — and the rules between them:
 *
 *   two instances binding one port                          GLOW_E_PORT_CONFLICT
 *   two exposures on one port (http with distinct hosts ok) GLOW_E_EXPOSURE_CONFLICT
 *   one local port leading to two services or settings     GLOW_E_LOCAL_PORT_CONFLICT
 *   a local port that something else on the node binds     GLOW_E_LOCAL_PORT_TAKEN
 *
 * The loader runs it on every node of the repository; the developer box runs it once more on its one virtual node
 * (src/plan/box-plan.ts), where every node's instances meet. It reads only what it is given here.
 */
import type { ConfigError } from './errors.js';
import { fam, policyKey, protocolOf, requirePath } from './checks.js';
import { serviceKey } from './model.js';
import type { App, Exposure, External, Instance, Node, Protocol, ProxyPolicy, ServiceRef } from './model.js';
import type { Path, YamlFile } from './yaml.js';

export interface NodeCheckInput {
  /** The YAML file of an app, deployment or exposure, to point an error at. */
  readonly yaml: (file: string) => YamlFile;
  readonly apps: ReadonlyMap<string, App>;
  readonly externals: ReadonlyMap<string, External>;
  /** The nodes, for `bind` (an exposure that binds one address leaves loopback to the listeners). */
  readonly nodes: ReadonlyMap<string, Node>;
  readonly instances: readonly Instance[];
  readonly exposures: readonly Exposure[];
  readonly fallbacks: ReadonlyMap<string, readonly ServiceRef[]>;
  readonly proxyDefaults?: ProxyPolicy;
  /** The metrics endpoint every node serves (absent: not checked, glow.yaml being invalid). */
  readonly metricsListen?: string;
}

/** What binds a port on a node, for messages. */
interface Binder {
  readonly what: string;
  readonly file: string;
  readonly path: Path;
  /** For local listeners: the service and fallback the port leads to, and its proxy settings. */
  readonly target?: string;
  readonly policy?: string;
  readonly yaml?: YamlFile;
  /** For exposures: HTTP routes (host + path), when it is http. */
  readonly routes?: readonly string[];
  /** For exposures: whether the port terminates TLS (all of a port's exposures do, or none). */
  readonly tls?: boolean;
  readonly kind: 'instance' | 'listener' | 'exposure' | 'metrics';
}

export function checkNodes(input: NodeCheckInput, errors: ConfigError[]): void {
  const byNode = groupBy(input.instances, (i) => [i.node]);
  const exposuresByNode = groupBy(input.exposures, (e) => e.nodes);
  const seen = new Set<string>();
  const push = (e: ConfigError) => {
    const key = e.toString();
    if (seen.has(key)) return;
    seen.add(key);
    errors.push(e);
  };
  for (const node of [...new Set([...byNode.keys(), ...exposuresByNode.keys()])].sort()) {
    const ports = new NodePorts(node, input, push);
    ports.bindMetrics();
    ports.bindInstances(byNode.get(node) ?? []);
    ports.bindExposures(exposuresByNode.get(node) ?? []);
    ports.bindListeners(byNode.get(node) ?? []);
  }
}

function groupBy<T>(items: readonly T[], keys: (t: T) => readonly string[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    for (const k of keys(item)) {
      let list = out.get(k);
      if (!list) out.set(k, (list = []));
      list.push(item);
    }
  }
  return out;
}

/** The ports bound on one node, filled in the order things claim them; each clash is reported where it is. */
class NodePorts {
  readonly #node: string;
  readonly #in: NodeCheckInput;
  readonly #push: (e: ConfigError) => void;
  readonly #bound = new Map<string, Binder>();

  constructor(node: string, input: NodeCheckInput, push: (e: ConfigError) => void) {
    this.#node = node;
    this.#in = input;
    this.#push = push;
  }

  static key(proto: Protocol, port: number): string {
    return `${fam(proto)}/${port}`;
  }

  /** 0. Every node serves its metrics (glowd) on one port. */
  bindMetrics(): void {
    const listen = this.#in.metricsListen;
    if (listen === undefined) return;
    const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
    this.#bound.set(NodePorts.key('tcp', port), { what: `the metrics endpoint (${listen})`, file: 'glow.yaml', path: [], kind: 'metrics' });
  }

  /** 1. The ports the instances on this node provide. */
  bindInstances(instances: readonly Instance[]): void {
    const node = this.#node;
    for (const inst of instances) {
      const app = this.#in.apps.get(inst.app)!;
      const dfile = this.#in.yaml(inst.file);
      const me = `${inst.app} #${inst.instance}`;
      for (const p of app.provides) {
        const k = NodePorts.key(p.protocol, p.port);
        const prev = this.#bound.get(k);
        if (!prev) {
          this.#bound.set(k, { what: me, file: inst.file, path: ['node'], kind: 'instance' });
          continue;
        }
        if (prev.what.startsWith(`${inst.app} #`)) {
          // Every port of the app clashes: one error for the instance, not one per port.
          const all = app.provides.map((q) => q.port);
          this.#push(
            dfile.error('GLOW_E_PORT_CONFLICT', ['node'], `${me} and ${prev.what} would both run on ${node} and bind port${all.length > 1 ? 's' : ''} ${all.join(', ')}; put each instance of \`${inst.app}\` on its own node`),
          );
          break;
        }
        this.#push(dfile.error('GLOW_E_PORT_CONFLICT', ['node'], `${me} would bind port ${p.port}/${fam(p.protocol)} on ${node}, which ${prev.what} (${prev.file}) binds too`));
      }
    }
  }

  /** 2. The exposures this node serves, and the plain ports of their redirect_http. */
  bindExposures(exposures: readonly Exposure[]): void {
    for (const e of exposures) {
      const routes = e.protocol === 'http' ? (e.hosts.length ? e.hosts : ['*']).map((h) => `${h}${e.path ?? '/'}`) : undefined;
      const binds: { port: number; tls: boolean; at: Path; what: string }[] = [{ port: e.port, tls: e.tls !== undefined, at: ['port'], what: `exposure \`${e.name}\`` }];
      if (e.redirectHttp !== undefined) binds.push({ port: e.redirectHttp, tls: false, at: ['redirect_http'], what: `the redirect_http of exposure \`${e.name}\`` });
      for (const b of binds) this.#bindExposurePort(e, b, routes);
    }
  }

  #bindExposurePort(e: Exposure, b: { port: number; tls: boolean; at: Path; what: string }, routes: readonly string[] | undefined): void {
    const node = this.#node;
    const efile = this.#in.yaml(e.file);
    const k = NodePorts.key(e.protocol, b.port);
    const prev = this.#bound.get(k);
    if (!prev) {
      this.#bound.set(k, { what: b.what, file: e.file, path: b.at, kind: 'exposure', tls: b.tls, ...(routes ? { routes } : {}) });
      return;
    }
    if (prev.kind !== 'exposure' || !prev.routes || !routes) {
      const why = prev.kind === 'exposure' ? 'two exposures share a port only when both are http with distinct hosts' : 'expose it on another port';
      this.#push(efile.error('GLOW_E_EXPOSURE_CONFLICT', b.at, `port ${b.port} on ${node} is already bound by ${prev.what} (${prev.file}); ${why}`));
      return;
    }
    if (prev.tls !== b.tls) {
      const [withTls, without] = b.tls ? [b.what, prev.what] : [prev.what, b.what];
      this.#push(efile.error('GLOW_E_EXPOSURE_CONFLICT', b.at, `port ${b.port} on ${node} would terminate TLS for ${withTls} but not for ${without}; the exposures of one port all terminate TLS or none does`));
      return;
    }
    const clash = routes.find((r) => prev.routes!.includes(r));
    if (!clash) {
      this.#bound.set(k, { ...prev, routes: [...prev.routes, ...routes] });
      return;
    }
    const at = b.at[0] === 'port' && e.hosts.length ? ['host'] : b.at;
    this.#push(efile.error('GLOW_E_EXPOSURE_CONFLICT', at, `${prev.what} already serves ${clash === '*/' ? 'every host' : `\`${clash}\``} on port ${b.port} of ${node}; give this exposure a distinct \`host\``));
  }

  /** 3. The local listeners of the services required by every app with an instance here. */
  bindListeners(instances: readonly Instance[]): void {
    for (const name of [...new Set(instances.map((i) => i.app))].sort()) {
      const app = this.#in.apps.get(name)!;
      const afile = this.#in.yaml(app.file);
      app.requires.forEach((r, i) => this.#bindListener(name, afile, r, i));
    }
  }

  #bindListener(app: string, afile: YamlFile, r: App['requires'][number], i: number): void {
    const node = this.#node;
    const proto = protocolOf(this.#in, r.service);
    if (!proto) return;
    const k = NodePorts.key(proto, r.local);
    const chain = this.#in.fallbacks.get(serviceKey(r.service)) ?? [];
    const target = [serviceKey(r.service), ...chain.map(serviceKey)].join(' → ');
    const policy = policyKey(r, this.#in.proxyDefaults ?? {});
    const at = requirePath(afile, i, 'port');
    const prev = this.#bound.get(k);
    if (!prev) {
      this.#bound.set(k, { what: `\`${app}\`'s requires`, file: afile.file, yaml: afile, path: at, kind: 'listener', target, policy });
      return;
    }
    if (prev.kind === 'listener') {
      if (prev.yaml === afile) return; // within one app: reported by checkRequires
      if (prev.target !== target) {
        this.#push(afile.error('GLOW_E_LOCAL_PORT_CONFLICT', at, `local port ${r.local} on ${node} leads to \`${target}\` here but to \`${prev.target}\` in ${prev.file}; use another local port`));
      } else if (prev.policy !== policy) {
        this.#push(
          afile.error('GLOW_E_LOCAL_PORT_CONFLICT', at, `local port ${r.local} on ${node} leads to \`${target}\` here and in ${prev.file}, but with different proxy settings (balance, timeouts, retries); make them the same`),
        );
      }
      return;
    }
    if (prev.kind === 'exposure' && this.#in.nodes.get(node)?.bind) return; // the exposure binds one address, not loopback
    const own = r.local === r.service.port ? ` (without \`-> local port\`, a required service listens on its own port; write \`${serviceKey(r.service)} -> <free port>\`)` : '';
    this.#push(afile.error('GLOW_E_LOCAL_PORT_TAKEN', at, `local port ${r.local} on ${node} is already bound by ${prev.what} (${prev.file}); choose a free local port${own}`));
  }
}
