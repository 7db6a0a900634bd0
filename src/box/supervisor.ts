/**
 * The dev box's supervisor: what systemd does for a node's instances, for child processes of `glow up`.
 *
 * - Each instance runs in a process group (and session) of its own: the terminal's Ctrl-C reaches `glow up`
 *   alone, which then stops the instances in order, and a stop reaches everything an instance started.
 * - Stop: SIGTERM to the group, then SIGKILL to the group after the app's `stop_timeout` (what is left of a
 *   podman container is removed). A stop is done when the whole group is gone, not only its leader.
 * - A crash (any exit that was not asked for) kills what is left of the group and restarts the instance after a
 *   wait that doubles from 1 s up to 30 s, and falls back to 1 s once an instance ran 10 s.
 * - Every line of output goes to the terminal with the instance's prefix (and to onLine: the box's ring).
 * - The groups are recorded in a small file, so that a `glow up` killed with SIGKILL (which cannot stop its
 *   children) has its leftovers stopped by the next one (killLeftovers), checked by their start time in /proc
 *   so that a reused PID is never taken for one.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Launch } from '../render/launch.js';
import { LineSplitter } from './terminal.js';
import type { Terminal } from './terminal.js';

export interface InstanceSpec {
  readonly key: string;
  readonly app: string;
  readonly instance: number;
  readonly version: string;
  readonly definition: string;
  readonly launch: Launch;
  readonly stopTimeoutMs: number;
}

export type ChildState = 'running' | 'backoff' | 'stopping';

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  /** An instance that ran this long before it crashed starts again from initialMs. */
  readonly resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 10_000 };

/** The wait before the next start after `crashes` crashes in a row (1, 2, 4, … seconds, at most maxMs). */
export function backoffDelay(crashes: number, b: Backoff = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, Math.min(30, crashes - 1)));
}

export interface ChildStatus {
  readonly key: string;
  readonly app: string;
  readonly instance: number;
  readonly version: string;
  readonly state: ChildState;
  readonly pid: number;
  readonly since: Date;
  readonly restarts: number;
  readonly nextStartAt?: Date;
}

interface Child {
  spec: InstanceSpec;
  state: ChildState;
  proc: ChildProcess | undefined;
  pid: number;
  startedAt: number;
  since: Date;
  /** Crashes in a row (reset once it ran resetAfterMs). */
  crashes: number;
  restarts: number;
  timer: NodeJS.Timeout | undefined;
  nextStartAt: Date | undefined;
  exited: Promise<void>;
}

export interface SupervisorOptions {
  readonly terminal: Terminal;
  readonly backoff?: Backoff;
  /** Where the running process groups are recorded (see killLeftovers). */
  readonly pidFile?: string;
  /** Called on every change of an instance's state (for status and metrics). */
  readonly onChange?: (key: string) => void;
  /** Called when an instance crashed and is to be started again. */
  readonly onCrash?: (key: string) => void;
  /** Every line of an instance's output, after the terminal has it (the box's ring for `glow logs`). */
  readonly onLine?: (spec: InstanceSpec, stream: 'stdout' | 'stderr', line: string, pid: number) => void;
}

export class Supervisor {
  readonly #opts: SupervisorOptions;
  readonly #term: Terminal;
  readonly #children = new Map<string, Child>();
  /** Every group this supervisor started that may still exist (killAll's list). */
  readonly #groups = new Set<number>();
  #closed = false;

  constructor(opts: SupervisorOptions) {
    this.#opts = opts;
    this.#term = opts.terminal;
  }

  /** The instances held (running, restarting or stopping), with the definition each was started from. */
  definitions(): Map<string, string> {
    return new Map([...this.#children].filter(([, c]) => c.state !== 'stopping').map(([k, c]) => [k, c.spec.definition]));
  }

  has(key: string): boolean {
    return this.#children.has(key);
  }

  status(): ChildStatus[] {
    return [...this.#children.values()].map((c) => ({
      key: c.spec.key,
      app: c.spec.app,
      instance: c.spec.instance,
      version: c.spec.version,
      state: c.state,
      pid: c.state === 'backoff' ? 0 : c.pid,
      since: c.since,
      restarts: c.restarts,
      ...(c.nextStartAt ? { nextStartAt: c.nextStartAt } : {}),
    }));
  }

