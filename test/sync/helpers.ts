/**
 * Fixtures of the glow sync tests: the real `glow` binary run as a child, real git repositories (commits written
 * with an isolated git configuration), a real `git daemon` on 127.0.0.1, and small readers of the published tree.
 * Every child is bounded in time and every daemon is stopped by its pid.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const GLOW = join(ROOT, 'dist/src/cli/glow.js');

export function workDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `glow-sync-${name}-`));
}

/** git without the host's configuration, with a fixed author. */
export function gitEnv(work: string): NodeJS.ProcessEnv {
  const empty = join(work, 'gitconfig');
  writeFileSync(empty, '');
  return {
    ...process.env,
    HOME: work,
    GIT_CONFIG_GLOBAL: empty,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Glow Test',
    GIT_AUTHOR_EMAIL: 'test@glow.invalid',
    GIT_COMMITTER_NAME: 'Glow Test',
    GIT_COMMITTER_EMAIL: 'test@glow.invalid',
    NO_COLOR: '1',
  };
}

export function git(env: NodeJS.ProcessEnv, cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env, encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A source repository (branch main) with one commit of `files`. */
export function sourceRepo(env: NodeJS.ProcessEnv, dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  git(env, dir, 'init', '--quiet', '--initial-branch=main');
  return commit(env, dir, files, 'first');
}

/** Writes `files` (a null content removes the file), commits everything, returns the commit. */
export function commit(env: NodeJS.ProcessEnv, dir: string, files: Record<string, string | null>, message: string, ...extra: string[]): string {
  writeTree(dir, files);
  git(env, dir, 'add', '--all');
  git(env, dir, ...extra, 'commit', '--quiet', '--allow-empty', '-m', message);
  return git(env, dir, 'rev-parse', 'HEAD');
}

export function writeTree(dir: string, files: Record<string, string | null>): void {
  for (const [p, content] of Object.entries(files)) {
    const abs = join(dir, p);
    if (content === null) rmSync(abs, { force: true });
    else {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, content);
    }
  }
}

export interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `glow ARGS` to its end (bounded). */
export function glow(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [GLOW, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolvePromise({ status, signal, stdout, stderr });
    });
  });
}

/** Starts `glow ARGS` with GLOW_SYNC_TEST_HOLD=stage and resolves once it holds there (its stderr says so). */
export function glowHeld(env: NodeJS.ProcessEnv, args: string[], stage: string): Promise<{ child: ChildProcess; done: Promise<Ran> }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [GLOW, ...args], { env: { ...env, GLOW_SYNC_TEST_HOLD: stage }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`glow sync did not reach ${stage} within 30s: ${stderr}`));
    }, 30_000);
    const done = new Promise<Ran>((r) => child.on('close', (status, signal) => r({ status, signal, stdout, stderr })));
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes(`holding at ${stage}`)) {
        clearTimeout(guard);
        resolvePromise({ child, done });
      }
    });
    child.on('close', () => {
      clearTimeout(guard);
      reject(new Error(`glow sync ended before ${stage}: ${stderr}`));
    });
  });
}

/** A TCP port free on 127.0.0.1 right now (git daemon cannot be given port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolvePromise(port));
    });
  });
}

/** `git daemon` serving `base` on 127.0.0.1:port; resolves when it answers `git ls-remote`. */
export async function gitDaemon(env: NodeJS.ProcessEnv, base: string, probe: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      execFileSync('git', ['ls-remote', `git://127.0.0.1:${port}/${probe}`], { env, stdio: 'ignore', timeout: 5_000 });
      return { port, stop };
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) {
        await stop();
        throw new Error(`git daemon did not answer on 127.0.0.1:${port}: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export const linkOf = (repo: string): string => readlinkSync(repo);
export const readIn = (repo: string, p: string): string => readFileSync(join(repo, p), 'utf8');
