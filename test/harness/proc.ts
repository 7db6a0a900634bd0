/**
 * Process helpers of the harness: run a command with a bounded time, look at /proc, find the shell scripts.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HarnessError } from './errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** written to the command's stdin, which is then closed (stdin is empty otherwise) */
  input?: string;
  /** the command and its whole process group are killed after this long (default 30 s) */
  timeoutMs?: number;
  /** the complete environment of the command */
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 30_000;

/** A clean environment for commands run inside a node: nothing of the test process leaks in. */
export function nodeEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    HOME: '/root',
    TERM: 'dumb',
    SYSTEMD_PAGER: '',
    SYSTEMD_COLORS: '0',
    ...extra,
  };
}

/**
 * Runs `cmd args` in a process group of its own and collects its output. Resolves with the exit code (128 + n
 * for a signal n) however the command ends; rejects only when it could not start or ran past its timeout, in
 * which case the whole group has been killed with SIGKILL.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: opts.env ?? nodeEnv(),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {
      /* the command may exit without reading its input */
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new HarnessError('HARNESS_PREREQUISITE', `cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(
          new HarnessError(
            'HARNESS_EXEC_TIMEOUT',
            `${[cmd, ...args].join(' ')} ran longer than ${timeoutMs} ms and was killed\n` +
              `stdout: ${tail(stdout, 2000)}\nstderr: ${tail(stderr, 2000)}`,
          ),
        );
        return;
      }
      const signalNumber = signal === null ? 0 : signalNumberOf(signal);
      resolve({ code: code ?? 128 + signalNumber, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run(), but a non-zero exit is an error that shows the command's output. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new HarnessError(
      'HARNESS_COMMAND_FAILED',
      `${[cmd, ...args].join(' ')} exited with ${r.code}\nstdout: ${tail(r.stdout, 2000)}\nstderr: ${tail(r.stderr, 2000)}`,
    );
  }
  return r;
}

function signalNumberOf(signal: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };
  return table[signal] ?? 0;
}

/** SIGKILL to a process group (a process spawned with `detached: true` leads its own group). */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** SIGKILL to one process; a process that is already gone is fine. */
export function killProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone meanwhile */
  }
}

/** The last `max` characters of a text, for error messages. */
export function tail(text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ProcStat {
  state: string;
  startTime: string;
}

/** State and start time (field 22, clock ticks since boot) of a process, or undefined when it does not exist. */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so cut at the last ')'
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19];
  if (state === undefined || startTime === undefined) return undefined;
  return { state, startTime };
}

/** True while the process exists and is not a zombie (an exited `unshare` stays a zombie for a moment). */
export function isAlive(pid: number, startTime?: string): boolean {
  const s = procStat(pid);
  if (s === undefined || s.state === 'Z' || s.state === 'X') return false;
  return startTime === undefined || s.startTime === startTime;
}

/** Waits until the process is dead (gone or a zombie); throws after `timeoutMs`. */
export async function waitDead(pid: number, timeoutMs: number, startTime?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid, startTime)) {
    if (Date.now() > deadline) {
      throw new HarnessError('HARNESS_WAIT_TIMEOUT', `process ${pid} is still alive after ${timeoutMs} ms`);
    }
    await sleep(20);
  }
}

/**
 * The path of one of the harness's shell scripts. The compiled module lives in dist/test/harness/ while the
 * scripts stay in test/harness/: look beside the module first, then in the source tree.
 */
export function harnessScript(name: string): string {
  const candidates = [new URL(`./${name}`, import.meta.url), new URL(`../../../test/harness/${name}`, import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  throw new HarnessError(
    'HARNESS_PREREQUISITE',
    `cannot find ${name} (looked at ${candidates.map((c) => fileURLToPath(c)).join(', ')})`,
  );
}
