/**
 * The rules that a node (src/reconcile/node.ts) and a developer box (src/reconcile/box.ts) share, whatever they
 * observe: which artifacts to make sure of, which config files to write and which apps must react to them, and
 * what an instance is started from. Pure.
 */
import type { PlannedConfigFile, PlannedInstance } from '../plan/node-plan.js';

/** Fetch or copy an exec artifact once, before anything that runs it (returns at once when it is there). */
export interface EnsureArtifact {
  readonly kind: 'ensure-artifact';
  /** The first app (in plan order) that runs it: the one a failure is reported for and blocks. */
  readonly app: string;
  readonly image: string;
  readonly version: string;
  readonly digest?: string;
}

/** One step per exec artifact the instances run, in the order of the instances. */
export function artifactSteps(instances: readonly PlannedInstance[]): EnsureArtifact[] {
  const steps: EnsureArtifact[] = [];
  const seen = new Set<string>();
  for (const i of instances) {
    const key = `${i.image}\0${i.version}`;
    if (i.runtime !== 'exec' || seen.has(key)) continue;
    seen.add(key);
    steps.push({ kind: 'ensure-artifact', app: i.app, image: i.image, version: i.version, ...(i.digest ? { digest: i.digest } : {}) });
  }
  return steps;
}

export interface ConfigChanges {
  /** The files to write: absent, or with other bytes than the plan's. */
  readonly write: readonly PlannedConfigFile[];
  /** By app, the files that were there with other bytes: the app had read them, so it must react. */
  readonly changed: ReadonlyMap<string, readonly PlannedConfigFile[]>;
}

/**
 * The config files to write, given the sha256 of each as delivered now (undefined: not there). An app reacts only
 * to a file it had already read: a missing one is simply delivered.
 */
export function configChanges(files: readonly PlannedConfigFile[], delivered: (f: PlannedConfigFile) => string | undefined): ConfigChanges {
  const write: PlannedConfigFile[] = [];
  const changed = new Map<string, PlannedConfigFile[]>();
  for (const f of files) {
    const now = delivered(f);
    if (now === f.sha256) continue;
    write.push(f);
    if (now !== undefined) changed.set(f.app, [...(changed.get(f.app) ?? []), f]);
  }
  return { write, changed };
}

/** Whether a change of this file restarts its app (`on_change: restart`). */
export const restartsOnChange = (f: PlannedConfigFile): boolean => f.onChange === 'restart';

/** What an app does about its changed files: the first that restarts it, else the signals to send (sorted), each
 * with the first file that asks for it. */
export interface ConfigReaction {
  readonly restartFor: PlannedConfigFile | undefined;
  readonly signals: readonly (readonly [signal: string, path: string])[];
}

export function configReaction(changed: readonly PlannedConfigFile[]): ConfigReaction {
  const signals = new Map<string, string>();
  for (const f of changed) if (f.onChange === 'reload' && !signals.has(f.signal)) signals.set(f.signal, f.path);
  return {
    restartFor: changed.find(restartsOnChange),
    signals: [...signals].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };
}

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