  start(spec: InstanceSpec): void {
    if (this.#closed || this.#children.has(spec.key)) return;
    const child: Child = { spec, state: 'running', proc: undefined, pid: 0, startedAt: 0, since: new Date(), crashes: 0, restarts: 0, timer: undefined, nextStartAt: undefined, exited: Promise.resolve() };
    this.#children.set(spec.key, child);
    this.#spawn(child);
  }

  #spawn(child: Child): void {
    const { spec } = child;
    const [program, ...args] = spec.launch.argv;
    child.nextStartAt = undefined;
    child.timer = undefined;
    child.pid = 0; // a spawn that fails must not leave the last process's pid (a group that may be another's now)
    let proc: ChildProcess;
    try {
      proc = spawn(program!, args, { cwd: spec.launch.cwd, env: { ...spec.launch.env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      child.startedAt = 0; // it never ran: no "after" in the message, and the last run's time is not this one's
      this.#crashed(child, `could not be started: ${(e as Error).message}`);
      return;
    }
    child.proc = proc;
    child.state = 'running';
    child.startedAt = Date.now();
    child.since = new Date();
    let resolveExit!: () => void;
    child.exited = new Promise((r) => (resolveExit = r));
    const lines = (stream: 'stdout' | 'stderr') =>
      new LineSplitter((l) => {
        this.#term.line(spec.key, spec.app, l);
        this.#opts.onLine?.(spec, stream, l, proc.pid ?? 0);
      });
    const out = lines('stdout');
    const err = lines('stderr');
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(d)).on('end', () => out.end());
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => err.push(d)).on('end', () => err.end());
    let done = false;
    const finish = (why: string) => {
      if (done) return;
      done = true;
      resolveExit();
      if (child.proc !== proc) return;
      child.proc = undefined;
      if (child.state === 'stopping' || this.#children.get(spec.key) !== child) return; // stop() sees it through
      const pid = child.pid;
      if (pid) {
        // What a crashed instance left in its group goes with it, as with systemd's control-group kill mode.
        killGroup(pid, 'SIGKILL');
        void waitGroupGone(pid, 2000).then(() => {
          this.#groups.delete(pid);
          this.#record();
        });
      }
      this.#crashed(child, why);
    };
    proc.once('error', (e: NodeJS.ErrnoException) => {
      const hint = e.code === 'ENOENT' ? ` (no such program: ${program})` : e.code === 'EACCES' ? ` (${program} is not executable)` : '';
      finish(`could not be started: ${e.code ?? e.message}${hint}`);
    });
    proc.once('exit', (code, signal) => finish(signal ? `was killed by ${signal}` : `exited with status ${code}`));
    if (proc.pid !== undefined) {
      child.pid = proc.pid;
      this.#groups.add(proc.pid);
      this.#record();
    }
    this.#opts.onChange?.(spec.key);
  }

  #crashed(child: Child, why: string): void {
    const ran = child.startedAt ? Date.now() - child.startedAt : undefined;
    const backoff = this.#opts.backoff ?? DEFAULT_BACKOFF;
    child.crashes = ran !== undefined && ran >= backoff.resetAfterMs ? 1 : child.crashes + 1;
    const delay = backoffDelay(child.crashes, backoff);
    child.state = 'backoff';
    child.since = new Date();
    child.nextStartAt = new Date(Date.now() + delay);
    this.#term.error(`${child.spec.key} ${why}${ran !== undefined ? ` after ${seconds(ran)}` : ''}; starting it again in ${seconds(delay)}`);
    child.timer = setTimeout(() => {
      if (this.#children.get(child.spec.key) !== child || child.state !== 'backoff' || this.#closed) return;
      child.restarts += 1;
      this.#opts.onCrash?.(child.spec.key);
      this.#spawn(child);
    }, delay);
    this.#opts.onChange?.(child.spec.key);
  }

  /** Stops an instance: SIGTERM to its group, SIGKILL after its stop timeout; resolves when the group is gone. */
  async stop(key: string): Promise<void> {
    const child = this.#children.get(key);
    if (!child) return;
    if (child.state === 'stopping') return child.exited;
    clearTimeout(child.timer);
    child.state = 'stopping';
    child.since = new Date();
    this.#opts.onChange?.(key);
    const pid = child.proc ? child.pid : 0;
    if (pid) {
      killGroup(pid, 'SIGTERM');
      if (!(await waitGroupGone(pid, child.spec.stopTimeoutMs))) {
        this.#term.error(`${key} did not stop within ${seconds(child.spec.stopTimeoutMs)} of SIGTERM: SIGKILL`);
        killGroup(pid, 'SIGKILL');
        if (child.spec.launch.cleanup) await runQuietly(child.spec.launch.cleanup, 15_000);
        await waitGroupGone(pid, 5000);
      }
      await child.exited;
      this.#groups.delete(pid);
    }
    if (this.#children.get(key) === child) this.#children.delete(key);
    this.#record();
    this.#opts.onChange?.(key);
  }

  /** Stops the instance and starts it from `spec` (a new definition, or the same after a config change). */
  async restart(spec: InstanceSpec): Promise<void> {
    await this.stop(spec.key);
    this.start(spec);
  }

  /** Sends `signal` to the instance's main process; false when it does not run now. */
  signal(key: string, signal: NodeJS.Signals): boolean {
    const c = this.#children.get(key);
    if (!c?.proc || c.state !== 'running' || !c.pid) return false;
    try {
      process.kill(c.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops every instance at once (each with its own stop timeout); no instance starts after this. */
  async stopAll(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#children.keys()].map((k) => this.stop(k)));
  }

  /** SIGKILL to every group now (a second Ctrl-C). */
  killAll(): void {
    this.#closed = true;
    for (const c of this.#children.values()) clearTimeout(c.timer);
    for (const pid of this.#groups) killGroup(pid, 'SIGKILL');
    for (const c of this.#children.values()) if (c.spec.launch.cleanup) spawnDetached(c.spec.launch.cleanup);
    this.#groups.clear();
    this.#record();
  }

  /** Writes the live groups with their start times (atomically; removed when there is none). */
  #record(): void {
    const file = this.#opts.pidFile;
    if (!file) return;
    try {
      const groups = [...this.#groups].map((pid) => ({ pid, start: startTimeOf(pid), key: [...this.#children.values()].find((c) => c.pid === pid)?.spec.key ?? '' })).filter((g) => g.start !== undefined);
      if (groups.length === 0) {
        rmSync(file, { force: true });
        return;
      }
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, `${JSON.stringify(groups)}\n`);
      renameSync(`${file}.tmp`, file);
    } catch {
      // a record that cannot be written only loses the clean-up after a SIGKILL
    }
  }
}

/**
 * Stops the process groups that a `glow up` killed with SIGKILL left behind (its pid file), each only if its
 * leader is still the process that was recorded (same start time). Returns the keys stopped.
 */
export function killLeftovers(pidFile: string): string[] {
  let groups: { pid: number; start: string; key: string }[];
  try {
    groups = JSON.parse(readFileSync(pidFile, 'utf8')) as typeof groups;
  } catch {
    return [];
  }
  const killed: string[] = [];
  for (const g of groups) {
    if (typeof g.pid !== 'number' || g.pid <= 1 || startTimeOf(g.pid) !== g.start) continue;
    killGroup(g.pid, 'SIGKILL');
    killed.push(`${g.key || 'an instance'} (pid ${g.pid})`);
  }
  rmSync(pidFile, { force: true });
  return killed;
}

/** The start time of a process (field 22 of /proc/PID/stat, in clock ticks since boot); undefined if gone. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Whether any process of the group exists (a zombie leader not yet reaped counts). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves true once no process of the group is left, false after timeoutMs. */
export async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!groupAlive(pgid)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

function runQuietly(argv: readonly string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', () => resolve());
    p.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function spawnDetached(argv: readonly string[]): void {
  try {
    spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', detached: true }).on('error', () => {}).unref();
  } catch {
    // nothing more to do on the way out
  }
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms / 100) / 10}s` : `${Math.round(ms / 1000)}s`;
}
