/**
 * A real systemd 252 "node" for integration tests: PID 1 of its own PID, mount, network, UTS and IPC
 * namespaces, booted in about half a second, with its own /etc, /var, /run, /tmp, /dev, journal, D-Bus system bus
 * and cgroups, and torn down without a trace. How and why: README.md beside this file, and boot-node.sh.
 *
 *   const node = await bootNode({ name: 'node-a' });
 *   await node.writeFile('/etc/systemd/system/x.service', unitText);
 *   await node.execOk(['systemctl', 'daemon-reload']);
 *   const bus = dbus.sessionBus({ busAddress: node.busAddress });   // dbus.systemBus() ignores busAddress
 *   …
 *   await node.stop();
 *
 * Needs root and Debian's systemd, dbus, util-linux, mount and iproute2 (podman, runc and busybox-static for
 * podman nodes). Missing prerequisites are errors (code HARNESS_PREREQUISITE), never skips.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createNodeCgroups, removeCgroupTree, removeIfEmpty } from './cgroups.js';
import { HarnessError } from './errors.js';
import { stopAllHubs, type Hub, type HubPort } from './hub.js';
import {
  DEFAULT_EXEC_TIMEOUT_MS,
  harnessScript,
  isAlive,
  killGroup,
  killProcess,
  nodeEnv,
  procStat,
  run,
  sleep,
  tail,
  waitDead,
  type RunResult,
} from './proc.js';
import { currentRun, markStateDir, recordRunCgroups, register, unregister } from './watchdog.js';

export { createHub, stopAllHubs, type Hub, type HubPort } from './hub.js';
export { HarnessError, type HarnessErrorCode } from './errors.js';
export { importBusyboxImage, podmanUnit, type PodmanUnitOptions } from './podman.js';

export interface NodeOptions {
  /** DNS label, also the node's host name: [a-z][a-z0-9-]{0,30}, unique among this process's live nodes */
  name: string;
  /** where the node's overlay upper layers, podman storage and boot.log live (default: in the run directory);
   *  must not exist or be empty, and must not be under /etc, /var or /root */
  stateDir?: string;
  /** host paths (files or directories, e.g. under /tmp) bound read-write at the same path inside the node */
  binds?: string[];
  /** connect the node's eth0 to this hub */
  hub?: Hub;
  /** the node's eth0 address in CIDR, e.g. 10.77.0.11/24 (default: the hub's next free address) */
  address?: string;
  /** configure podman: containers.conf (runc, systemd cgroup manager, ulimits) and a real /var/lib/containers */
  podman?: boolean;
  /** bound on the whole boot (default 30 s) */
  bootTimeoutMs?: number;
  /** accept a "degraded" boot (failed units are in `failedUnits`); by default it is an error */
  allowDegraded?: boolean;
  /** the host's root file system is read-only inside the node (default true); /etc, /var, /root are overlays */
  readOnlyHost?: boolean;
  /** keep the state directory after stop() (for debugging; the cgroups and processes still go) */
  keepState?: boolean;
  /** unit files (or drop-ins, "x.service.d/y.conf") installed in the node's /etc/systemd/system before boot */
  units?: Record<string, string>;
  /** units the boot target wants: started during boot, and a failure makes the boot "degraded" */
  wants?: string[];
}

export interface ExecOptions {
  /** written to stdin, which is then closed */
  input?: string;
  /** default 30 s; past it the command is killed and the call rejects with HARNESS_EXEC_TIMEOUT */
  timeoutMs?: number;
  /** added to a clean environment (PATH, LANG=C.UTF-8, HOME=/root, SYSTEMD_PAGER=, SYSTEMD_COLORS=0) */
  env?: Record<string, string>;
  /** working directory inside the node (default /) */
  cwd?: string;
}

export type ExecResult = RunResult;

/** One entry of `journalctl -o json`: strings, or arrays of bytes for values that are not UTF-8. */
export type JournalEntry = Record<string, string | number[] | undefined>;

/**
 * An entry's MESSAGE as text (decoding a byte array). Note that conmon's journald log driver keeps the line's
 * trailing newline in MESSAGE ("hello\n") where systemd's stdout capture does not ("hello").
 */
export function journalMessage(entry: JournalEntry): string {
  const m = entry['MESSAGE'];
  if (m === undefined) return '';
  return typeof m === 'string' ? m : Buffer.from(m).toString('utf8');
}

