/**
 * One `glow sync` at a time per repository: an flock(2) on `sync/lock`, taken with util-linux's flock(1) on a
 * descriptor this process opened and hands to it. The lock belongs to the open file description, so it stays with
 * this process after flock(1) exits and the kernel drops it when this process ends, however it ends (SIGKILL too):
 * no stale lock to clean. An operator's `flock /var/lib/glow/sync/lock …` excludes glow sync the same way.
 *
 * The holder writes its pid into the file, so that a waiting run can say whom it waits for.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { GlowError } from '../base/errors.js';

const CONFLICT = 75;

export interface Lock {
  release(): void;
}

function flock(fd: number, args: string[], timeoutMs: number): number | 'error' {
  const r = spawnSync('flock', ['-x', '-E', String(CONFLICT), ...args, '3'], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    timeout: timeoutMs,
    encoding: 'utf8',
  });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return CONFLICT;
    throw new GlowError('GLOW_E_SYNC_WRITE', `flock(1) could not be run to take the lock (util-linux): ${r.error.message}`, { cause: r.error });
  }
  if (r.status === 0 || r.status === CONFLICT) return r.status;
  throw new GlowError('GLOW_E_SYNC_WRITE', `flock(1) failed on the lock file: ${r.stderr.trim() || `exit status ${r.status}`}`);
}

/** The pid written by the holder, if it can be read. */
export function lockHolder(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock at `path`, waiting at most `waitMs` (0: not at all); `onWait` is told once when it has to wait.
 * GLOW_E_SYNC_BUSY when the wait ends and another run still holds it.
 */
export function acquireLock(path: string, waitMs: number, onWait: (holder: number | undefined) => void): Lock {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let fd: number;
  try {
    fd = openSync(path, 'a+', 0o644);
  } catch (e) {
    throw new GlowError('GLOW_E_SYNC_WRITE', `the lock file ${path} cannot be opened: ${(e as Error).message}`, { cause: e });
  }
  try {
    let got = flock(fd, ['-n'], 30_000) === 0;
    if (!got) {
      const holder = lockHolder(path);
      if (waitMs > 0) {
        onWait(holder);
        got = flock(fd, ['-w', String(waitMs / 1000)], waitMs + 30_000) === 0;
      }
      if (!got) {
        const who = holder !== undefined ? `another glow sync (pid ${holder})` : 'another glow sync';
        throw new GlowError(
          'GLOW_E_SYNC_BUSY',
          `${who} holds ${path}${waitMs > 0 ? ` and still did after waiting ${waitMs / 1000}s` : ' (--wait 0: not waiting)'}; this run changed nothing`,
        );
      }
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return {
    release() {
      try {
        ftruncateSync(fd, 0);
      } catch {
        // the lock goes with the descriptor anyway
      }
      closeSync(fd);
    },
  };
}
