/**
 * Whole Debian machines for the package tests: a root of test/packaging/roots.sh (cached), booted by
 * `systemd-nspawn -b` with the distribution's own systemd as PID 1. Unlike test/harness (the host's own /usr
 * with private /etc and /var), a package can be installed, upgraded, removed and purged here, and the role applied.
 *
 *   const m = await bootMachine({ name: 'pkg', root: await root('trixie'), binds: [[debDir, '/debs']] });
 *   await m.execOk(['dpkg', '-i', '/debs/glow_0.1.0_amd64.deb']);
 *   await m.stop();
 *
 * How it is booted, and what the host keeps of it (nothing):
 * - `--volatile=overlay`: a tmpfs over the cached root, so every boot starts from the pristine root and leaves it
 *   as it was; `--private-network` (only lo: nothing binds the host's ports); `--register=no --keep-unit` (this
 *   host has no systemd-machined; without them nspawn fails on the system bus); `--console=passive`.
 * - cgroup v2 inside (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1): the guest mounts no v1 hierarchy of its own (with v1
 *   it creates kernel-wide net_cls, perf_event and hugetlb hierarchies). nspawn is started in a cgroup of its own
 *   below this process's in the name=systemd and unified hierarchies, so its payload/ and supervisor/ go there
 *   (not to the roots) and are removed with it.
 * - nspawn runs as PID 1 of a PID namespace of its own, under `setpriv --pdeathsig KILL unshare --kill-child`: if
 *   this process dies, the kernel kills nspawn and the machine; the next boot removes what such a run left.
 * - stop(): SIGKILL to the machine's PID 1 (the kernel ends the rest of its PID namespace), then the cgroups
 *   deepest first and nspawn's empty directories under /run/systemd/nspawn (the host's /run is not a tmpfs).
 * - Commands run inside with `nsenter` into the machine's namespaces, with a clean environment; files are written
 *   through /proc/<pid>/root.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ROOTS_SH = join(ROOT, 'test/packaging/roots.sh');

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A cached root (or the nodejs .deb for Debian 12), built by roots.sh when missing. */
export function root(what: 'trixie' | 'bookworm' | 'nodejs'): string {
  const out = execFileSync('sh', [ROOTS_SH, what], { encoding: 'utf8', timeout: 1_900_000, stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop()!;
}

export interface MachineOptions {
  /** The machine's name and host name: [a-z][a-z0-9-]*, unique among this process's machines. */
  name: string;
  root: string;
  /** Host paths bound read-only into the machine: [host, guest]. */
  binds?: [string, string][];
  bootTimeoutMs?: number;
}

const live = new Set<Machine>();
process.on('exit', () => {
  for (const m of live) m.kill();
});

/** This process's cgroup in the name=systemd and unified hierarchies: [mount point, own path]. */
function ownCgroups(): [string, string][] {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  const out: [string, string][] = [];
  // Only the hierarchies nspawn writes to (v1 cpuset, for one, would need cpus and mems before a process can join).
  for (const dir of ['systemd', 'unified']) {
    const mount = join('/sys/fs/cgroup', dir);
    if (!existsSync(join(mount, 'cgroup.procs'))) continue;
    const line = lines.find((l) => {
      const [, ctl] = l.split(':');
      if (dir === 'unified') return ctl === '';
      return (ctl ?? '').split(',').some((c) => c === dir || c === `name=${dir}`);
    });
    if (line) out.push([mount, line.split(':').slice(2).join(':')]);
  }
  return out;
}

export class Machine {
  readonly name: string;
  readonly nspawn: ChildProcess;
  readonly cgroups: string[];
  leader = 0;
  log = '';
  #stopped: Promise<void> | undefined;

  readonly root: string;

  constructor(name: string, root: string, nspawn: ChildProcess, cgroups: string[]) {
    this.name = name;
    this.root = root;
    this.nspawn = nspawn;
    this.cgroups = cgroups;
    nspawn.stdout?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
    nspawn.stderr?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
  }

  /** The machine's file system, as the host sees it. */
  path(p: string): string {
    return join(`/proc/${this.leader}/root`, p);
  }

  writeFile(p: string, content: string | Uint8Array, mode = 0o644): void {
    mkdirSync(dirname(this.path(p)), { recursive: true });
    writeFileSync(this.path(p), content, { mode });
  }

  readFile(p: string): string {
    return readFileSync(this.path(p), 'utf8');
  }

  exists(p: string): boolean {
    return existsSync(this.path(p));
  }

  /** The argv that runs `argv` inside the machine. */
  enter(argv: readonly string[], env: Record<string, string> = {}): string[] {
    const clean = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root', SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0', DEBIAN_FRONTEND: 'noninteractive', ...env };
    return ['nsenter', '-t', String(this.leader), '-m', '-u', '-i', '-n', '-p', '-C', '--', 'env', '-i', '--chdir=/', ...Object.entries(clean).map(([k, v]) => `${k}=${v}`), ...argv];
  }

  exec(argv: readonly string[], opts: { timeoutMs?: number; input?: string; env?: Record<string, string> } = {}): Promise<ExecResult> {
    const [cmd, ...args] = this.enter(argv, opts.env);
    return new Promise((resolve, reject) => {
      const p = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, cwd: '/' });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        try {
          process.kill(-p.pid!, 'SIGKILL');
        } catch {
          // gone
        }
        reject(new Error(`${argv.join(' ')}: timed out after ${opts.timeoutMs ?? 120_000} ms\n${stdout}\n${stderr}`));
      }, opts.timeoutMs ?? 120_000);
      p.on('error', reject);
      p.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      p.stdin.end(opts.input ?? '');
    });
  }

  async execOk(argv: readonly string[], opts: { timeoutMs?: number; input?: string; env?: Record<string, string> } = {}): Promise<ExecResult> {
    const r = await this.exec(argv, opts);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    return r;
  }

  sh(script: string, opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ExecResult> {
    return this.execOk(['sh', '-ec', script], opts);
  }

  /** A long-running command inside the machine; its process group is killed by stop(). */
  spawn(argv: readonly string[]): ChildProcess {
    const [cmd, ...args] = this.enter(argv);
    return spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
  }

  /** Polls `check` until it returns a value (not undefined), bounded. */
  async until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
    const end = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (e) {
        last = e;
      }
      if (Date.now() > end) throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  kill(): void {
    for (const pid of [this.leader, this.nspawn.pid]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      const exited = this.nspawn.exitCode !== null || this.nspawn.signalCode !== null ? Promise.resolve() : new Promise((r) => this.nspawn.once('exit', r));
      if (this.leader) {
        try {
          process.kill(this.leader, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (this.nspawn.exitCode === null && this.nspawn.signalCode === null) {
        this.nspawn.kill('SIGKILL');
        await exited;
      }
      for (let i = 0; i < 50; i++) {
        if (this.cgroups.every((c) => removeTree(c))) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      removeNspawnLeftovers(this.name, this.root);
      for (const d of ['/run/systemd/nspawn/propagate', '/run/systemd/nspawn/locks', '/run/systemd/nspawn']) {
        try {
          rmdirSync(d);
        } catch {
          // not empty (another machine), or gone
        }
      }
      live.delete(this);
    })();
    return this.#stopped;
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** What nspawn leaves in the host's /run when it is killed: its propagation directory and the root's lock file. */
function removeNspawnLeftovers(name: string, root: string): void {
  rmSync(`/run/systemd/nspawn/propagate/${name}`, { recursive: true, force: true });
  try {
    const st = statSync(root);
    rmSync(`/run/systemd/nspawn/locks/inode-${st.dev}:${st.ino}`, { force: true });
  } catch {
    // no root
  }
}

/** Removes a cgroup directory and its children, deepest first; true when it is gone. */
function removeTree(dir: string): boolean {
  if (!existsSync(dir)) return true;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(join(dir, e.name));
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

export async function bootMachine(o: MachineOptions): Promise<Machine> {
  if (!/^[a-z][a-z0-9-]{0,40}$/.test(o.name)) throw new Error(`bad machine name ${o.name}`);
  const group = `glow-test-${o.name}-${process.pid}`;
  const own = ownCgroups();
  // The cgroups of machines whose test process died (SIGKILL) without removing them.
  for (const [mount, path] of own) {
    for (const d of existsSync(join(mount, path)) ? readdirSync(join(mount, path)) : []) {
      const m = /^glow-test-.*-(\d+)$/.exec(d);
      if (m && !existsSync(`/proc/${m[1]}`)) removeTree(join(mount, path, d));
    }
  }
  const cgroups = own.map(([mount, path]) => join(mount, path, group));
  removeNspawnLeftovers(o.name, o.root);
  for (const c of cgroups) mkdirSync(c, { recursive: true });
  const nspawnArgs = [
    '-q', '-b', '-D', o.root, '--register=no', '--keep-unit', '--private-network', '--volatile=overlay', '--console=passive',
    `--machine=${o.name}`, `--hostname=${o.name}`,
    ...(o.binds ?? []).map(([h, g]) => `--bind-ro=${h}:${g}`),
  ];
  // The shell puts itself (and so nspawn, which it becomes) into the machine's own cgroups first.
  const script = 'for f in "$@"; do case $f in --) shift; break ;; esac; echo $$ > "$f/cgroup.procs"; shift; done; exec systemd-nspawn "$@"';
  // nspawn is PID 1 of a PID namespace of its own (unshare), which the kernel empties — the machine's nested one
  // included — when unshare kills it: when this process dies, even by SIGKILL (setpriv --pdeathsig). nspawn alone
  // would leave the machine running (its PID 1 survives nspawn).
  const nspawn = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--pid', '--fork', '--kill-child=SIGKILL', '--', 'sh', '-c', script, 'sh', ...cgroups, '--', ...nspawnArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' },
  });
  const m = new Machine(o.name, o.root, nspawn, cgroups);
  live.add(m);
  try {
    const t0 = Date.now();
    const timeout = o.bootTimeoutMs ?? 60_000;
    // PID 1 of the machine: the systemd below unshare and nspawn.
    m.leader = await m.until('systemd to start', async () => {
      if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited ${nspawn.exitCode}: ${m.log}`);
      let level = [nspawn.pid!];
      for (let depth = 0; depth < 4; depth++) {
        const next = level.flatMap((p) => children(p));
        const found = next.find((c) => comm(c) === 'systemd');
        if (found) return found;
        level = next;
      }
      return undefined;
    }, timeout, 20);
    // systemctl can talk to it once its private socket exists.
    await m.until('systemd\'s private socket', async () => (existsSync(m.path('/run/systemd/private')) ? true : undefined), timeout, 20);
    const state = await m.exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: Math.max(1000, timeout - (Date.now() - t0)) });
    if (state.stdout.trim() !== 'running') {
      const failed = await m.exec(['systemctl', '--failed', '--no-legend']);
      throw new Error(`${o.name} booted ${state.stdout.trim() || state.stderr.trim()}; failed units:\n${failed.stdout}\n${m.log}`);
    }
    return m;
  } catch (e) {
    await m.stop();
    throw e;
  }
}
