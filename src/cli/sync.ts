/**
 * `glow sync [--source URL|DIR] [--ref REF] [--repo PATH] [--keep N] …`: brings the config repository to the
 * source's latest revision by writing it beside the published ones and switching the link glowd reads in one
 * rename (src/sync/). Defaults from /etc/glow/sync.env, read when present; flags win. Exit 0 when a new revision
 * was published or there was nothing new, 1 when it failed (the current revision stays); stdout says, in one line,
 * which revision is current.
 */
import { readFileSync } from 'node:fs';
import { GlowError } from '../base/errors.js';
import { SYNC_DEFAULTS, SYNC_ENV_FILE, parseEnvFile, resolveOptions } from '../sync/options.js';
import type { EnvFile } from '../sync/options.js';
import { runSync } from '../sync/sync.js';
import type { SyncOutcome } from '../sync/sync.js';
import { parseArgs } from './args.js';

const HELP = `Usage
  glow sync [--source URL|DIR] [--ref REF] [--repo PATH] [--keep N] [options]

Publishes the source's latest revision as the config repository: the new tree is written in a directory of its
own beside the published ones, and the repository link is switched to it in one rename, so glowd reads one
revision or the next, never a mix. Defaults come from ${SYNC_ENV_FILE} (read when present); flags win.
Exit status 0: published, or nothing new; 1: failed, the current revision stays.

Options
  --source URL|DIR        a git URL (ssh://, https://, git://, file://, host:path) or a directory to snapshot
                          (GLOW_SYNC_SOURCE)
  --ref REF               the branch, tag or ref of a git source (GLOW_SYNC_REF; default ${SYNC_DEFAULTS.ref}: the remote's default branch)
  --repo PATH             the link glowd reads (GLOW_SYNC_REPO; default ${SYNC_DEFAULTS.repo}); revisions go in
                          <dirname>/revisions/, sync's own state in <dirname>/sync/
  --keep N                revisions kept, the current one included (GLOW_SYNC_KEEP; default ${SYNC_DEFAULTS.keep})
  --verify none|gpg|ssh   publish only commits whose signature verifies (GLOW_SYNC_VERIFY; default none)
  --verify-signers FILE   the allowed signers file of ssh signatures; implies --verify ssh (GLOW_SYNC_ALLOWED_SIGNERS)
  --wait DURATION         how long to wait for another glow sync of this repository (GLOW_SYNC_WAIT; default
                          ${SYNC_DEFAULTS.waitMs / 1000}s; 0: exit at once)
  --timeout DURATION      the bound of a fetch or of a directory snapshot (GLOW_SYNC_TIMEOUT; default ${SYNC_DEFAULTS.timeoutMs / 1000}s)
  --sync-env FILE         read FILE instead of ${SYNC_ENV_FILE} (it must exist)

Docs: docs/operations.md, "Syncing the repository".`;

function short(id: string | undefined): string {
  if (id === undefined) return 'unknown content';
  return id.startsWith('sha256:') ? `content ${id}` : `commit ${id}`;
}

/** The one line: which revision is current after this run, and what the run did. */
export function currentLine(out: SyncOutcome): string {
  const c = out.current;
  const what = out.result === 'published' ? `published${out.previous ? `, was ${out.previous}` : ', the first'}` : out.result === 'unchanged' ? 'nothing new' : 'kept: this run failed';
  const notes = out.notes.length ? `; ${out.notes.join('; ')}` : '';
  if (c.name === undefined) return `current: none (${what}${notes})`;
  return `current: ${c.name} (${short(c.id)}; ${what}${notes})`;
}

export async function runSyncCommand(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    source: { type: 'string' },
    ref: { type: 'string' },
    repo: { type: 'string' },
    keep: { type: 'number' },
    verify: { type: 'string' },
    verifySigners: { type: 'string' },
    wait: { type: 'string' },
    timeout: { type: 'string' },
    syncEnv: { type: 'string' },
  });
  if (cli.input.length > 0) {
    process.stderr.write(`glow sync takes no arguments (the source is --source)\n\n${HELP}\n`);
    return 2;
  }
  const f = cli.flags;
  const envFile = f.syncEnv ?? SYNC_ENV_FILE;
  let file: EnvFile | undefined;
  try {
    file = parseEnvFile(readFileSync(envFile, 'utf8'), envFile);
  } catch (e) {
    if (e instanceof GlowError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || f.syncEnv !== undefined) {
      throw new GlowError('GLOW_E_SYNC_USAGE', `${envFile} cannot be read: ${(e as Error).message}`, { cause: e });
    }
  }
  const opts = resolveOptions(
    { source: f.source, ref: f.ref, repo: f.repo, keep: f.keep, verify: f.verify, verifySigners: f.verifySigners, wait: f.wait, timeout: f.timeout },
    file,
    envFile,
    process.cwd(),
  );
  const out = await runSync(opts, (holder, waitMs) => {
    process.stderr.write(`glow sync: another glow sync${holder !== undefined ? ` (pid ${holder})` : ''} is running; waiting up to ${waitMs / 1000}s for it\n`);
  });
  process.stdout.write(`${currentLine(out)}\n`);
  if (out.error) {
    process.stderr.write(`glow: ${out.error.code} ${out.error.message}\n`);
    return 1;
  }
  return 0;
}
