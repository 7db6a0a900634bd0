/**
 * The difference between what a node should run and what it runs, as an ordered list of steps. Pure: the daemon
 * observes (unit files, links, unit states, delivered files), calls reconcile(), and carries the steps out.
 * Level-triggered: run it again at any time, after a crash half-way included, and it asks only for what is still
 * missing.
 *
 * Least disruptive action first:
 *   nothing changed                      → no step
 *   routes changed                       → rewrite the routes file, reload the proxy (no restart)
 *   a config file changed                → rewrite it in place, then the app's on_change (signal, rolling restart)
 *   a template changed (version, env, …) → rolling restart of that app's instances, one at a time
 *   a deployment appeared                → start one instance; one disappeared → retire it (grace, then stop)
 *
 * An instance "runs an old definition" when it became active before its template (or, for on_change: restart,
 * its config file) was last written: that survives a crash of glowd in the middle of a rolling restart.
 */
import { instanceUnit, parseInstanceUnit, PROXY_UNIT, TARGET, templateName } from '../base/names.js';
import { appOfStorePath, configStorePath, tlsStorePath } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import type { NodePlan, PlannedConfigFile } from '../plan/node-plan.js';
import type { RenderedUnits } from '../render/units.js';
import { artifactSteps, configChanges, configReaction, restartsOnChange } from './common.js';
import type { EnsureArtifact } from './common.js';

export interface ObservedUnit {
  readonly activeState: string;
  /** µs since the epoch; 0 if never active. */
  readonly activeEnterUs: number;
}

export interface ObservedNode {
  /** Glow's own unit files in the unit directory (those with the generated-by header). */
  readonly unitFiles: ReadonlyMap<string, { readonly content: string; readonly mtimeMs: number }>;
  /** Glow's links, by path relative to the unit directory (`glow.target.wants/glow-web@1.service`) → the unit
   * they point to. */
  readonly wants: ReadonlyMap<string, string>;
  /** States of glow's units that systemd knows (instances and the proxy); absent means inactive. */
  readonly units: ReadonlyMap<string, ObservedUnit>;
  /** Delivered config files: store path → sha256 and mtime. */
  readonly configFiles: ReadonlyMap<string, { readonly sha256: string; readonly mtimeMs: number }>;
  /** The routes file's content, if any. */
  readonly routes: string | undefined;
  /** Delivered certificates and keys (`<state>/tls/…`): store path → sha256, empty when owner or mode are wrong. */
  readonly tlsFiles?: ReadonlyMap<string, { readonly sha256: string }>;
}

export interface Desired {
  readonly plan: NodePlan;
  readonly units: RenderedUnits;
  readonly routes: string;
}

export type Step =
  | EnsureArtifact
  | { readonly kind: 'write-config'; readonly file: PlannedConfigFile; readonly storePath: string }
  | { readonly kind: 'remove-config'; readonly storePath: string }
  | { readonly kind: 'write-tls'; readonly source: string; readonly storePath: string }
  | { readonly kind: 'remove-tls'; readonly storePath: string }
  | { readonly kind: 'write-routes'; readonly content: string }
  | { readonly kind: 'write-unit'; readonly name: string; readonly content: string }
  | { readonly kind: 'remove-unit'; readonly name: string }
  | { readonly kind: 'link-want'; readonly name: string; readonly target: string }
  | { readonly kind: 'unlink-want'; readonly name: string }
  | { readonly kind: 'daemon-reload' }
  | { readonly kind: 'start'; readonly unit: string }
  | { readonly kind: 'restart'; readonly unit: string }
  | { readonly kind: 'reload-proxy' }
  /** Restart these instances one at a time, each waiting until it is healthy before the next. */
  | { readonly kind: 'rolling-restart'; readonly app: string; readonly units: readonly string[]; readonly reason: string }
  | { readonly kind: 'signal'; readonly app: string; readonly units: readonly string[]; readonly signal: string }
  /** An instance that is no longer deployed: stop it after the grace period (the daemon keeps the clock). */
  | { readonly kind: 'retire'; readonly unit: string };

