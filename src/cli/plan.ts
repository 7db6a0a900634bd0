/**
 * `glow plan [DIR] --node NAME [--json]`: the desired state of one node, as the daemon computes it; on a node
 * where glowd runs as NAME, also the difference against what runs there (the steps glowd would take).
 */
import { AGENT_DEFAULTS } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import { existsSync } from 'node:fs';
import { getUnix } from '../shell/control.js';
import { loadRepository } from '../config/load.js';
import { readRepo } from '../config/source.js';
import { describeStep, reconcile } from '../reconcile/node.js';
import type { ObservedNode, Step } from '../reconcile/node.js';
import { renderRoutes } from '../render/routes.js';
import { renderUnits } from '../render/units.js';
import { planNode } from '../plan/node-plan.js';
import type { NodePlan } from '../plan/node-plan.js';
import { parseArgs } from './args.js';
import { formatError, styleFor } from '../shell/style.js';
import { formatPlan } from './format.js';

const HELP = `Usage
  glow plan [DIR] --node NAME [--json] [--socket PATH]

Prints what node NAME runs from the repository DIR (default: the current directory): its instances, the
proxy's loopback listeners with their upstreams and policies, the exposures it serves and the config files it
delivers. On a node where glowd runs as NAME (its control socket exists; run as root), it also prints what would
change there: units to add, change or remove, starts, restarts, signals and stops. With errors in the
repository, prints them and exits 1, as \`glow check\` does.

Options
  --node NAME     the node (required)
  --json          print the plan (and the changes) as JSON: the form glowd and the proxy consume
  --socket PATH   glowd's control socket (default ${AGENT_DEFAULTS.socket})`;

interface LiveNode {
  env: NodePaths;
  observed: {
    unitFiles: Record<string, { content: string; mtimeMs: number }>;
    wants: Record<string, string>;
    units: Record<string, { activeState: string; activeEnterUs: number }>;
    configFiles: Record<string, { sha256: string; mtimeMs: number }>;
    routes: string | null;
    tlsFiles?: Record<string, { sha256: string }>;
  };
}

/** The steps glowd would take on this node for `plan`, or undefined when no glowd runs here as that node. */
async function liveDiff(plan: NodePlan, socket: string): Promise<Step[] | undefined> {
  if (!existsSync(socket)) return undefined;
  try {
    const status = JSON.parse((await getUnix(socket, '/status')).body) as { node: string };
    if (status.node !== plan.node) return undefined;
    const live = JSON.parse((await getUnix(socket, '/observed')).body) as LiveNode;
    const o = live.observed;
    const observed: ObservedNode = {
      unitFiles: new Map(Object.entries(o.unitFiles)),
      wants: new Map(Object.entries(o.wants)),
      units: new Map(Object.entries(o.units)),
      configFiles: new Map(Object.entries(o.configFiles)),
      routes: o.routes ?? undefined,
      tlsFiles: new Map(Object.entries(o.tlsFiles ?? {})),
    };
    const steps = reconcile({ plan, units: renderUnits(plan, live.env), routes: renderRoutes(plan, live.env) }, observed, live.env);
    return steps.filter((s) => s.kind !== 'ensure-artifact');
  } catch {
    return undefined;
  }
}

export async function runPlan(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    node: { type: 'string', isRequired: true },
    json: { type: 'boolean', default: false },
    socket: { type: 'string', default: AGENT_DEFAULTS.socket },
  });
  const dir = cli.input[0] ?? '.';
  const result = loadRepository(readRepo(dir));
  const style = styleFor(process.stdout);
  if (!result.ok) {
    for (const e of result.errors) process.stderr.write(`${formatError(e, styleFor(process.stderr))}\n`);
    return 1;
  }
  const plan = planNode(result.snapshot, cli.flags.node);
  const changes = await liveDiff(plan, cli.flags.socket);
  if (cli.flags.json) {
    process.stdout.write(`${JSON.stringify(changes ? { ...plan, changes } : plan, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`${formatPlan(plan, style)}\n`);
  if (changes) {
    process.stdout.write(`\n${style.bold(`changes on this node (${changes.length})`)}\n`);
    for (const s of changes) process.stdout.write(`  ${describeStep(s)}\n`);
    if (changes.length === 0) process.stdout.write('  none: this node runs this plan\n');
  }
  return 0;
}