export interface SystemdNode {
  name: string;
  /** host PID of the node's systemd (PID 1 inside) */
  pid: number;
  /** the node's file system seen from the host: /proc/<pid>/root */
  root: string;
  /** the node's D-Bus system bus, for dbus.sessionBus({ busAddress }) */
  busAddress: string;
  /** eth0's address on the hub (no prefix length), when the node is on a hub */
  address: string | undefined;
  /** the node's port on its hub (for hub.setLinkUp), when on a hub */
  hubPort: HubPort | undefined;
  stateDir: string;
  /** the node's cgroup directory in every hierarchy (host paths) */
  cgroups: readonly string[];
  /** inode of the node's PID namespace (`readlink /proc/<pid>/ns/pid`) */
  pidNamespace: string;
  podman: boolean;
  /** milliseconds from spawn to `systemctl is-system-running --wait` answering */
  bootMs: number;
  bootState: 'running' | 'degraded';
  /** failed units at the end of boot (empty unless allowDegraded) */
  failedUnits: readonly string[];
  /** runs argv inside the node (nsenter -t pid -m -p -n -u -i); resolves with any exit code */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** like exec(), but a non-zero exit code rejects (HARNESS_COMMAND_FAILED) with the output */
  execOk(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** a long-running process inside the node (e.g. glowd); killed on stop() if still running */
  spawn(argv: readonly string[], opts?: { env?: Record<string, string>; cwd?: string }): ChildProcess;
  /** journalctl --no-pager -q <args> inside the node; its stdout */
  journal(args: readonly string[]): Promise<string>;
  /** polls journal(args) until its output matches; rejects with HARNESS_WAIT_TIMEOUT (default 10 s) */
  waitForJournal(args: readonly string[], match: string | RegExp, timeoutMs?: number): Promise<string>;
  /** journal(['-o', 'json', ...args]) parsed: one object per entry */
  journalEntries(args: readonly string[]): Promise<JournalEntry[]>;
  /** polls journalEntries(args) until one satisfies `predicate`, and returns it (default 10 s) */
  waitForJournalEntry(
    args: readonly string[],
    predicate: (entry: JournalEntry) => boolean,
    timeoutMs?: number,
  ): Promise<JournalEntry>;
  /** writes a file inside the node (path absolute inside the node), creating directories, atomically */
  writeFile(path: string, content: string | Uint8Array, mode?: number): Promise<void>;
  /** SIGKILL everything, remove the cgroups depth-first and the state directory; idempotent */
  stop(): Promise<void>;
}

const NODE_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const UNIT_PATH = /^[A-Za-z0-9@._:\\-]+(\/[A-Za-z0-9@._:\\-]+)?$/;
const DEFAULT_BOOT_TIMEOUT_MS = 30_000;

const liveNodes = new Map<string, SystemdNode | 'booting'>();
const runCgroupDirs = new Set<string>();

/** Stops every node this process booted. */
export async function stopAllNodes(): Promise<void> {
  const nodes = [...liveNodes.values()].filter((n): n is SystemdNode => n !== 'booting');
  await Promise.all(nodes.map((n) => n.stop()));
}

/** Stops every node, then every hub, this process started (for an `after()` hook). */
export async function stopAll(): Promise<void> {
  await stopAllNodes();
  await stopAllHubs();
}

/** The Debian package that provides each tool the harness needs. */
const PREREQUISITES: ReadonlyArray<[string, string]> = [
  ['/usr/bin/unshare', 'util-linux'],
  ['/usr/bin/nsenter', 'util-linux'],
  ['/usr/bin/setpriv', 'util-linux'],
  ['/usr/bin/mountpoint', 'util-linux'],
  ['/usr/bin/mount', 'mount'],
  ['/lib/systemd/systemd', 'systemd'],
  ['/usr/bin/systemctl', 'systemd'],
  ['/usr/bin/journalctl', 'systemd'],
  ['/usr/bin/dbus-daemon', 'dbus'],
];

function checkPrerequisites(opts: NodeOptions): void {
  if (process.getuid?.() !== 0) {
    throw new HarnessError('HARNESS_PREREQUISITE', 'the systemd test harness must run as root (it creates namespaces, mounts and cgroups)');
  }
  const needed = [...PREREQUISITES];
  if (opts.hub !== undefined) needed.push(['/usr/sbin/ip', 'iproute2']);
  if (opts.podman === true) needed.push(['/usr/bin/podman', 'podman'], ['/usr/sbin/runc', 'runc']);
  const missing = needed.filter(([path]) => !executable(path) && !executable(path.replace('/usr/sbin/', '/usr/bin/')));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
    throw new HarnessError(
      'HARNESS_PREREQUISITE',
      `missing ${missing.map(([p]) => p).join(', ')}: apt-get install -y --no-install-recommends ${packages}`,
    );
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function bootNode(opts: NodeOptions): Promise<SystemdNode> {
  const { name } = opts;
  if (!NODE_NAME.test(name)) throw new HarnessError('HARNESS_BAD_OPTION', `node name "${name}" is not [a-z][a-z0-9-]{0,30}`);
  if (liveNodes.has(name)) throw new HarnessError('HARNESS_BAD_OPTION', `a node named "${name}" is already running`);
  if (opts.address !== undefined && opts.hub === undefined) {
    throw new HarnessError('HARNESS_BAD_OPTION', `node "${name}": an address needs a hub`);
  }
  for (const b of opts.binds ?? []) {
    if (!isAbsolute(b) || b.includes('\n')) throw new HarnessError('HARNESS_BAD_OPTION', `bind "${b}" is not an absolute path`);
  }
  const unitNames = Object.keys(opts.units ?? {});
  for (const u of [...unitNames, ...(opts.wants ?? [])]) {
    if (!UNIT_PATH.test(u) || u.split('/').includes('..')) {
      throw new HarnessError('HARNESS_BAD_OPTION', `unit "${u}" is not a unit name or a drop-in like x.service.d/y.conf`);
    }
  }
  checkPrerequisites(opts);
  liveNodes.set(name, 'booting');
  // taken now, before any await, so that nodes booted together get addresses in call order
  let address: string | undefined;
  try {
    address = opts.hub === undefined ? undefined : (opts.address ?? opts.hub.allocateAddress());
  } catch (e) {
    liveNodes.delete(name);
    throw e;
  }

  const started = performance.now();
  const timeoutMs = opts.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const runInfo = await currentRun();
  const key = `node-${name}`;
  const stateDir = opts.stateDir ?? join(runInfo.dir, name);
  const spawned = new Set<ChildProcess>();
  let cgroups: string[] = [];
  let pid: number | undefined;
  let startTime: string | undefined;
  let unshare: ChildProcess | undefined;
  let stateCreated = false;
  let stopping: Promise<void> | undefined;

  const teardown = (): Promise<void> => {
    stopping ??= (async () => {
      const problems: string[] = [];
      for (const c of spawned) killGroup(c.pid);
      if (pid !== undefined && isAlive(pid, startTime)) killProcess(pid);
      else if (unshare?.pid !== undefined) killGroup(unshare.pid);
      try {
        if (pid !== undefined) await waitDead(pid, 10_000, startTime);
        if (unshare?.pid !== undefined) await waitDead(unshare.pid, 10_000);
      } catch (e) {
        problems.push(String(e));
      }
      for (const dir of cgroups) {
        await removeCgroupTree(dir, 10_000).catch((e: unknown) => problems.push(String(e)));
      }
      if (stateCreated && opts.keepState !== true) {
        await rm(stateDir, { recursive: true, force: true }).catch((e: unknown) => problems.push(String(e)));
      }
      await unregister(runInfo, key, pid).catch(() => undefined);
      liveNodes.delete(name);
      if (liveNodes.size === 0) {
        // the run's own cgroup directories and, if no other run uses it, `glow`
        const dirs = [...runCgroupDirs];
        await removeIfEmpty(dirs);
        await removeIfEmpty(dirs.map((d) => dirname(d)));
      }
      if (problems.length > 0) {
        throw new HarnessError('HARNESS_WAIT_TIMEOUT', `node "${name}" did not stop cleanly:\n${problems.join('\n')}`);
      }
    })();
    return stopping;
  };

  try {
    for (const b of opts.binds ?? []) {
      await stat(b).catch((e: unknown) => {
        throw new HarnessError('HARNESS_BAD_OPTION', `bind "${b}" does not exist`, { cause: e });
      });
    }
    // state directory: ours, empty, marked
    if (['/etc', '/var', '/root'].some((p) => stateDir === p || stateDir.startsWith(`${p}/`))) {
      throw new HarnessError('HARNESS_BAD_OPTION', `stateDir ${stateDir} overlaps a directory the node overlays`);
    }
    const existing = await readdir(stateDir).catch(() => undefined);
    if (existing !== undefined && existing.length > 0) {
      throw new HarnessError('HARNESS_BAD_OPTION', `stateDir ${stateDir} exists and is not empty`);
    }
    await mkdir(stateDir, { recursive: true });
    stateCreated = true;
    markStateDir(stateDir);
    for (const [unit, text] of Object.entries(opts.units ?? {})) {
      const file = join(stateDir, 'units', unit);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, text);
    }

    const created = await createNodeCgroups(runInfo.id, name);
    cgroups = created.nodeDirs;
    for (const d of created.runDirs) runCgroupDirs.add(d);
    await recordRunCgroups(runInfo, created.runDirs);
    await register(runInfo, key, { cgroups, state: stateDir });

    const log = openSync(join(stateDir, 'boot.log'), 'a');
    try {
      unshare = spawn(
        'setpriv',
        [
          '--pdeathsig', 'KILL', '--',
          'unshare', '--pid', '--mount', '--net', '--uts', '--ipc', '--fork', '--kill-child=SIGKILL',
          '--propagation', 'private',
          'bash', harnessScript('boot-node.sh'),
        ],
        {
          detached: true,
          stdio: ['ignore', log, log],
          env: {
            PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
            GLOW_NODE_NAME: name,
            GLOW_NODE_STATE: stateDir,
            GLOW_NODE_CGROUPS: cgroups.join('\n'),
            GLOW_NODE_MACHINE_ID: randomBytes(16).toString('hex'),
            GLOW_NODE_BINDS: bindsWithProject(opts.binds ?? []).join('\n'),
            GLOW_NODE_WANTS: (opts.wants ?? []).join(' '),
            GLOW_NODE_PODMAN: opts.podman === true ? '1' : '0',
            GLOW_NODE_RO_ROOT: opts.readOnlyHost === false ? '0' : '1',
          },
        },
      );
    } finally {
      closeSync(log);
    }
    unshare.on('error', () => undefined);
    unshare.unref();
    const unsharePid = unshare.pid;
    if (unsharePid === undefined) throw new HarnessError('HARNESS_PREREQUISITE', 'cannot spawn setpriv/unshare');

    // the node's PID 1 is unshare's only child
    while (pid === undefined) {
      const children = await readFile(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').catch(() => '');
      const first = children.trim().split(' ')[0];
      if (first !== undefined && first !== '') {
        pid = Number(first);
        startTime = procStat(pid)?.startTime;
        break;
      }
      if (!isAlive(unsharePid)) await bootFailure('unshare exited before forking the node');
      if (Date.now() > deadline) await bootFailure(`unshare did not fork the node within ${timeoutMs} ms`, 'HARNESS_BOOT_TIMEOUT');
      await sleep(5);
    }
    const nodePid = pid;
    await register(runInfo, key, { pid: { pid: nodePid, startTime: startTime ?? '0' }, cgroups, state: stateDir });

    let hubPort: HubPort | undefined;
    if (opts.hub !== undefined) {
      hubPort = await opts.hub.attach(nodePid, address ?? opts.hub.allocateAddress());
    }

    // boot-node.sh prepares the mounts, then execs systemd: only then is /run the node's own
    for (;;) {
      const comm = await readFile(`/proc/${nodePid}/comm`, 'utf8').catch(() => '');
      if (comm.trim() === 'systemd') {
        const socket = await stat(`/proc/${nodePid}/root/run/systemd/private`).catch(() => undefined);
        if (socket?.isSocket() === true) break;
      }
      if (!isAlive(nodePid, startTime)) await bootFailure('the node died while booting');
      if (Date.now() > deadline) await bootFailure(`systemd did not start within ${timeoutMs} ms`, 'HARNESS_BOOT_TIMEOUT');
      await sleep(5);
    }

    const cgroupProcs = cgroups.map((d) => join(d, 'cgroup.procs')).join('\n');
    const execIn = (argv: readonly string[], o: ExecOptions = {}): Promise<ExecResult> => {
      if (stopping !== undefined) {
        return Promise.reject(new HarnessError('HARNESS_NODE_STOPPED', `node "${name}" is stopped`));
      }
      return run('/bin/sh', inNodeArgs(nodePid, o.cwd, argv), {
        env: { ...nodeEnv(o.env), GLOW_NODE_CGROUP_PROCS: cgroupProcs },
        timeoutMs: o.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
        ...(o.input !== undefined ? { input: o.input } : {}),
      });
    };

    let state: RunResult;
    try {
      state = await execIn(['systemctl', 'is-system-running', '--wait'], { timeoutMs: Math.max(1000, deadline - Date.now()) });
    } catch (e) {
      return await bootFailure(`systemctl is-system-running --wait did not answer within ${timeoutMs} ms`, 'HARNESS_BOOT_TIMEOUT', e);
    }
    const bootState = state.stdout.trim();
    const failedUnits = await listFailedUnits(execIn);
    if (bootState !== 'running' && !(bootState === 'degraded' && opts.allowDegraded === true)) {
      await bootFailure(`the node booted "${bootState}"`);
    }
    const bootMs = Math.round(performance.now() - started);
    const pidNamespace = (await readFileLink(`/proc/${nodePid}/ns/pid`)) ?? '';

    const execOk = async (argv: readonly string[], o?: ExecOptions): Promise<ExecResult> => {
      const r = await execIn(argv, o);
      if (r.code !== 0) {
        throw new HarnessError(
          'HARNESS_COMMAND_FAILED',
          `[${name}] ${argv.join(' ')} exited with ${r.code}\nstdout: ${tail(r.stdout, 3000)}\nstderr: ${tail(r.stderr, 3000)}`,
        );
      }
      return r;
    };
    const journal = async (args: readonly string[]): Promise<string> => {
      const r = await execIn(['journalctl', '--no-pager', '-q', ...args], { timeoutMs: 15_000 });
      if (r.code !== 0 && r.stderr.trim() !== '') {
        throw new HarnessError('HARNESS_COMMAND_FAILED', `[${name}] journalctl ${args.join(' ')}: ${r.stderr.trim()}`);
      }
      return r.stdout;
    };

    const node: SystemdNode = {
      name,
      pid: nodePid,
      root: `/proc/${nodePid}/root`,
      busAddress: `unix:path=/proc/${nodePid}/root/run/dbus/system_bus_socket`,
      address: hubPort?.address,
      hubPort,
      stateDir,
      cgroups,
      pidNamespace,
      podman: opts.podman === true,
      bootMs,
      bootState: bootState as 'running' | 'degraded',
      failedUnits,
      exec: execIn,
      execOk,
      spawn(argv, o = {}) {
        if (stopping !== undefined) throw new HarnessError('HARNESS_NODE_STOPPED', `node "${name}" is stopped`);
        const child = spawn('/bin/sh', inNodeArgs(nodePid, o.cwd, argv), {
          detached: true,
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...nodeEnv(o.env), GLOW_NODE_CGROUP_PROCS: cgroupProcs },
        });
        spawned.add(child);
        child.on('exit', () => spawned.delete(child));
        return child;
      },
      journal,
      async waitForJournal(args, match, waitMs = 10_000) {
        const until = Date.now() + waitMs;
        for (;;) {
          const text = await journal(args);
          if (typeof match === 'string' ? text.includes(match) : match.test(text)) return text;
          if (Date.now() > until) {
            throw new HarnessError(
              'HARNESS_WAIT_TIMEOUT',
              `[${name}] journalctl ${args.join(' ')} did not show ${String(match)} within ${waitMs} ms; it shows:\n${tail(text, 3000)}`,
            );
          }
          await sleep(100);
        }
      },
      async journalEntries(args) {
        const text = await journal(['-o', 'json', ...args]);
        return text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as JournalEntry);
      },
      async waitForJournalEntry(args, predicate, waitMs = 10_000) {
        const until = Date.now() + waitMs;
        for (;;) {
          const entries = await node.journalEntries(args);
          const found = entries.find(predicate);
          if (found !== undefined) return found;
          if (Date.now() > until) {
            throw new HarnessError(
              'HARNESS_WAIT_TIMEOUT',
              `[${name}] no journal entry of journalctl ${args.join(' ')} satisfied the predicate within ${waitMs} ms; messages:\n` +
                tail(entries.map(journalMessage).join('\n'), 3000),
            );
          }
          await sleep(100);
        }
      },
      async writeFile(path, content, mode = 0o644) {
        if (!isAbsolute(path)) throw new HarnessError('HARNESS_BAD_OPTION', `writeFile: ${path} is not absolute`);
        const target = `/proc/${nodePid}/root${path}`;
        await mkdir(dirname(target), { recursive: true });
        const tmp = `${target}.glow-harness-${process.pid}.tmp`;
        await writeFile(tmp, content, { mode });
        await rename(tmp, target);
      },
      stop: teardown,
    };
    liveNodes.set(name, node);
    return node;
  } catch (e) {
    await teardown().catch(() => undefined);
    liveNodes.delete(name);
    throw e;
  }