export function isRunning(u: ObservedUnit | undefined): boolean {
  return u !== undefined && (u.activeState === 'active' || u.activeState === 'activating' || u.activeState === 'reloading');
}

export function storePathOf(env: NodePaths, f: PlannedConfigFile): string {
  return configStorePath(env, f.app, f.path);
}

export function reconcile(desired: Desired, observed: ObservedNode, env: NodePaths): Step[] {
  const steps: Step[] = [];
  const { plan, units } = desired;

  // 1. Artifacts of the exec instances (the daemon returns at once when one is unpacked already).
  steps.push(...artifactSteps(plan.instances));

  // 2. Config files: write what differs, remember which apps must react.
  const { write, changed: changedConfig } = configChanges(plan.files, (f) => observed.configFiles.get(storePathOf(env, f))?.sha256);
  for (const f of write) steps.push({ kind: 'write-config', file: f, storePath: storePathOf(env, f) });
  const wantedStore = new Set(plan.files.map((f) => storePathOf(env, f)));
  // A file no longer wanted goes when no instance of its app runs any more (a retiring one still reads it).
  const runningApps = new Set<string>();
  for (const [name, u] of observed.units) {
    const ref = parseInstanceUnit(name);
    if (ref && isRunning(u)) runningApps.add(ref.app);
  }
  for (const storePath of [...observed.configFiles.keys()].sort()) {
    const app = appOfStorePath(env, storePath);
    if (!wantedStore.has(storePath) && !runningApps.has(app)) steps.push({ kind: 'remove-config', storePath });
  }

  // 2b. Certificates and keys before the routes that name them; the proxy notices changed files by itself.
  const wantedTls = new Set<string>();
  for (const f of plan.tlsFiles ?? []) {
    const storePath = tlsStorePath(env, f.source);
    wantedTls.add(storePath);
    if (observed.tlsFiles?.get(storePath)?.sha256 !== f.sha256) steps.push({ kind: 'write-tls', source: f.source, storePath });
  }

  // 3. The proxy's routes.
  const routesChanged = observed.routes !== desired.routes;
  if (routesChanged) steps.push({ kind: 'write-routes', content: desired.routes });

  // 4. Unit files and links.
  const desiredInstances = new Set(plan.instances.map((i) => instanceUnit(i.app, i.instance)));
  let reload = false;
  const changedTemplates = new Set<string>();
  for (const [name, content] of units.files) {
    const seen = observed.unitFiles.get(name);
    if (seen?.content === content) continue;
    steps.push({ kind: 'write-unit', name, content });
    reload = true;
    if (seen) changedTemplates.add(name);
  }
  for (const [name, target] of units.wants) {
    if (observed.wants.get(name) === target) continue;
    steps.push({ kind: 'link-want', name, target });
    reload = true;
  }
  // What is no longer wanted goes once it has stopped (an active instance is retired first, below).
  const activeTemplates = new Set([...runningApps].map(templateName));
  for (const name of [...observed.wants.keys()].sort()) {
    if (units.wants.has(name)) continue;
    const unit = name.slice(name.lastIndexOf('/') + 1);
    if (parseInstanceUnit(unit) && isRunning(observed.units.get(unit))) continue;
    steps.push({ kind: 'unlink-want', name });
    reload = true;
  }
  for (const name of [...observed.unitFiles.keys()].sort()) {
    if (units.files.has(name) || activeTemplates.has(name)) continue;
    steps.push({ kind: 'remove-unit', name });
    reload = true;
  }
  if (reload) steps.push({ kind: 'daemon-reload' });

  // 5. The proxy first: instances find their required ports open from their first second.
  const proxy = observed.units.get(PROXY_UNIT);
  if (!isRunning(proxy)) steps.push({ kind: 'start', unit: PROXY_UNIT });
  else if (changedTemplates.has(PROXY_UNIT)) steps.push({ kind: 'restart', unit: PROXY_UNIT });
  else if (routesChanged) steps.push({ kind: 'reload-proxy' });

  // 6. Instances: start the missing, restart the outdated, signal the reloadable.
  const byApp = new Map<string, string[]>();
  for (const i of plan.instances) {
    const unit = instanceUnit(i.app, i.instance);
    const list = byApp.get(i.app) ?? [];
    list.push(unit);
    byApp.set(i.app, list);
  }
  for (const [app, list] of byApp) {
    const template = templateName(app);
    const unitWritten = changedTemplates.has(template) ? Infinity : (observed.unitFiles.get(template)?.mtimeMs ?? 0);
    const configWritten = Math.max(
      0,
      ...plan.files
        .filter((f) => f.app === app && restartsOnChange(f))
        .map((f) => (changedConfig.get(app)?.includes(f) ? Infinity : (observed.configFiles.get(storePathOf(env, f))?.mtimeMs ?? 0))),
    );
    const toRestart: string[] = [];
    const running: string[] = [];
    let reason = 'its config file changed';
    for (const unit of list) {
      const u = observed.units.get(unit);
      if (!isRunning(u)) {
        steps.push({ kind: 'start', unit });
        continue;
      }
      if (u!.activeState !== 'active') continue; // starting, or restarting after a crash: systemd has it in hand
      running.push(unit);
      const since = u!.activeEnterUs / 1000;
      if (since < unitWritten) reason = 'its unit changed';
      if (since < unitWritten || since < configWritten) toRestart.push(unit);
    }
    if (toRestart.length > 0) steps.push({ kind: 'rolling-restart', app, units: toRestart, reason });
    const toSignal = running.filter((u) => !toRestart.includes(u));
    for (const [signal] of configReaction(changedConfig.get(app) ?? []).signals) {
      if (toSignal.length > 0) steps.push({ kind: 'signal', app, units: toSignal, signal });
    }
  }
  if (!isRunning(observed.units.get(TARGET))) steps.push({ kind: 'start', unit: TARGET });

  // 7. Instances that are no longer deployed.
  for (const [name, u] of observed.units) {
    if (parseInstanceUnit(name) && !desiredInstances.has(name) && isRunning(u)) steps.push({ kind: 'retire', unit: name });
  }

  // 8. Certificates no route names any more (after the reload that stopped naming them).
  for (const storePath of [...(observed.tlsFiles?.keys() ?? [])].sort()) if (!wantedTls.has(storePath)) steps.push({ kind: 'remove-tls', storePath });
  return steps;
}

