/**
 * The developer box's plan: what `glow up` runs on one machine, and what `glow dev APP` provides. Pure: a
 * snapshot (and, for positioned errors, the repository's bytes) in, a NodePlan out — the very NodePlan shape
 * that glowd and the proxy consume, computed by planNode() itself on a derived snapshot, so that a dev box and a
 * node cannot drift apart in what they mean by "listener", "upstream" or "config file".
 *
 * - **The box** (`glow up`): one virtual node, `devbox` (address and bind 127.0.0.1), runs one instance of every
 *   app that has a deployment anywhere: the lowest instance number. Instances of one app would bind the same
 *   ports on one machine, so the others are *folded* into it and reported. Every exposure is served on it,
 *   bound to 127.0.0.1; every listener's upstreams are the local instances; externals keep their endpoints.
 *   What collides only when every node shares one machine (two apps providing one port, one local port leading
 *   to two services, a local port equal to a provided or exposed port, two exposures on one port, a port equal
 *   to the metrics port, two apps' config files at one path) is reported with the same codes and the same
 *   checks (src/config/checks.ts checkNodes) that `glow check` applies to one real node.
 * - **A node's share** (`glow up --node NAME`): planNode() as is.
 * - **One app's environment** (`glow dev APP`): the listeners that APP requires and its config files, with the
 *   upstreams of the box (its dependencies run under `glow up`), or, `remote`, of the real cluster (the
 *   dependencies are reached on the nodes' addresses).
 */
import { GlowError } from '../base/errors.js';
import type { ConfigError } from '../config/errors.js';
import { checkNodes } from '../config/node-checks.js';
import type { Exposure, Instance, Node, Snapshot } from '../config/model.js';
import type { RepoSource } from '../config/source.js';
import { closest } from '../config/suggest.js';
import { parseYamlFile, YamlFile } from '../config/yaml.js';
import { planNode } from './node-plan.js';
import type { NodePlan } from './node-plan.js';

/** The name of the dev box's one node: GLOW_NODE of its instances, `node` of its status and metrics. */
export const DEV_NODE = 'devbox';
export const DEV_ADDRESS = '127.0.0.1';

/** An app deployed more than once: the box runs `kept`; the others are folded into it. */
export interface FoldedApp {
  readonly app: string;
  readonly kept: { readonly instance: number; readonly node: string; readonly file: string };
  readonly folded: readonly { readonly instance: number; readonly node: string; readonly file: string }[];
}

export interface DevPlan {
  /** `box`: every deployed app on one virtual node; `node`: one real node's share; `app`: one app's environment. */
  readonly mode: 'box' | 'node' | 'app';
  readonly plan: NodePlan;
  readonly folded: readonly FoldedApp[];
  /** What collides on one machine; a plan with conflicts must not be applied. */
  readonly conflicts: readonly ConfigError[];
}

export interface DevPlanOptions {
  /** The repository's bytes, so that conflicts point at file:line:col (without it, at line 1 of the file). */
  readonly source?: RepoSource;
  /** Run this node's share instead of the whole repository. */
  readonly node?: string;
  /** Also run these apps on the box when no deployment names them (`glow dev` of an app not deployed yet). */
  readonly include?: readonly string[];
  /** The metrics endpoint of the box (`host:port`); default 127.0.0.1 and the port of glow.yaml `metrics.listen`. */
  readonly metricsListen?: string;
}

/** The metrics endpoint of a dev box: glow.yaml's port, on loopback (a laptop does not publish its metrics). */
export function devMetricsListen(snapshot: Snapshot): string {
  const listen = snapshot.settings.metricsListen;
  return `${DEV_ADDRESS}:${listen.slice(listen.lastIndexOf(':') + 1)}`;
}

export function devPlan(snapshot: Snapshot, opts: DevPlanOptions = {}): DevPlan {
  const metricsListen = opts.metricsListen ?? devMetricsListen(snapshot);
  if (opts.node !== undefined) {
    const plan = planNode(snapshot, opts.node);
    return { mode: 'node', plan: { ...plan, metricsListen }, folded: [], conflicts: [] };
  }
  const byApp = new Map<string, Instance[]>();
  for (const i of snapshot.instances) byApp.set(i.app, [...(byApp.get(i.app) ?? []), i]);
  for (const app of opts.include ?? []) {
    if (!byApp.has(app)) byApp.set(app, [{ app, node: DEV_NODE, instance: 1, file: `apps/${app}.yaml` }]);
  }
  const instances: Instance[] = [];
  const folded: FoldedApp[] = [];
  for (const [app, list] of [...byApp].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const [kept, ...rest] = [...list].sort((a, b) => a.instance - b.instance);
    instances.push({ ...kept!, node: DEV_NODE });
    if (rest.length) {
      const where = (i: Instance) => ({ instance: i.instance, node: i.node, file: i.file });
      folded.push({ app, kept: where(kept!), folded: rest.map(where) });
    }
  }
  const exposures: Exposure[] = [...snapshot.exposures.values()].map((e) => ({ ...e, nodes: [DEV_NODE] }));
  const box: Node = { name: DEV_NODE, file: '(glow up)', address: DEV_ADDRESS, bind: DEV_ADDRESS, tags: [] };
  const derived: Snapshot = {
    ...snapshot,
    settings: { ...snapshot.settings, metricsListen },
    nodes: new Map([[DEV_NODE, box]]),
    instances,
    exposures: new Map(exposures.map((e) => [e.name, e])),
  };
  const conflicts = boxConflicts(snapshot, derived, opts.source);
  return { mode: 'box', plan: planNode(derived, DEV_NODE), folded, conflicts };
}

