/**
 * The difference between a dev box's plan and what the box runs, as an ordered list of steps. Pure, and
 * level-triggered like src/reconcile/node.ts, whose order and rules it follows with child processes in place of
 * systemd units (that module's steps are about unit files, links and daemon-reloads, which a box has none of).
 * The rules both share — artifact dedupe, which config changes make which app react, an instance's definition —
 * are in src/reconcile/common.ts:
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
import { instanceKey, parseInstanceKey } from '../base/names.js';
import type { NodePlan, PlannedConfigFile, PlannedInstance } from '../plan/node-plan.js';
import { artifactSteps, configChanges, configReaction, definitionChange, definitionOf } from './common.js';
import type { EnsureArtifact } from './common.js';

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
  | EnsureArtifact
  | { readonly kind: 'write-config'; readonly file: PlannedConfigFile }
  | { readonly kind: 'write-tls'; readonly source: string }
  | { readonly kind: 'apply-routes' }
  | { readonly kind: 'stop'; readonly key: string; readonly reason: string }
  | { readonly kind: 'start'; readonly instance: PlannedInstance }
  | { readonly kind: 'restart'; readonly instance: PlannedInstance; readonly reason: string }
  | { readonly kind: 'signal'; readonly instance: PlannedInstance; readonly signal: string; readonly path: string }
  /** A config file of an app that Glow does not run here changed: whoever runs it should know. */
  | { readonly kind: 'notify-change'; readonly file: PlannedConfigFile };

export function diffBox(desired: DesiredBox, observed: ObservedBox): BoxStep[] {
  const { plan } = desired;
  const except = desired.except ?? new Set<string>();
  const run = plan.instances.filter((i) => !except.has(i.app));
  const steps: BoxStep[] = [];

  steps.push(...artifactSteps(run));

  // Config files; an app reacts only to a file it had already read (a missing one is simply delivered).
  const { write, changed } = configChanges(plan.files, (f) => observed.files.get(f.path));
  for (const f of write) steps.push({ kind: 'write-config', file: f });
  for (const t of plan.tlsFiles ?? []) {
    if (observed.tlsFiles.get(t.source) !== t.sha256) steps.push({ kind: 'write-tls', source: t.source });
  }

  if (observed.routes !== desired.routes) steps.push({ kind: 'apply-routes' });

  const wanted = new Map(run.map((i) => [instanceKey(i.app, i.instance), i]));
  for (const key of [...observed.instances.keys()].sort()) {
    if (!wanted.has(key)) steps.push({ kind: 'stop', key, reason: except.has(parseInstanceKey(key)?.app ?? '') ? 'it runs outside Glow now' : 'it is no longer deployed' });
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
    const { restartFor, signals } = configReaction(files);
    if (restartFor) {
      later.push({ kind: 'restart', instance: i, reason: `its config file ${restartFor.path} changed (on_change: restart)` });
      continue;
    }
    for (const [signal, path] of signals) later.push({ kind: 'signal', instance: i, signal, path });
  }
  for (const [app, files] of [...changed].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (except.has(app)) for (const f of files) later.push({ kind: 'notify-change', file: f });
  }
  return [...steps, ...later];
}
