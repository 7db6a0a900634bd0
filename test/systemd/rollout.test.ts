/**
 * Roll-outs on a real systemd node, judged by what systemd recorded (test/systemd/timeline.ts), not by glowd's
 * log: a roll-out whose glowd is killed half-way finishes once glowd is back, one instance at a time and none
 * twice; a version that never becomes healthy stops the roll-out after its first instance, and `glow status`
 * says so.
 *
 * Instances of one app share a node only when the app provides no port (docs/config.md, instance numbers), so
 * a roll-out on one node is always of such an app, and "healthy" is "active" for it (src/shell/health.ts). The
 * apps here are built for the purpose: `queue`'s old process takes 3 s to stop (it finishes its job), which gives
 * the test time to kill glowd during a restart; `batch` 2.0 starts, and a second later fails and exits (it cannot
 * reach what it needs), over and over as systemd restarts it: it never stays up, so it never becomes healthy.
 * (A version that exits the very moment it starts is no better a test: whether glowd catches it active depends on
 * who gets the CPU first.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bootNode, stopAll } from '../harness/systemd-node.js';
import type { SystemdNode } from '../harness/systemd-node.js';
import { activeState, eventually, Glowd, GLOW, NODE, Repo, sleep } from './fixture.js';
import { assertRolledOneAtATime, assertTimesOneAtATime, journalCursor, journalEvents, restartedSince, showEvents, unitEvents, unitTimes } from './timeline.js';
import type { UnitTimes } from './timeline.js';

after(stopAll);

const HEALTH_TIMEOUT = ['--health-timeout', '6s'];

const app = (image: string, version: string) => `image: ${image}
version: "${version}"
runtime: exec
command: [bin/server]
`;

/** Packs `files` (path → content or a host file to copy) as `<artifacts>/<image>/<version>.tar.gz`. */
function pack(repo: Repo, image: string, version: string, files: Record<string, string | { copy: string }>): void {
  const stage = join(repo.root, 'stage-rollout', image, version);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(stage, path)), { recursive: true });
    if (typeof content === 'string') writeFileSync(join(stage, path), content, { mode: 0o755 });
    else copyFileSync(content.copy, join(stage, path));
  }
  const out = join(repo.artifacts, image, `${version}.tar.gz`);
  mkdirSync(dirname(out), { recursive: true });
  execFileSync('tar', ['-czf', out, '-C', stage, '.']);
}

/** A worker that takes 3 s to stop: on SIGTERM it finishes its current job first (its `sleep 3` ignores the
 * SIGTERM that systemd sends to the whole control group). */
const slowStopper = (repo: Repo, version: string) =>
  pack(repo, 'queue', version, {
    'bin/server': '#!/bin/sh\ntrap \'trap "" TERM; echo "finishing the current job"; sleep 3; exit 0\' TERM\necho "queue $GLOW_VERSION up"\nwhile :; do sleep 1 & wait $!; done\n',
  });

async function versionOf(node: SystemdNode, unit: string): Promise<string | undefined> {
  const pid = (await unitTimes(node, unit)).mainPid;
  if (!pid) return undefined;
  const env = await node.exec(['cat', `/proc/${pid}/environ`]);
  return /(?:^|\0)GLOW_VERSION=([^\0]*)/.exec(env.stdout)?.[1];
}

/** Until every unit has a main process started since `before` and is active. */
function allRestarted(node: SystemdNode, units: readonly string[], before: readonly UnitTimes[], what: string): Promise<UnitTimes[]> {
  return eventually(async () => {
    const t = await Promise.all(units.map((u) => unitTimes(node, u)));
    return t.every((x, i) => restartedSince(x, before[i]!)) && t;
  }, what, 40_000);
}