/**
 * The environment of one instance of `app`: its instance (not to be started by Glow), the listeners it
 * requires and its config files. Upstreams are the box's (`glow up` runs the dependencies) or, with `remote`,
 * the cluster's: the box joins the cluster as one more node, so every app's upstreams are the real nodes'
 * addresses and externals keep their endpoints.
 */
export function devAppPlan(snapshot: Snapshot, app: string, opts: DevPlanOptions & { readonly remote?: boolean } = {}): DevPlan {
  if (!snapshot.apps.has(app)) {
    const near = closest(app, snapshot.apps.keys());
    const what = snapshot.externals.has(app) ? `\`${app}\` is an external, not an app` : `there is no app \`${app}\` (no apps/${app}.yaml)`;
    throw new GlowError('GLOW_E_DEVBOX_APP_UNKNOWN', `${what}${near ? `; did you mean \`${near}\`?` : ''}`);
  }
  let whole: DevPlan;
  if (opts.remote) {
    const name = freeName(snapshot);
    const lowest = snapshot.instances.find((i) => i.app === app)?.instance ?? 1;
    const derived: Snapshot = {
      ...snapshot,
      nodes: new Map([...snapshot.nodes, [name, { name, file: '(glow dev)', address: DEV_ADDRESS, bind: DEV_ADDRESS, tags: [] }]]),
      instances: [...snapshot.instances, { app, node: name, instance: lowest, file: `apps/${app}.yaml` }],
    };
    whole = { mode: 'app', plan: planNode(derived, name), folded: [], conflicts: [] };
  } else {
    whole = devPlan(snapshot, { ...opts, node: undefined, include: [app] });
  }
  const p = whole.plan;
  return {
    mode: 'app',
    plan: {
      ...p,
      instances: p.instances.filter((i) => i.app === app),
      listeners: p.listeners.filter((l) => l.for.includes(app)).map((l) => ({ ...l, for: [app] })),
      exposures: [],
      files: p.files.filter((f) => f.app === app),
      tlsFiles: [],
    },
    folded: [],
    conflicts: whole.conflicts,
  };
}

/** `devbox`, or `devbox-2`, … when the cluster has a node of that name. */
function freeName(snapshot: Snapshot): string {
  if (!snapshot.nodes.has(DEV_NODE)) return DEV_NODE;
  let n = 2;
  while (snapshot.nodes.has(`${DEV_NODE}-${n}`)) n++;
  return `${DEV_NODE}-${n}`;
}

/**
 * What collides when every instance and exposure shares one machine. The node-level checks of the loader run
 * on the virtual node (the repository passed them node by node, so whatever they find now comes from sharing
 * one machine); on top, two apps' config files at one path (on a node each app sees its own directory mounted
 * there; on the box there is one file system).
 */
function boxConflicts(snapshot: Snapshot, derived: Snapshot, source: RepoSource | undefined): ConfigError[] {
  const bytes = new Map<string, Uint8Array>();
  for (const e of source?.entries ?? []) if (e.bytes) bytes.set(e.path, e.bytes);
  // Without the bytes, a stand-in with the shape the checks read (`requires` entries in the long form).
  const shape = new Map([...snapshot.apps.values()].map((a) => [a.file, { requires: a.requires.map(() => ({})), config: a.config.length > 1 ? [] : {} }]));
  const yaml = lazyYaml(bytes, (file) => shape.get(file) ?? {});
  const errors: ConfigError[] = [];
  checkNodes(
    {
      yaml,
      apps: snapshot.apps,
      externals: snapshot.externals,
      // No `bind`: on the box exposures bind 127.0.0.1, the address of every loopback listener too.
      nodes: new Map([[DEV_NODE, { name: DEV_NODE, file: '(glow up)', address: DEV_ADDRESS, tags: [] }]]),
      instances: derived.instances,
      exposures: [...derived.exposures.values()],
      fallbacks: snapshot.fallbacks,
      proxyDefaults: snapshot.settings.proxy,
      metricsListen: derived.settings.metricsListen,
    },
    errors,
  );

  const paths = new Map<string, { app: string; source: string; content: Uint8Array }>();
  for (const inst of derived.instances) {
    const app = snapshot.apps.get(inst.app)!;
    app.config.forEach((c, i) => {
      const content = snapshot.files.get(c.source)!;
      const prev = paths.get(c.path);
      if (!prev) {
        paths.set(c.path, { app: app.name, source: c.source, content });
      } else if (prev.app !== app.name && !Buffer.from(prev.content).equals(content)) {
        const at = app.config.length > 1 || Array.isArray((yaml(app.file).value as { config?: unknown }).config) ? ['config', i, 'path'] : ['config', 'path'];
        errors.push(
          yaml(app.file).error(
              'GLOW_E_CONFIG_PATH_CONFLICT',
              at,
              `\`${c.path}\` is also the config path of \`${prev.app}\` (${prev.source}), with other content; on a node each app sees its own file there, but the dev box has one file system: run one of them with \`glow up --node\`, or give one file another path`,
            ),
        );
      }
    });
  }
  return errors;
}

/** The repository's YAML files, parsed when a check first asks for one (positions for errors, `requires` forms). */
/** The YAML files of the repository, parsed again from their bytes only when an error must point into one. */
function lazyYaml(bytes: ReadonlyMap<string, Uint8Array>, shape: (file: string) => unknown): (file: string) => YamlFile {
  const parsed = new Map<string, YamlFile>();
  return (file) => {
    let y = parsed.get(file);
    if (!y) {
      const b = bytes.get(file);
      const r = b ? parseYamlFile(file, b) : undefined;
      y = r?.ok ? r.file : new YamlFile(file, '', shape(file));
      parsed.set(file, y);
    }
    return y;
  };
}
