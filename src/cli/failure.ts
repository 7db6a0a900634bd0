/**
 * How a command that failed says so, the same for `glow` and `glowd`: a Glow error as `glow: CODE sentence` on
 * standard error (exit 1, or 2 for a usage error); under `--json`, as `{"ok": false, "error": {code, message}}` on
 * standard output, so that everything a `--json` command prints is JSON. Anything else is a bug: its stack, exit 70.
 */
import { createRequire } from 'node:module';
import { GlowError } from '../base/errors.js';

export function reportFailure(program: string, e: unknown, json: boolean): number {
  const glow = e instanceof GlowError;
  const code = glow ? e.code : 'GLOW_E_INTERNAL';
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: { code, message: (e as Error)?.message ?? String(e), ...(glow && e.errno ? { errno: e.errno } : {}) } })}\n`);
  } else if (glow) {
    process.stderr.write(`${program}: ${e.code} ${e.message}\n`);
  } else {
    process.stderr.write(`${program}: ${(e as Error)?.stack ?? String(e)}\n`);
  }
  if (!glow) return 70;
  return e.code === 'GLOW_E_USAGE' ? 2 : 1;
}

/** Glow's version: that of its package.json (the .deb sets it to the package's). */
export function version(): string {
  return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
}
