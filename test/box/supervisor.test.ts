/**
 * The dev box's supervisor with real processes: process groups stopped whole, SIGKILL after the stop timeout,
 * crashes restarted with a growing wait, output prefixed, leftovers of a killed box found by PID and start time.
 * Every process is started by the test and checked gone at its end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Launch } from '../../src/render/launch.js';
import { backoffDelay, groupAlive, killGroup, killLeftovers, startTimeOf, Supervisor, waitGroupGone } from '../../src/box/supervisor.js';
import type { InstanceSpec } from '../../src/box/supervisor.js';
import { Terminal } from '../../src/box/terminal.js';

const work = mkdtempSync(join(tmpdir(), 'glow-supervisor-'));
const groups = new Set<number>();
after(() => {
  for (const g of groups) killGroup(g, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function terminal() {
  const t = { out: '' };
  return { t, term: new Terminal({ write: (s: string) => (t.out += s) }, false) };
}

function spec(key: string, script: string, stopTimeoutMs = 5000): InstanceSpec {
  const launch: Launch = { runtime: 'exec', argv: ['/bin/sh', '-c', script], cwd: work, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, instanceEnv: {} };
  return { key, app: key.split('#')[0]!, instance: 1, version: '1', definition: script, launch, stopTimeoutMs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** The PIDs a script wrote into `file`, one a line. */
const pidsIn = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map(Number);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return startTimeOf(pid) !== undefined && !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('supervisor', { timeout: 60_000 }, () => {
  test('stop: SIGTERM reaches the whole group, the stop is done when the group is gone', async () => {
    const { term } = terminal();
    const sup = new Supervisor({ terminal: term });
    const pids = join(work, 'tree.pids');
    // A leader that starts two children of its own and waits for them (as a shell wrapper would).
    sup.start(spec('tree#1', `sleep 60 & echo $! >> ${pids}; sleep 60 & echo $! >> ${pids}; echo $$ >> ${pids}; wait`));
    const [c1, c2, leader] = await until('three processes', () => {
      try {
        const p = pidsIn(pids);
        return p.length === 3 ? p : undefined;
      } catch {
        return undefined;
      }
    });
    groups.add(leader!);
    assert.equal(sup.status()[0]!.pid, leader);
    const t0 = Date.now();
    await sup.stop('tree#1');
    assert.ok(Date.now() - t0 < 3000, 'SIGTERM is enough: no wait for the stop timeout');
    for (const pid of [c1!, c2!, leader!]) assert.equal(alive(pid), false, `pid ${pid} is gone`);
    assert.equal(groupAlive(leader!), false);
    assert.deepEqual(sup.status(), []);
  });

  test('stop: SIGKILL to the group after the stop timeout when SIGTERM is ignored', async () => {
    const { t, term } = terminal();
    const sup = new Supervisor({ terminal: term });
    const pids = join(work, 'stubborn.pids');
    sup.start(spec('stubborn#1', `trap '' TERM; sleep 60 & echo $! >> ${pids}; echo $$ >> ${pids}; while :; do sleep 1; done`, 400));
    const [child, leader] = await until('two processes', () => {
      try {
        const p = pidsIn(pids);
        return p.length === 2 ? p : undefined;
      } catch {
        return undefined;
      }
    });
    groups.add(leader!);
    const t0 = Date.now();
    await sup.stop('stubborn#1');
    const took = Date.now() - t0;
    assert.ok(took >= 350, `SIGKILL only after the 400 ms stop timeout (${took} ms)`);
    assert.equal(alive(child!), false);
    assert.equal(alive(leader!), false);
    assert.match(t.out, /stubborn#1 did not stop within 0\.4s of SIGTERM: SIGKILL/);
  });

  test('a crash is restarted after a wait that grows; output is prefixed with the instance', async () => {
    const { t, term } = terminal();
    const crashes: string[] = [];
    const sup = new Supervisor({ terminal: term, backoff: { initialMs: 100, maxMs: 400, resetAfterMs: 10_000 }, onCrash: (k) => crashes.push(k) });
    const runs = join(work, 'crash.runs');
    sup.start(spec('crash#1', `echo "run $$"; echo $$ >> ${runs}; exit 3`));
    await until('three runs', () => {
      try {
        return pidsIn(runs).length >= 3 || undefined;
      } catch {
        return undefined;
      }
    });
    await sup.stopAll();
    const pids = pidsIn(runs);
    for (const p of pids) groups.add(p);
    assert.equal(new Set(pids).size, pids.length, 'a new process each time');
    assert.ok(crashes.length >= 2);
    assert.match(t.out, /^crash#1 │ run \d+$/m);
    assert.match(t.out, /crash#1 exited with status 3 after [\d.]+s; starting it again in 0\.1s/);
    assert.match(t.out, /crash#1 exited with status 3 after [\d.]+s; starting it again in 0\.2s/);
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  test('a program that cannot be started is retried like a crash, and says why', async () => {
    const { t, term } = terminal();
    const sup = new Supervisor({ terminal: term, backoff: { initialMs: 50, maxMs: 50, resetAfterMs: 10_000 } });
    sup.start({ ...spec('missing#1', ''), launch: { runtime: 'exec', argv: [join(work, 'bin/nothing')], cwd: work, env: {}, instanceEnv: {} } });
    await until('the message', () => /missing#1 could not be started: ENOENT \(no such program: .*bin\/nothing\)/.test(t.out) || undefined);
    await sup.stopAll();
  });

  test('signal: to the main process of a running instance', async () => {
    const { t, term } = terminal();
    const sup = new Supervisor({ terminal: term });
    sup.start(spec('hup#1', `trap 'echo got HUP' HUP; echo ready; while :; do sleep 0.1; done`));
    await until('ready', () => /hup#1 │ ready/.test(t.out) || undefined);
    groups.add(sup.status()[0]!.pid);
    assert.equal(sup.signal('hup#1', 'SIGHUP'), true);
    await until('the trap', () => /hup#1 │ got HUP/.test(t.out) || undefined);
    assert.equal(sup.signal('nope#1', 'SIGHUP'), false);
    await sup.stopAll();
  });

  test('killLeftovers: the groups a killed box recorded, only if their leader is still the same process', async () => {
    const pidFile = join(work, 'pids.json');
    const { term } = terminal();
    const sup = new Supervisor({ terminal: term, pidFile });
    sup.start(spec('left#1', 'sleep 60 & wait'));
    const leader = await until('the record', () => {
      try {
        return (JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number }[])[0]?.pid;
      } catch {
        return undefined;
      }
    });
    groups.add(leader);
    // The box dies without stopping anything (SIGKILL): its record stays.
    const record = readFileSync(pidFile, 'utf8');
    assert.deepEqual(killLeftovers(pidFile), [`left#1 (pid ${leader})`]);
    assert.ok(await waitGroupGone(leader, 3000));
    await sup.stopAll();

    // A recorded PID that now belongs to another process (another start time) is left alone.
    const other = spawn('/bin/sh', ['-c', 'sleep 60'], { detached: true, stdio: 'ignore' });
    groups.add(other.pid!);
    writeFileSync(pidFile, JSON.stringify([{ pid: other.pid, start: '1', key: 'x#1' }]));
    assert.deepEqual(killLeftovers(pidFile), []);
    assert.equal(groupAlive(other.pid!), true);
    killGroup(other.pid!, 'SIGKILL');
    assert.ok(record.includes(`"key":"left#1"`));
  });
});
