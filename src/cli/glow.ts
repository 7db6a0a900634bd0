#!/usr/bin/env node
/**
 * `glow`: the command line. Each command is a small module; this file only dispatches.
 */
import { GlowError } from '../base/errors.js';
import { closest } from '../config/suggest.js';
import { reportFailure, version } from './failure.js';
import { runAgent } from './agent.js';
import { runCheck } from './check.js';
import { runDev } from './dev.js';
import { runLogs } from './logs.js';
import { runPlan } from './plan.js';
import { runProxy } from './proxy.js';
import { runStatus } from './status.js';
import { guardStdio } from './stdio.js';
import { runSyncCommand } from './sync.js';
import { runUp } from './up.js';

const HELP = `glow — a damn simple private PaaS

Usage
  glow check [DIR] [--json]              validate a config repository
  glow plan [DIR] --node NAME [--json]   what a node runs: instances, proxy listeners, exposures, files
                                         (on a node: and what would change there)
  glow status [--json]                   this node: revision applied, errors, proxy, instances, log sinks
  glow status --cluster [DIR]            every node of the repository, asked over the network
  glow logs APP [-f] [--instance N]      an app's lines on this node, from the journal (--since, --json)
  glow up [DIR] [--node NAME]            the developer box: the repository on this machine, without systemd
  glow dev APP [DIR]                     one app's environment (listeners, config files, GLOW_* env), not run
  glow sync [--source URL|DIR]           publish the source's latest revision as the repository (one link switch)
  glow agent                             the node agent (glowd)
  glow proxy --routes FILE               the node's proxy (run by glow-proxy.service)

Run \`glow COMMAND --help\` for a command's options. The repository DIR defaults to the current directory.
Docs: docs/config.md (the files), docs/errors.md (every error code).`;

type Command = (argv: string[]) => Promise<number> | number;
const COMMANDS: Record<string, Command> = { check: runCheck, plan: runPlan, status: runStatus, logs: runLogs, up: runUp, dev: runDev, agent: runAgent, proxy: runProxy, sync: runSyncCommand };

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    // `glow help check` is `glow check --help`.
    if (name === 'help' && rest[0] !== undefined) return main([rest[0], '--help']);
    process.stdout.write(`${HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    const near = closest(name, Object.keys(COMMANDS));
    throw new GlowError('GLOW_E_USAGE', `unknown command \`${name}\`${near ? `; did you mean \`glow ${near}\`?` : ''} (see \`glow --help\`)`);
  }
  return command(rest);
}

// `glow check | head`, a closed terminal: never a crash (src/cli/stdio.ts).
guardStdio();

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = reportFailure('glow', e, argv.includes('--json'));
  },
);
