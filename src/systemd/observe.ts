/**
 * What a node runs now, as glowd sees it: its own unit files and links (recognised by the generated-by header
 * and by name), the states systemd reports for glow's units, the delivered config files and the routes file.
 * This is the "observed" input of reconcile().
 */
import { BOOT_LINK, isGlowUnit, isTemplate, UNIT_PATTERNS, WANTS_DIR } from '../base/names.js';
import { routesFile } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ObservedNode, ObservedUnit } from '../reconcile/node.js';
import { GENERATED_HEADER } from '../render/units.js';
import type { Systemd, UnitState } from './dbus.js';
import { walkFiles } from '../fs/atomic.js';
import { readTlsStore } from './tls-files.js';

/** Glow's unit files in `unitDir`: names that look like ours and start with our header. */
export function readOwnUnitFiles(unitDir: string): Map<string, { content: string; mtimeMs: number }> {
  const out = new Map<string, { content: string; mtimeMs: number }>();
  let names: string[] = [];
  try {
    names = readdirSync(unitDir);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    if (!isGlowUnit(name)) continue;
    const path = join(unitDir, name);
    try {
      const st = lstatSync(path);
      if (!st.isFile()) continue;
      const content = readFileSync(path, 'utf8');
      if (content.startsWith(GENERATED_HEADER)) out.set(name, { content, mtimeMs: st.mtimeMs });
    } catch {
      // vanished between readdir and read: not there
    }
  }
  return out;
}

/** Glow's links: everything in glow.target.wants/, and multi-user.target.wants/glow.target. */
export function readOwnLinks(unitDir: string): Map<string, string> {
  const out = new Map<string, string>();
  const add = (rel: string) => {
    try {
      out.set(rel, basename(readlinkSync(join(unitDir, rel))));
    } catch {
      // not a link or gone
    }
  };
  try {
    for (const name of readdirSync(join(unitDir, WANTS_DIR)).sort()) add(`${WANTS_DIR}/${name}`);
  } catch {
    // no directory yet
  }
  add(BOOT_LINK);
  return out;
}

/** Every regular file under `<stateDir>/files/`, with its sha256. */
export function readConfigStore(env: NodePaths): Map<string, { sha256: string; mtimeMs: number }> {
  const out = new Map<string, { sha256: string; mtimeMs: number }>();
  walkFiles(join(env.stateDir, 'files'), (p, st) => out.set(p, { sha256: createHash('sha256').update(readFileSync(p)).digest('hex'), mtimeMs: st.mtimeMs }));
  return out;
}

export function readRoutes(env: NodePaths): string | undefined {
  try {
    return readFileSync(routesFile(env), 'utf8');
  } catch {
    return undefined;
  }
}

/** States of glow's units known to systemd, plus those glowd has files or links for. */
export async function readUnitStates(systemd: Systemd, names: Iterable<string>): Promise<Map<string, UnitState>> {
  const all = new Set<string>(names);
  for (const n of await systemd.listUnits(UNIT_PATTERNS)) if (isGlowUnit(n) && !isTemplate(n)) all.add(n);
  // Asked all at once: D-Bus pipelines the calls.
  const wanted = [...all].filter((n) => !isTemplate(n)).sort();
  const states = await Promise.all(wanted.map((n) => systemd.state(n)));
  return new Map(wanted.map((n, i) => [n, states[i]!]));
}

/**
 * The observed node for reconcile(): one ListUnitsByPatterns call for the states, and the activation time of
 * each running unit (pipelined). Units that systemd has not loaded are inactive.
 */
export async function observe(systemd: Systemd, unitDir: string, env: NodePaths): Promise<ObservedNode> {
  const unitFiles = readOwnUnitFiles(unitDir);
  const wants = readOwnLinks(unitDir);
  const listed = await systemd.listStates(UNIT_PATTERNS);
  const running = [...listed].filter(([n, u]) => isGlowUnit(n) && u.activeState !== 'inactive' && u.activeState !== 'failed');
  const since = await Promise.all(running.map(([, u]) => systemd.activeEnterUs(u.path)));
  const units = new Map<string, ObservedUnit>();
  running.forEach(([n, u], i) => units.set(n, { activeState: u.activeState, activeEnterUs: since[i]! }));
  for (const [n, u] of listed) if (isGlowUnit(n) && !units.has(n)) units.set(n, { activeState: u.activeState, activeEnterUs: 0 });
  return { unitFiles, wants, units, configFiles: readConfigStore(env), routes: readRoutes(env), tlsFiles: readTlsStore(env) };
}

/** Full states of glow's units (for status): those systemd lists, and those glowd has files or links for. */
export async function observeStates(systemd: Systemd, unitDir: string): Promise<Map<string, UnitState>> {
  const linked = [...readOwnLinks(unitDir).keys()].map((k) => basename(k));
  return readUnitStates(systemd, [...readOwnUnitFiles(unitDir).keys(), ...linked]);
}
