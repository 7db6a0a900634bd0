/**
 * The difference between a dev box's plan and what the box runs, as an ordered list of steps. Pure, and
 * level-triggered like src/reconcile/node.ts, whose order and rules it follows with child processes in place of
 * systemd units (that module's steps are about unit files, links and daemon-reloads, which a box has none of):
 *
 *   artifacts            → fetched or copied once, before anything that runs them
 *   config files         → written where they differ from the plan (write-then-rename at the real path)
 *   routes               → applied to the in-process proxy when they changed (no restart of anything)
 *   stops                → instances no longer planned (the proxy already dropped them: it is the only one)
 *   starts               → planned instances that do not run (after the routes: required ports answer at once)
 *   restarts             → an instance whose definition changed (version, command, env…), or whose config file
 *                          changed with `on_change: restart`
 *   signals              → `on_change: reload` (SIGHUP or the signal named) to an instance that runs on
 *
 * An instance "runs" from the moment the supervisor holds it, including while it waits to be restarted after a
 * crash: crashes are the supervisor's business, not the plan's.
 */
import { instanceKey } from '../base/names.js';
import type { NodePlan, PlannedConfigFile, PlannedInstance } from '../plan/node-plan.js';

export interface ObservedBox {
  /** The instances the supervisor holds, by key (`web#1`), with the definition they were started with. */
  readonly instances: ReadonlyMap<string, string>;
  /** sha256 of each config file at its path as it is on disk now (absent: no such file). */
  readonly files: ReadonlyMap<string, string>;
  /** The routes the proxy runs (their JSON text), if any were applied. */
  readonly routes: string | undefined;
  /** sha256 of each TLS file delivered from the repository, by source. */
  readonly tlsFiles: ReadonlyMap<string, string>;
}

export interface DesiredBox {
  readonly plan: NodePlan;
  /** The routes' JSON text (src/render/routes.ts renderRoutes). */
  readonly routes: string;
  /** Apps that Glow does not run here (`glow up --except`, `glow dev`): their files and routes, not their process. */
  readonly except?: ReadonlySet<string>;
}

export type BoxStep =
  | { readonly kind: 'ensure-artifact'; readonly app: string; readonly image: string; readonly version: string; readonly digest?: string }
  | { readonly kind: 'write-config'; readonly file: PlannedConfigFile }
  | { readonly kind: 'write-tls'; readonly source: string }
  | { readonly kind: 'apply-routes' }
  | { readonly kind: 'stop'; readonly key: string; readonly reason: string }
  | { readonly kind: 'start'; readonly instance: PlannedInstance }
  | { readonly kind: 'restart'; readonly instance: PlannedInstance; readonly reason: string }
  | { readonly kind: 'signal'; readonly instance: PlannedInstance; readonly signal: string; readonly path: string }
  /** A config file of an app that Glow does not run here changed: whoever runs it should know. */
  | { readonly kind: 'notify-change'; readonly file: PlannedConfigFile };

/** What an instance is started from: a change of any of these restarts it. */
export function definitionOf(i: PlannedInstance): string {
  return JSON.stringify({ image: i.image, version: i.version, runtime: i.runtime, command: i.command ?? null, digest: i.digest ?? null, env: sortedEntries(i.env) });
}

function sortedEntries(env: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Which parts of a definition changed, for the reason of a restart (`version 1.0.0 → 1.1.0`, `env`). */
export function definitionChange(before: string, after: string): string {
  const a = JSON.parse(before) as Record<string, unknown>;
  const b = JSON.parse(after) as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(b)) {
    if (JSON.stringify(a[k]) === JSON.stringify(b[k])) continue;
    parts.push(k === 'version' || k === 'image' || k === 'runtime' ? `${k} ${String(a[k])} → ${String(b[k])}` : k);
  }
  return parts.length ? `its ${parts.join(', ')} changed` : 'its definition changed';
}

export function diffBox(desired: DesiredBox, observed: ObservedBox): BoxStep[] {
  const { plan } = desired;
  const except = desired.except ?? new Set<string>();
  const run = plan.instances.filter((i) => !except.has(i.app));
  const steps: BoxStep[] = [];

  const seenArtifact = new Set<string>();
  for (const i of run) {
    if (i.runtime !== 'exec' || seenArtifact.has(`${i.image}\0${i.version}`)) continue;
    seenArtifact.add(`${i.image}\0${i.version}`);
    steps.push({ kind: 'ensure-artifact', app: i.app, image: i.image, version: i.version, ...(i.digest ? { digest: i.digest } : {}) });
  }

  // Config files; an app reacts only to a file it had already read (a missing one is simply delivered).
  const changed = new Map<string, PlannedConfigFile[]>();
  for (const f of plan.files) {
    const now = observed.files.get(f.path);
    if (now === f.sha256) continue;
    steps.push({ kind: 'write-config', file: f });
    if (now !== undefined) changed.set(f.app, [...(changed.get(f.app) ?? []), f]);
  }
  for (const t of plan.tlsFiles ?? []) {
    if (observed.tlsFiles.get(t.source) !== t.sha256) steps.push({ kind: 'write-tls', source: t.source });
  }

  if (observed.routes !== desired.routes) steps.push({ kind: 'apply-routes' });

  const wanted = new Map(run.map((i) => [instanceKey(i.app, i.instance), i]));
  for (const key of [...observed.instances.keys()].sort()) {
    if (!wanted.has(key)) steps.push({ kind: 'stop', key, reason: except.has(key.slice(0, key.lastIndexOf('#'))) ? 'it runs outside Glow now' : 'it is no longer deployed' });
  }
  const later: BoxStep[] = [];
  for (const [key, i] of wanted) {
    const was = observed.instances.get(key);
    if (was === undefined) {
      steps.push({ kind: 'start', instance: i });
      continue;
    }
    const def = definitionOf(i);
    const files = changed.get(i.app) ?? [];
    if (was !== def) {
      later.push({ kind: 'restart', instance: i, reason: definitionChange(was, def) });
      continue;
    }
    const restartFor = files.find((f) => f.onChange === 'restart');
    if (restartFor) {
      later.push({ kind: 'restart', instance: i, reason: `its config file ${restartFor.path} changed (on_change: restart)` });
      continue;
    }
    const signals = new Map<string, string>();
    for (const f of files) if (f.onChange === 'reload' && !signals.has(f.signal)) signals.set(f.signal, f.path);
    for (const [signal, path] of [...signals].sort(([a], [b]) => (a < b ? -1 : 1))) later.push({ kind: 'signal', instance: i, signal, path });
  }
  for (const [app, files] of [...changed].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (except.has(app)) for (const f of files) later.push({ kind: 'notify-change', file: f });
  }
  return [...steps, ...later];
}