  /** Collects what explains a failed boot, stops the node, and throws. */
  async function bootFailure(what: string, code: 'HARNESS_BOOT_FAILED' | 'HARNESS_BOOT_TIMEOUT' = 'HARNESS_BOOT_FAILED', cause?: unknown): Promise<never> {
    const parts = [`node "${name}": ${what}`];
    if (pid !== undefined && isAlive(pid, startTime)) {
      const nodePid = pid;
      const quick = (argv: string[]): Promise<string> =>
        run('nsenter', nsenterArgs(nodePid, undefined, argv), { env: nodeEnv(), timeoutMs: 5000 })
          .then((r) => r.stdout + r.stderr)
          .catch((e: unknown) => `(${String(e)})`);
      parts.push(`failed units:\n${await quick(['systemctl', 'list-units', '--failed', '--plain', '--no-legend', '--no-pager'])}`);
      parts.push(`jobs:\n${await quick(['systemctl', 'list-jobs', '--no-pager'])}`);
      parts.push(`journal tail:\n${await quick(['journalctl', '--no-pager', '-n', '60'])}`);
    }
    const bootLog = await readFile(join(stateDir, 'boot.log'), 'utf8').catch(() => '(no boot.log)');
    parts.push(`boot.log:\n${tail(bootLog, 4000)}`);
    throw new HarnessError(code, parts.join('\n'), cause === undefined ? undefined : { cause });
  }
}

