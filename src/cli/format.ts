/**
 * How the command line shows things to people: errors with an excerpt of the line, plans as short tables.
 * Colour only on a terminal (and never with NO_COLOR).
 */
import type { Snapshot } from '../config/model.js';
import type { NodePlan, UpstreamGroup } from '../plan/node-plan.js';
import type { Style } from '../shell/style.js';

export function summary(s: Snapshot): string {
  const n = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
  return [
    n(s.nodes.size, 'node'),
    n(s.apps.size, 'app'),
    n(s.externals.size, 'external'),
    n(s.instances.length, 'instance'),
    n(s.exposures.size, 'exposure'),
  ].join(', ');
}

function upstreams(g: UpstreamGroup): string {
  if (g.upstreams.length === 0) return `${g.service} (no instances)`;
  const list = g.upstreams.map((u) => `${u.host}:${u.port}${u.node ? ` (${u.node}${u.local ? ', local' : ''})` : ''}`);
  return `${g.service} → ${list.join(', ')}`;
}

/** A column as wide as its longest cell (at least `min`), so that long names and paths do not break the table. */
function widthOf(cells: readonly string[], min: number): number {
  return Math.max(min, ...cells.map((c) => c.length + 1));
}

export function formatPlan(plan: NodePlan, style: Style): string {
  const out: string[] = [];
  const wInst = widthOf(plan.instances.map((i) => `${i.app} #${i.instance}`), 20);
  const wListen = widthOf(plan.listeners.map((l) => `${l.bind}:${l.port}`), 20);
  const wExp = widthOf(plan.exposures.map((e) => e.name), 20);
  const wFile = widthOf(plan.files.map((f) => f.path), 28);
  out.push(`${style.bold(`node ${plan.node}`)} (${plan.address}), revision ${plan.revision}`);
  out.push('', style.bold(`instances (${plan.instances.length})`));
  for (const i of plan.instances) {
    const ports = i.provides.map((p) => `${p.port}/${p.protocol}`).join(' ');
    out.push(`  ${`${i.app} #${i.instance}`.padEnd(wInst)} ${i.image}:${i.version} (${i.runtime})${ports ? `  provides ${ports}` : ''}`);
  }
  out.push('', style.bold(`listeners (${plan.listeners.length})`));
  for (const l of plan.listeners) {
    const [first, ...rest] = l.groups;
    const fb = rest.length ? `; fallback ${rest.map(upstreams).join('; then ')}` : '';
    out.push(`  ${`${l.bind}:${l.port}`.padEnd(wListen)} ${l.protocol.padEnd(5)} ${first ? upstreams(first) : ''}${fb}  ${style.dim(`for ${l.for.join(', ')}`)}`);
  }
  out.push('', style.bold(`exposures (${plan.exposures.length})`));
  for (const e of plan.exposures) {
    const hosts = e.hosts.length ? ` ${e.hosts.join(', ')}${e.path ?? ''}` : '';
    const tls = e.tls ? ' tls' : '';
    out.push(`  ${e.name.padEnd(wExp)} ${e.bind}:${e.port} ${e.protocol}${tls}${hosts} → ${e.groups.map(upstreams).join('; then ')}`);
  }
  out.push('', style.bold(`config files (${plan.files.length})`));
  for (const f of plan.files) {
    const change = f.onChange === 'reload' ? `reload with ${f.signal}` : f.onChange;
    out.push(`  ${f.path.padEnd(wFile)} ← ${f.source} ${style.dim(`(${f.app}; on change: ${change}; sha256 ${f.sha256.slice(0, 12)})`)}`);
  }
  return out.join('\n');
}
