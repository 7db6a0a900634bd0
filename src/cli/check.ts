/**
 * `glow check [DIR] [--json]`: validate a repository; exit 1 on any error.
 */
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { loadRepository } from '../config/load.js';
import { readRepo } from '../config/source.js';
import { parseArgs } from './args.js';
import { formatError, styleFor } from '../shell/style.js';
import { summary } from './format.js';

const HELP = `Usage
  glow check [DIR] [--json]

Validates the config repository DIR (default: the current directory): every file on its own and the
repository as a whole. Prints every error as \`file:line:col CODE sentence\` and exits 1 if there is any;
prints a one-line summary and exits 0 otherwise.

Options
  --json   print {ok, revision, errors, summary} as JSON`;

export function runCheck(argv: string[]): number {
  const cli = parseArgs(argv, HELP, { json: { type: 'boolean', default: false } });
  const dir = cli.input[0] ?? '.';
  const result = loadRepository(readRepo(dir));
  if (cli.flags.json) {
    const body = result.ok
      ? {
          ok: true,
          revision: result.snapshot.revision,
          errors: [],
          summary: {
            nodes: result.snapshot.nodes.size,
            apps: result.snapshot.apps.size,
            externals: result.snapshot.externals.size,
            instances: result.snapshot.instances.length,
            exposures: result.snapshot.exposures.size,
          },
        }
      : { ok: false, revision: result.revision, errors: result.errors.map((e) => e.toJSON()) };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return result.ok ? 0 : 1;
  }
  if (!result.ok) {
    const style = styleFor(process.stdout);
    for (const e of result.errors) process.stdout.write(`${formatError(e, style)}\n`);
    const n = result.errors.length;
    process.stdout.write(`\n${n} error${n === 1 ? '' : 's'} in ${dir}; nothing of this revision would be applied\n`);
    // Run from inside a repository (its apps/, files/web/…): say where the repository is.
    const up = result.errors.some((e) => e.code === 'GLOW_E_REPO_EMPTY') ? enclosingRepo(dir) : undefined;
    if (up) process.stdout.write(`${dir} is inside the repository ${up.shown}: run \`glow check ${up.shown}\`\n`);
    return 1;
  }
  process.stdout.write(`ok: ${dir} revision ${result.snapshot.revision}: ${summary(result.snapshot)}\n`);
  return 0;
}

/** What makes a directory a repository at a glance: glow.yaml, or one of the directories of the files. */
const MARKS = ['glow.yaml', 'nodes', 'apps', 'externals', 'deployments', 'exposures'];

/** The nearest parent directory of `dir` that looks like a repository, as the user would type it. */
export function enclosingRepo(dir: string): { path: string; shown: string } | undefined {
  let at = resolve(dir);
  for (;;) {
    const parent = dirname(at);
    if (parent === at) return undefined;
    at = parent;
    if (MARKS.some((m) => existsSync(join(at, m)))) {
      const rel = relative(process.cwd(), at);
      return { path: at, shown: rel === '' ? '.' : rel.split(sep).every((p) => p === '..') || !rel.startsWith('..') ? rel : at };
    }
  }
}