/** Directories that are fresh (empty) inside a node: host paths below them are invisible unless bound. */
const FRESH_IN_NODE = ['/tmp', '/var/tmp', '/run', '/dev'];

/**
 * The binds, plus the project's own tree when it lies below a directory that is fresh inside a node (a clone
 * under /tmp, say): the code under test must be visible in the node at the same path.
 */
function bindsWithProject(binds: readonly string[]): string[] {
  const project = dirname(dirname(dirname(harnessScript('boot-node.sh')))); // <project>/test/harness/boot-node.sh
  const hidden = FRESH_IN_NODE.some((d) => project.startsWith(`${d}/`));
  const covered = binds.some((b) => project === b || project.startsWith(`${b}/`));
  return hidden && !covered ? [...binds, project] : [...binds];
}

function nsenterArgs(pid: number, cwd: string | undefined, argv: readonly string[]): string[] {
  if (argv.length === 0) throw new HarnessError('HARNESS_BAD_OPTION', 'exec/spawn needs a command');
  return ['-t', String(pid), '-m', '-p', '-n', '-u', '-i', '-C', ...(cwd !== undefined ? [`--wd=${cwd}`] : []), '--', ...argv];
}

/**
 * A command run in a node first moves itself into the node's root cgroup (host paths, listed one a line in
 * GLOW_NODE_CGROUP_PROCS), then enters the namespaces, the cgroup namespace included: it then sees itself at
 * "/" like any process of the node, its children (a `podman run`, say) create their cgroups inside the node, and
 * its resources count against the node.
 */
const IN_NODE = `
IFS='
'
for f in $GLOW_NODE_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done
unset IFS GLOW_NODE_CGROUP_PROCS
exec nsenter "$@"
`;

function inNodeArgs(pid: number, cwd: string | undefined, argv: readonly string[]): string[] {
  return ['-c', IN_NODE, 'glow-harness-exec', ...nsenterArgs(pid, cwd, argv)];
}

async function listFailedUnits(execIn: (argv: readonly string[], o?: ExecOptions) => Promise<ExecResult>): Promise<string[]> {
  const r = await execIn(['systemctl', 'list-units', '--failed', '--plain', '--no-legend', '--no-pager'], { timeoutMs: 10_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((u) => u !== '');
}

async function readFileLink(path: string): Promise<string | undefined> {
  return readlink(path).catch(() => undefined);
}
