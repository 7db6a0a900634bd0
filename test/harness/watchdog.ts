/**
 * The run: one per test process. It owns a run directory (`$GLOW_HARNESS_DIR`, default `<tmpdir>/glow-harness`,
 * then `/<run id>`), a registry of what the process started, and a detached watchdog (watchdog.sh) that cleans
 * all of it up when the process dies, even by SIGKILL. See watchdog.sh for how it notices.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { harnessScript, isAlive, procStat, run as runCommand } from './proc.js';

export interface Run {
  id: string;
  dir: string;
}

export interface RegistryEntry {
  pid?: { pid: number; startTime: string };
  cgroups?: readonly string[];
  state?: string;
}

let current: Promise<Run> | undefined;
/** processes to SIGKILL synchronously if the process exits without stopping them (pid → start time) */
const liveProcesses = new Map<number, string>();
let exitHookInstalled = false;

export function harnessBaseDir(): string {
  return process.env['GLOW_HARNESS_DIR'] ?? join(tmpdir(), 'glow-harness');
}

/** The run of this process, created (with its watchdog) on first use. */
export function currentRun(): Promise<Run> {
  current ??= startRun();
  return current;
}

async function startRun(): Promise<Run> {
  const base = harnessBaseDir();
  await mkdir(base, { recursive: true });
  await reapStaleRuns(base);
  const id = `r${process.pid}-${Date.now().toString(36)}`;
  const dir = join(base, id);
  await mkdir(join(dir, 'reg'), { recursive: true });
  const me = procStat(process.pid);
  if (me === undefined) throw new Error('cannot read /proc/self/stat');
  await writeFile(join(dir, '.glow-harness-run'), '');
  await writeFile(join(dir, 'owner'), `${process.pid} ${me.startTime}\n`);

  const log = openSync(join(dir, 'watchdog.log'), 'a');
  try {
    const child = spawn('bash', [harnessScript('watchdog.sh'), 'watch', dir, String(process.pid), me.startTime], {
      detached: true,
      stdio: ['pipe', log, log],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    child.on('error', () => undefined);
    // Never write to the pipe and never let it hold the event loop: it exists only to be closed by our death.
    child.stdin?.on('error', () => undefined);
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    child.unref();
  } finally {
    closeSync(log);
  }
  installExitHook();
  return { id, dir };
}

/** Runs whose owner died and whose watchdog died too (a machine-wide kill): reap them now. */
async function reapStaleRuns(base: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(base, name);
    const owner = await readFile(join(dir, 'owner'), 'utf8').catch(() => undefined);
    if (owner === undefined) continue;
    const [pid, start] = owner.trim().split(' ');
    if (pid !== undefined && isAlive(Number(pid), start)) continue;
    const wd = await readFile(join(dir, 'watchdog.pid'), 'utf8').catch(() => '');
    if (wd.trim() !== '' && isAlive(Number(wd.trim()))) continue;
    await runCommand('bash', [harnessScript('watchdog.sh'), 'reap', dir], { timeoutMs: 30_000 }).catch(() => undefined);
  }
}

/** Writes (or replaces) the registry entry of a node or hub. */
export async function register(runInfo: Run, key: string, entry: RegistryEntry): Promise<void> {
  const lines: string[] = [];
  if (entry.pid !== undefined) lines.push(`pid ${entry.pid.pid} ${entry.pid.startTime}`);
  for (const c of entry.cgroups ?? []) lines.push(`cgroup ${c}`);
  if (entry.state !== undefined) lines.push(`state ${entry.state}`);
  const file = join(runInfo.dir, 'reg', key);
  await writeFile(`${file}.tmp`, `${lines.join('\n')}\n`);
  await rename(`${file}.tmp`, file);
  if (entry.pid !== undefined) liveProcesses.set(entry.pid.pid, entry.pid.startTime);
}

export async function unregister(runInfo: Run, key: string, pid?: number): Promise<void> {
  await rm(join(runInfo.dir, 'reg', key), { force: true });
  if (pid !== undefined) liveProcesses.delete(pid);
}

/** Records the run's own cgroup directories for the watchdog (once per hierarchy). */
export async function recordRunCgroups(runInfo: Run, dirs: readonly string[]): Promise<void> {
  const file = join(runInfo.dir, 'run-cgroups');
  const known = new Set((await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''));
  const fresh = dirs.filter((d) => !known.has(d));
  if (fresh.length > 0) await appendFile(file, fresh.map((d) => `${d}\n`).join(''));
}

/**
 * On a normal exit with nodes still running (a test that forgot stop()), kill them at once; the watchdog,
 * which sees the exit too, removes their cgroups and state.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [pid, start] of liveProcesses) {
      if (isAlive(pid, start)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  });
}

/** Marks a state directory as the harness's own, so that cleanup never removes anything else. */
export function markStateDir(dir: string): void {
  writeFileSync(join(dir, '.glow-harness-state'), 'created by Glow test harness; removed when its node stops\n');
}
