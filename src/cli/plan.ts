/**
 * `glow plan [DIR] --node NAME [--json]`: the desired state of one node, as the daemon computes it.
 */
import { loadRepository } from '../config/load.js';
import { readRepo } from '../config/source.js';
import { planNode } from '../plan/node-plan.js';
import { parseArgs } from './args.js';
import { formatError, formatPlan, styleFor } from './format.js';

const HELP = `Usage
  glow plan [DIR] --node NAME [--json]

Prints what node NAME runs from the repository DIR (default: the current directory): its instances, the
proxy's loopback listeners with their upstreams and policies, the exposures it serves and the config files it
delivers. With errors in the repository, prints them and exits 1, as \`glow check\` does.

Options
  --node NAME   the node (required)
  --json        print the plan as JSON (the form glowd and the proxy consume)`;

export function runPlan(argv: string[]): number {
  const cli = parseArgs(argv, HELP, {
    node: { type: 'string', isRequired: true },
    json: { type: 'boolean', default: false },
  });
  const dir = cli.input[0] ?? '.';
  const result = loadRepository(readRepo(dir));
  const style = styleFor(process.stdout);
  if (!result.ok) {
    for (const e of result.errors) process.stderr.write(`${formatError(e, styleFor(process.stderr))}\n`);
    return 1;
  }
  const plan = planNode(result.snapshot, cli.flags.node);
  process.stdout.write(cli.flags.json ? `${JSON.stringify(plan, null, 2)}\n` : `${formatPlan(plan, style)}\n`);
  return 0;
}
