/**
 * The quick start uses what a machine has once: its ports and its config directory /tmp/glow-quickstart. Tests
 * that run it take this lock first, so that two test runs on one machine (two checkouts, two developers) wait for
 * each other instead of failing on a taken port or deleting each other's files. The lock is a directory holding
 * its holder's PID; a holder that died leaves a lock that the next taker removes.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function machineLock(name: string, timeoutMs: number): Promise<() => void> {
  const dir = join(tmpdir(), `${name}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), `${process.pid}\n`);
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      // being created or removed right now
    }
    if (holder && !alive(holder)) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${dir} is held by pid ${holder || '?'} (another test run uses the quick start) for more than ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
