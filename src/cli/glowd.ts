#!/usr/bin/env node
/** `glowd`: the node agent (the same as `glow agent`). */
import { GlowError } from '../base/errors.js';
import { runAgent } from './agent.js';

runAgent(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof GlowError) process.stderr.write(`glowd: ${e.code} ${e.message}\n`);
  else process.stderr.write(`glowd: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
