/**
 * The git side of `glow sync`: a bare mirror (`sync/git`), fetched without a checkout into one private ref
 * (`refs/glow/fetched`, forced, no `--prune`), the commit's signature checked with `git verify-commit`, and the
 * commit's tree exported with `git archive | tar -x` into a new directory. Nothing here writes where glowd reads.
 *
 * git runs with the environment of this process plus sync.env's own variables (GIT_SSH_COMMAND, https_proxy,
 * GNUPGHOME…), never prompts (GIT_TERMINAL_PROMPT=0, no stdin), and every fetch is bounded by --timeout.
 */
import { redactUrls } from '../base/redact.js';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GlowError } from '../base/errors.js';
import type { VerifyMode } from './options.js';
import { redactUrl } from './options.js';
import { FETCHED_REF } from './layout.js';

function environment(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  return { ...process.env, ...extra, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: process.env.GIT_ASKPASS ?? 'true', LC_ALL: 'C' };
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  error: Error | undefined;
}

function git(args: string[], env: Readonly<Record<string, string>>, timeoutMs: number): Ran {
  const r = spawnSync('git', args, { env: environment(env), stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut, error: timedOut ? undefined : r.error };
}

/** git's last lines of stderr, one line, without credentials of the URL. */
function why(r: Ran, url?: string): string {
  let text = r.stderr.trim().split('\n').filter(Boolean).slice(-3).join('; ') || (r.error ? r.error.message : `exit status ${r.status}`);
  if (url !== undefined && url !== redactUrl(url)) text = text.split(url).join(redactUrl(url));
  return redactUrls(text);
}

/**
 * Makes `dir` a bare repository if it is not one (a missing or broken mirror is made anew: it holds nothing that
 * cannot be fetched again), and removes the `*.lock` files a killed git left in it. Called under sync's lock, so
 * no other git of sync's runs in it.
 */
export function ensureMirror(dir: string, env: Readonly<Record<string, string>>): void {
  if (!existsSync(join(dir, 'HEAD')) || !existsSync(join(dir, 'objects'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const r = git(['init', '--bare', '--quiet', dir], env, 30_000);
    if (r.status !== 0) throw new GlowError('GLOW_E_SYNC_WRITE', `git init --bare ${dir} failed: ${why(r)}`);
    // The mirror is sync's alone: no automatic gc in the middle of a run's fetch.
    git(['-C', dir, 'config', 'gc.autoDetach', 'false'], env, 30_000);
    return;
  }
  removeLocks(dir, 0);
}

function removeLocks(dir: string, depth: number): void {
  let names: import('node:fs').Dirent[];
  try {
    names = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const d of names) {
    if (d.isFile() && d.name.endsWith('.lock')) rmSync(join(dir, d.name), { force: true });
    else if (d.isDirectory() && (depth === 0 ? d.name === 'refs' : depth < 8)) removeLocks(join(dir, d.name), depth + 1);
  }
}

/** Fetches `ref` of `url` into the mirror's private ref and returns the commit it names. GLOW_E_SYNC_FETCH. */
export function fetchCommit(mirror: string, url: string, ref: string, env: Readonly<Record<string, string>>, timeoutMs: number): string {
  const shown = redactUrl(url);
  const r = git(['-C', mirror, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', url, `+${ref}:${FETCHED_REF}`], env, timeoutMs);
  if (r.timedOut) throw new GlowError('GLOW_E_SYNC_FETCH', `fetching ${ref} of ${shown} took longer than ${timeoutMs / 1000}s (--timeout); stopped`);
  if (r.status !== 0) throw new GlowError('GLOW_E_SYNC_FETCH', `git could not fetch ${ref} of ${shown}: ${why(r, url)}`);
  const c = git(['-C', mirror, 'rev-parse', '--verify', '--quiet', `${FETCHED_REF}^{commit}`], env, 30_000);
  const commit = c.stdout.trim();
  if (c.status !== 0 || !/^[0-9a-f]{40,64}$/.test(commit)) throw new GlowError('GLOW_E_SYNC_FETCH', `${ref} of ${shown} names no commit (${why(c)})`);
  return commit;
}

/**
 * Refuses a commit whose signature does not verify: `git verify-commit`, and the signature's kind must be the one
 * asked for. With ssh, the signer must be in the allowed signers file (git's `%G?` is `G`: a good signature by a
 * principal of that file). With gpg, a good signature by any key of the keyring (GNUPGHOME) is accepted: give
 * glow sync a keyring that holds the signers' keys only. Returns who signed, for the message.
 */
export function verifyCommit(mirror: string, commit: string, mode: Exclude<VerifyMode, 'none'>, allowedSigners: string | undefined, env: Readonly<Record<string, string>>): string {
  const conf: string[] = [];
  if (mode === 'ssh') {
    if (allowedSigners === undefined || !existsSync(allowedSigners)) {
      throw new GlowError('GLOW_E_SYNC_VERIFY', `the allowed signers file ${allowedSigners ?? '(none)'} does not exist; no commit can be verified`);
    }
    conf.push('-c', `gpg.ssh.allowedSignersFile=${allowedSigners}`);
  }
  const raw = git(['-C', mirror, 'cat-file', 'commit', commit], env, 30_000);
  const sig = /^gpgsig(?:-sha256)? -----BEGIN ([A-Z ]+)-----/m.exec(raw.stdout.split('\n\n', 1)[0] ?? '');
  if (!sig) throw new GlowError('GLOW_E_SYNC_VERIFY', `commit ${commit} is not signed; with --verify ${mode} only signed commits are published`);
  const kind = sig[1] === 'SSH SIGNATURE' ? 'ssh' : sig[1] === 'PGP SIGNATURE' ? 'gpg' : 'other';
  if (kind !== mode) throw new GlowError('GLOW_E_SYNC_VERIFY', `commit ${commit} has ${kind === 'other' ? `a signature of another kind (${sig[1]})` : `a ${kind} signature`}, and --verify ${mode} accepts ${mode} signatures only`);
  const v = git([...conf, '-C', mirror, 'verify-commit', commit], env, 60_000);
  const show = git([...conf, '-C', mirror, 'show', '-s', '--format=%G?%x09%GS%x09%GK', commit], env, 60_000);
  const [letter, signer, key] = show.stdout.trim().split('\t');
  const accepted = mode === 'ssh' ? letter === 'G' : letter === 'G' || letter === 'U';
  if (v.status !== 0 || !accepted) {
    const detail = why(v) || `signature status ${letter}`;
    const reason = mode === 'ssh' && (letter === 'U' || /No principal matched|allowed signers/i.test(detail)) ? 'its key is not in the allowed signers file' : detail;
    throw new GlowError('GLOW_E_SYNC_VERIFY', `commit ${commit} does not verify (${reason}); it is not published`);
  }
  return `${signer || '?'}${key ? `, key ${key}` : ''}`;
}

/** Writes the tree of `commit` into the empty directory `dest` (git archive | tar -x). GLOW_E_SYNC_WRITE. */
export function exportTree(mirror: string, commit: string, dest: string, env: Readonly<Record<string, string>>, timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const e = environment(env);
    const archive = spawn('git', ['-c', 'tar.umask=022', '-C', mirror, 'archive', '--format=tar', commit], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '--no-same-owner', '-f', '-', '-C', dest], { env: e, stdio: ['pipe', 'ignore', 'pipe'] });
    archive.stdout.pipe(tar.stdin);
    tar.stdin.on('error', () => {}); // tar died: its exit status says why
    let errors = '';
    archive.stderr.on('data', (d: Buffer) => (errors += d.toString()));
    tar.stderr.on('data', (d: Buffer) => (errors += d.toString()));
    const timer = setTimeout(() => {
      archive.kill('SIGKILL');
      tar.kill('SIGKILL');
    }, timeoutMs);
    let pending = 2;
    const codes: Record<string, number | null> = {};
    const done = (name: string) => (code: number | null) => {
      codes[name] = code;
      if (--pending > 0) return;
      clearTimeout(timer);
      if (codes.archive === 0 && codes.tar === 0) resolvePromise();
      else reject(new GlowError('GLOW_E_SYNC_WRITE', `git archive ${commit} | tar -x into ${dest} failed (git ${codes.archive}, tar ${codes.tar}): ${errors.trim().split('\n').slice(-3).join('; ') || 'killed (--timeout)'}`));
    };
    archive.on('error', (err) => reject(new GlowError('GLOW_E_SYNC_WRITE', `git archive could not be run: ${err.message}`, { cause: err })));
    tar.on('error', (err) => reject(new GlowError('GLOW_E_SYNC_WRITE', `tar could not be run: ${err.message}`, { cause: err })));
    archive.on('close', done('archive'));
    tar.on('close', done('tar'));
  });
}
