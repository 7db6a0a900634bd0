#!/usr/bin/env node
/** `glowd`: the node agent (the same as `glow agent`). */
import { runAgent } from './agent.js';
import { reportFailure, version } from './failure.js';

const argv = process.argv.slice(2);
if (argv[0] === '--version' || argv[0] === '-v') {
  process.stdout.write(`${version()}\n`);
} else {
  runAgent(argv).catch((e: unknown) => {
    process.exit(reportFailure('glowd', e, false));
  });
}