/** One line per step, for glowd's log and `glow plan` on a node. */
export function describeStep(s: Step): string {
  switch (s.kind) {
    case 'ensure-artifact':
      return `artifact ${s.image}:${s.version}`;
    case 'write-config':
      return `deliver ${s.file.path} (${s.file.app})`;
    case 'remove-config':
      return `remove ${s.storePath}`;
    case 'write-tls':
      return `deliver ${s.source} (tls)`;
    case 'remove-tls':
      return `remove ${s.storePath}`;
    case 'write-routes':
      return 'write proxy routes';
    case 'write-unit':
      return `write ${s.name}`;
    case 'remove-unit':
      return `remove ${s.name}`;
    case 'link-want':
      return `enable ${s.name}`;
    case 'unlink-want':
      return `disable ${s.name}`;
    case 'daemon-reload':
      return 'daemon-reload';
    case 'start':
      return `start ${s.unit}`;
    case 'restart':
      return `restart ${s.unit}`;
    case 'reload-proxy':
      return 'reload the proxy';
    case 'rolling-restart':
      return `rolling restart of ${s.units.join(', ')} (${s.reason})`;
    case 'signal':
      return `${s.signal} to ${s.units.join(', ')}`;
    case 'retire':
      return `retire ${s.unit}`;
  }
}