describe('roll-outs on a real systemd node', () => {
  let node: SystemdNode;
  let repo: Repo;
  let glowd: Glowd;
  const queues = [1, 2, 3].map((n) => `glow-queue@${n}.service`);
  const batches = [1, 2].map((n) => `glow-batch@${n}.service`);

  before(async () => {
    repo = new Repo('glow-rollout-');
    slowStopper(repo, '1.0');
    repo.artifact('batch', '1.0');
    repo.write('glow.yaml', `artifacts: ${repo.artifacts}\nstop_grace: 1s\n`);
    repo.write('nodes/node-r.yaml', 'address: 10.77.0.13\n');
    repo.write('apps/queue.yaml', app('queue', '1.0'));
    repo.write('apps/batch.yaml', app('batch', '1.0'));
    for (const n of [1, 2, 3]) repo.write(`deployments/queue-${n}.yaml`, 'app: queue\nnode: node-r\n');
    for (const n of [1, 2]) repo.write(`deployments/batch-${n}.yaml`, 'app: batch\nnode: node-r\n');
    node = await bootNode({ name: 'node-r', binds: [repo.root] });
    glowd = new Glowd(node, repo);
    glowd.start(HEALTH_TIMEOUT);
    await glowd.until((s) => [...queues, ...batches].every((u) => s.instances.some((i) => i.unit === u && i.activeState === 'active')), 'every instance active', 30_000);
  });

  after(async () => {
    await glowd?.stop();
    repo?.cleanup();
  });

  /**
   * glowd killed while systemd restarts #1, started again once #1 is back: from glowd's side, killed between
   * two restarts of the roll-out.
   */
  test('glowd killed (SIGKILL) during a roll-out: started again, it finishes it, one at a time, nobody twice', async () => {
    const before = await Promise.all(queues.map((u) => unitTimes(node, u)));
    const cursor = await journalCursor(node);
    slowStopper(repo, '2.0');
    repo.write('apps/queue.yaml', app('queue', '2.0'));
    await eventually(async () => (await unitTimes(node, queues[0]!)).activeExit !== before[0]!.activeExit, 'queue #1 stopping', 20_000);
    await glowd.stop('SIGKILL');

    // systemd finishes #1's restart on its own; nothing touches #2 and #3 while glowd is down.
    const [first] = await allRestarted(node, queues.slice(0, 1), before, 'queue #1 back by itself');
    await sleep(1000);
    assert.equal(await versionOf(node, queues[0]!), '2.0');
    for (const [i, u] of queues.entries()) {
      if (i === 0) continue;
      assert.equal((await unitTimes(node, u)).execMainStart, before[i]!.execMainStart, `${u} not restarted while glowd is down`);
      assert.equal(await versionOf(node, u), '1.0', `${u} still on the old version while glowd is down`);
    }
    assert.deepEqual(await unitEvents(node, cursor, queues.slice(1)), [], 'nothing stopped #2 or #3 while glowd was down');

    glowd.start(HEALTH_TIMEOUT);
    const done = await allRestarted(node, queues, before, 'the roll-out finished after glowd came back');
    for (const u of queues) assert.equal(await versionOf(node, u), '2.0', `${u} runs the new definition`);
    assert.equal(done[0]!.mainPid, first!.mainPid, 'queue #1, already on the new definition, was not restarted again');
    assertTimesOneAtATime(done);
    assertRolledOneAtATime(await journalEvents(node, cursor, queues), queues);

    // More passes (the tick is 2 s): the finished roll-out is not done again.
    await sleep(5000);
    const later = await unitEvents(node, cursor, queues);
    assert.equal(later.length, 2 * queues.length, `no further stop or start after the roll-out:\n${showEvents(later)}`);
    assert.deepEqual((await glowd.status()).applyErrors, []);
  });

  /**
   * As under systemd, where units/glowd.service brings a killed glowd back after 2 s: #1, whose old process
   * takes 3 s to stop, is still restarting when glowd looks again. The roll-out must wait for it.
   */
  test('glowd killed during a roll-out and back at once, while #1 still restarts: still one at a time, nobody twice', async () => {
    const before = await Promise.all(queues.map((u) => unitTimes(node, u)));
    const cursor = await journalCursor(node);
    slowStopper(repo, '3.0');
    repo.write('apps/queue.yaml', app('queue', '3.0'));
    await eventually(async () => (await unitTimes(node, queues[0]!)).activeExit !== before[0]!.activeExit, 'queue #1 stopping', 20_000);
    await glowd.stop('SIGKILL');
    glowd.start(HEALTH_TIMEOUT);
    assert.equal((await unitTimes(node, queues[0]!)).execMainStart, before[0]!.execMainStart, 'the case of this test: glowd is back while #1 still stops');
    const done = await allRestarted(node, queues, before, 'the roll-out finished after glowd came back');
    for (const u of queues) assert.equal(await versionOf(node, u), '3.0', `${u} runs the new definition`);
    assertTimesOneAtATime(done);
    assertRolledOneAtATime(await journalEvents(node, cursor, queues), queues);
    await sleep(3000);
    const later = await unitEvents(node, cursor, queues);
    assert.equal(later.length, 2 * queues.length, `no further stop or start after the roll-out:\n${showEvents(later)}`);
  });

  test('a version that never becomes healthy: the roll-out stops after the first instance, the others are left as they are', async () => {
    const before = await Promise.all(batches.map((u) => unitTimes(node, u)));
    const cursor = await journalCursor(node);
    pack(repo, 'batch', '2.0', { 'bin/server': '#!/bin/sh\necho "batch $GLOW_VERSION starting"\nsleep 1\necho "cannot reach the queue; exiting" >&2\nexit 1\n' });
    repo.write('apps/batch.yaml', app('batch', '2.0'));
    await eventually(async () => glowd.log.includes('"code":"GLOW_E_ROLLOUT_UNHEALTHY"') || (await unitEvents(node, cursor, [batches[1]!])).length > 0, 'glowd stopping the roll-out (or going on with it)', 30_000);
    const early = await unitEvents(node, cursor, batches);
    assert.deepEqual(
      early.filter((e) => e.unit === batches[1]),
      [],
      `batch #2 was restarted onto 2.0, which never stays up: glowd took batch #1 for healthy (systemd's journal:\n${showEvents(early)})`,
    );
    const line = glowd.log.split('\n').find((l) => l.includes('"code":"GLOW_E_ROLLOUT_UNHEALTHY"'))!;
    assert.deepEqual(
      (({ code, unit, msg }) => ({ code, unit, msg }))(JSON.parse(line) as Record<string, unknown>),
      {
        code: 'GLOW_E_ROLLOUT_UNHEALTHY',
        unit: batches[0],
        msg: 'glow-batch@1.service did not become healthy within 6s after a restart (its unit changed); the other instances of batch are left as they are',
      },
    );

    // #1 was restarted once by glowd and since then by systemd, over and over; #2 is left as it was: the same
    // process, the old version.
    const events = await unitEvents(node, cursor, batches);
    assert.equal(events.filter((e) => e.unit === batches[0] && e.what === 'stopping').length, 1, `batch #1 stopped once, by glowd:\n${showEvents(events)}`);
    const restarts = Number((await node.execOk(['systemctl', 'show', '-P', 'NRestarts', batches[0]!])).stdout.trim());
    assert.ok(restarts >= 2, `batch #1 on 2.0 keeps failing (systemd restarted it ${restarts} times)`);
    assert.deepEqual(events.filter((e) => e.unit === batches[1]), [], `batch #2 never stopped:\n${showEvents(events)}`);
    const t2 = await unitTimes(node, batches[1]!);
    assert.equal(t2.mainPid, before[1]!.mainPid);
    assert.equal(t2.execMainStart, before[1]!.execMainStart);
    assert.equal(await activeState(node, batches[1]!), 'active');
    assert.equal(await versionOf(node, batches[1]!), '1.0');

    // Later passes (the tick is 2 s) leave it so: the roll-out is not retried until the app changes again.
    await sleep(4500);
    const later = await unitEvents(node, cursor, [batches[1]!]);
    assert.deepEqual(later, [], `batch #2 still never stopped:\n${showEvents(later)}`);
    assert.equal(await versionOf(node, batches[1]!), '1.0');
  });

  test('while the roll-out stands stopped, glow status (the control socket\'s /status) reports GLOW_E_ROLLOUT_UNHEALTHY', async () => {
    const s = await glowd.status();
    assert.deepEqual(
      s.applyErrors.map((e) => `${e.code} ${e.unit}`),
      ['GLOW_E_ROLLOUT_UNHEALTHY glow-batch@1.service'],
      `batch #1 does not run and batch #2 runs the old version, yet /status has applyErrors ${JSON.stringify(s.applyErrors)}`,
    );
    const text = await node.exec([NODE, GLOW, 'status']);
    assert.equal(text.code, 1, text.stdout);
    assert.match(text.stdout, /^ {2}GLOW_E_ROLLOUT_UNHEALTHY glow-batch@1\.service glow-batch@1\.service did not become healthy within 6s/m);
  });

  test('a good version after the stopped roll-out: every instance gets it, and the error goes', async () => {
    repo.artifact('batch', '3.0');
    repo.write('apps/batch.yaml', app('batch', '3.0'));
    await eventually(async () => (await Promise.all(batches.map((u) => versionOf(node, u)))).every((v) => v === '3.0'), 'both batch instances on 3.0', 30_000);
    await glowd.until((st) => st.applyErrors.length === 0, 'the error cleared');
    assert.deepEqual(await Promise.all(batches.map((u) => activeState(node, u))), ['active', 'active']);
  });
});
