/**
 * Proves the systemd test harness on this machine: boot, units and journal, D-Bus, networking between nodes,
 * podman, teardown without a trace, and the watchdog. Needs root and the Debian packages in README.md; a
 * missing prerequisite fails with HARNESS_PREREQUISITE — these tests are never skipped.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import dbus from 'dbus-next';
import type { ClientInterface } from 'dbus-next';
import {
  bootNode,
  createHub,
  HarnessError,
  importBusyboxImage,
  journalMessage,
  podmanUnit,
  stopAll,
  type SystemdNode,
} from './systemd-node.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitUntil<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Host PIDs of every process in a PID namespace (by the inode of /proc/<pid>/ns/pid). */
function processesInNamespace(ns: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) === ns) found.push(Number(entry));
    } catch {
      /* gone meanwhile, or a kernel thread */
    }
  }
  return found;
}

/** What a node must never change on the host. */
function hostSnapshot(): Record<string, string> {
  const list = (dir: string): string => {
    try {
      return readdirSync(dir, { recursive: true }).map(String).sort().join('\n');
    } catch {
      return '(absent)';
    }
  };
  return {
    cgroupRoot: list('/sys/fs/cgroup').split('\n').filter((e) => !e.includes('/')).join(' '),
    // the children of every hierarchy's root (a runc that escaped its node would create machine.slice here)
    cgroupTops: readdirSync('/sys/fs/cgroup', { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => `${e.name}: ${readdirSync(join('/sys/fs/cgroup', e.name), { withFileTypes: true }).filter((c) => c.isDirectory()).map((c) => c.name).sort().join(' ')}`)
      .join('\n'),
    cgroupMount: readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(' /sys/fs/cgroup '))
      .join('\n'),
    nrOpen: readFileSync('/proc/sys/fs/nr_open', 'utf8'),
    fileMax: readFileSync('/proc/sys/fs/file-max', 'utf8'),
    hostname: readFileSync('/proc/sys/kernel/hostname', 'utf8'),
    links: Object.keys(networkInterfaces()).sort().join(' '),
    etcSystemd: list('/etc/systemd/system'),
    varLogJournal: list('/var/log/journal'),
    runMount: String(existsSync('/run/mount')),
    machineId: readFileSync('/etc/machine-id', 'utf8'),
  };
}

let host: Record<string, string>;
const canary = join('/tmp', `glow-harness-canary-${process.pid}`);

before(() => {
  host = hostSnapshot();
  writeFileSync(canary, 'still here\n');
});

after(async () => {
  await stopAll();
  rmSync(canary, { force: true });
});

describe('a single node', { timeout: 60_000 }, () => {
  let node: SystemdNode;
  before(async () => {
    node = await bootNode({ name: 'solo' });
  });
  after(async () => {
    await node.stop();
  });

  test('boots to "running" with systemd as PID 1 and its own identity', async (t) => {
    t.diagnostic(`boot took ${node.bootMs} ms`);
    assert.equal(node.bootState, 'running');
    assert.deepEqual(node.failedUnits, []);
    assert.equal((await node.execOk(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd');
    assert.equal((await node.execOk(['hostname'])).stdout.trim(), 'solo');
    const id = (await node.execOk(['cat', '/etc/machine-id'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.notEqual(id, readFileSync('/etc/machine-id', 'utf8').trim());
    assert.equal((await node.execOk(['systemctl', 'is-system-running'])).stdout.trim(), 'running');
    assert.equal((await node.execOk(['readlink', '/etc/systemd/system/default.target'])).stdout.trim(), 'glow-harness.target');
    // the node's journal is volatile, in its own /run
    assert.equal((await node.exec(['test', '-d', '/run/log/journal'])).code, 0);
    // the host's tree is read-only inside; /etc, /var, /tmp are the node's own
    assert.notEqual((await node.exec(['touch', '/usr/glow-harness-probe'])).code, 0);
    await node.execOk(['touch', '/etc/glow-harness-probe', '/var/lib/glow-harness-probe', '/tmp/probe']);
    assert.equal(existsSync('/etc/glow-harness-probe'), false);
    assert.equal(existsSync('/var/lib/glow-harness-probe'), false);
    assert.notEqual((await node.exec(['test', '-e', canary])).code, 0, 'the host /tmp is not visible in the node');
    // exec reports exit codes, passes stdin and env
    const r = await node.exec(['sh', '-c', 'cat; echo "$GREETING"; exit 3'], { input: 'in\n', env: { GREETING: 'hi' } });
    assert.deepEqual(r, { code: 3, stdout: 'in\nhi\n', stderr: '' });
    await assert.rejects(node.exec(['sleep', '10'], { timeoutMs: 200 }), (e: unknown) => e instanceof HarnessError && e.code === 'HARNESS_EXEC_TIMEOUT');
  });

  test('runs a unit written into <root>/etc/systemd/system, and its output is in the journal with LogExtraFields', async () => {
    const tag = `t${Date.now().toString(36)}`;
    writeFileSync(
      `${node.root}/etc/systemd/system/hello.service`,
      [
        '[Service]',
        'Type=oneshot',
        'LogExtraFields=GLOW_APP=hello',
        `LogExtraFields=GLOW_TEST_TAG=${tag}`,
        `ExecStart=/bin/sh -c 'echo hello-${tag}'`,
        '',
      ].join('\n'),
    );
    await node.execOk(['systemctl', 'daemon-reload']);
    await node.execOk(['systemctl', 'start', 'hello.service']);
    const line = await node.waitForJournalEntry([`GLOW_TEST_TAG=${tag}`], (e) => journalMessage(e) === `hello-${tag}`);
    assert.equal(line['GLOW_APP'], 'hello');
    assert.equal(line['_SYSTEMD_UNIT'], 'hello.service');
    assert.equal(line['_HOSTNAME'], 'solo');
    assert.equal(existsSync('/etc/systemd/system/hello.service'), false, 'the unit stays inside the node');
  });

  test('dbus-next drives systemd1.Manager: Subscribe, LoadUnit, StartUnit, JobRemoved', async () => {
    interface Manager extends ClientInterface {
      Subscribe(): Promise<void>;
      Reload(): Promise<void>;
      LoadUnit(name: string): Promise<string>;
      StartUnit(name: string, mode: string): Promise<string>;
      StopUnit(name: string, mode: string): Promise<string>;
    }
    interface Properties extends ClientInterface {
      Get(iface: string, prop: string): Promise<{ value: unknown }>;
    }
    await node.writeFile('/etc/systemd/system/dbus-probe.service', '[Service]\nType=exec\nExecStart=/bin/sleep 300\n');
    const bus = dbus.sessionBus({ busAddress: node.busAddress });
    try {
      const systemd = await bus.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1');
      const manager = systemd.getInterface<Manager>('org.freedesktop.systemd1.Manager');
      const removed = new Map<string, string>(); // job path → result; JobRemoved may beat StartUnit's reply
      manager.on('JobRemoved', (_id: number, job: string, _unit: string, result: string) => {
        removed.set(job, result);
      });
      await manager.Subscribe();
      await manager.Reload();
      const unitPath = await manager.LoadUnit('dbus-probe.service');
      const job = await manager.StartUnit('dbus-probe.service', 'replace');
      assert.equal(await waitUntil(`JobRemoved for ${job}`, 10_000, () => removed.get(job)), 'done');
      const unit = await bus.getProxyObject('org.freedesktop.systemd1', unitPath);
      const props = unit.getInterface<Properties>('org.freedesktop.DBus.Properties');
      assert.equal((await props.Get('org.freedesktop.systemd1.Unit', 'ActiveState')).value, 'active');
      const stopJob = await manager.StopUnit('dbus-probe.service', 'replace');
      assert.equal(await waitUntil(`JobRemoved for ${stopJob}`, 10_000, () => removed.get(stopJob)), 'done');
    } finally {
      bus.disconnect();
    }
  });
});

describe('units given at boot', { timeout: 60_000 }, () => {
  test('are installed and started during boot; a failing one makes the boot degraded, an error unless allowed', async () => {
    const units = {
      'greeter.service': '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/echo greetings\n',
      'greeter.service.d/extra.conf': '[Service]\nLogExtraFields=GLOW_APP=greeter\n',
      'broken.service': '[Service]\nType=oneshot\nExecStart=/bin/false\n',
    };
    const fine = await bootNode({ name: 'with-units', units, wants: ['greeter.service'] });
    try {
      assert.equal((await fine.execOk(['systemctl', 'is-active', 'greeter.service'])).stdout.trim(), 'active');
      const line = await fine.waitForJournalEntry(['GLOW_APP=greeter'], (e) => journalMessage(e) === 'greetings');
      assert.equal(line['_SYSTEMD_UNIT'], 'greeter.service');
    } finally {
      await fine.stop();
    }
    await assert.rejects(bootNode({ name: 'degraded', units, wants: ['broken.service'] }), (e: unknown) => {
      assert.ok(e instanceof HarnessError);
      assert.equal(e.code, 'HARNESS_BOOT_FAILED');
      assert.match(e.message, /booted "degraded"/);
      assert.match(e.message, /broken\.service/);
      return true;
    });
    const degraded = await bootNode({ name: 'degraded', units, wants: ['broken.service'], allowDegraded: true });
    try {
      assert.equal(degraded.bootState, 'degraded');
      assert.deepEqual(degraded.failedUnits, ['broken.service']);
    } finally {
      await degraded.stop();
    }
  });
});

describe('two nodes on a hub', { timeout: 60_000 }, () => {
  const client = (host: string, port: number): string =>
    `const s = require('net').connect(${port}, '${host}'); let d = ''; s.setTimeout(1500, () => { console.log('TIMEOUT'); process.exit(2); });` +
    `s.on('data', (b) => d += b); s.on('end', () => { console.log(d); process.exit(0); });` +
    `s.on('error', (e) => { console.log(e.code); process.exit(1); });`;

  test('reach each other over TCP, and neither the host nor the world', async () => {
    const hub = await createHub('lan');
    const [a, b] = await Promise.all([bootNode({ name: 'lan-a', hub }), bootNode({ name: 'lan-b', hub })]);
    const hostServer = createServer((s) => s.end('host')).listen(0, '0.0.0.0');
    try {
      assert.equal(a.address, '10.77.0.11');
      assert.equal(b.address, '10.77.0.12');
      const server = a.spawn([
        '/usr/bin/node',
        '-e',
        `require('net').createServer((s) => s.end('pong from ' + require('os').hostname())).listen(7000, '${a.address}', () => console.log('listening'))`,
      ]);
      let out = '';
      server.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      await waitUntil('the server in lan-a', 10_000, () => (out.includes('listening') ? true : undefined));

      const ok = await b.execOk(['/usr/bin/node', '-e', client(a.address ?? '', 7000)]);
      assert.equal(ok.stdout.trim(), 'pong from lan-a');

      // not the host: the node's loopback is its own, and it has no route off the hub
      const hostPort = (hostServer.address() as AddressInfo).port;
      const loop = await b.exec(['/usr/bin/node', '-e', client('127.0.0.1', hostPort)]);
      assert.equal(loop.stdout.trim(), 'ECONNREFUSED');
      const routes = (await b.execOk(['ip', '-4', 'route'])).stdout;
      assert.doesNotMatch(routes, /default/);
      const hostAddress = Object.values(networkInterfaces())
        .flat()
        .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;
      if (hostAddress !== undefined) {
        const far = await b.exec(['/usr/bin/node', '-e', client(hostAddress, hostPort)]);
        assert.equal(far.stdout.trim(), 'ENETUNREACH');
      }

      // a partition: the link at the bridge goes down, then comes back
      assert.ok(a.hubPort);
      await hub.setLinkUp(a.hubPort, false);
      const cut = await b.exec(['/usr/bin/node', '-e', client(a.address ?? '', 7000)]);
      assert.match(cut.stdout.trim(), /^(TIMEOUT|EHOSTUNREACH)$/);
      await hub.setLinkUp(a.hubPort, true);
      const healed = await b.execOk(['/usr/bin/node', '-e', client(a.address ?? '', 7000)]);
      assert.equal(healed.stdout.trim(), 'pong from lan-a');
    } finally {
      hostServer.close();
      await Promise.all([a.stop(), b.stop()]);
      await hub.stop();
    }
    assert.equal(Object.keys(networkInterfaces()).sort().join(' '), host['links']);
  });
});

describe('teardown', { timeout: 60_000 }, () => {
  test('stop() leaves nothing behind: no process, no cgroup, no state; host /tmp and binds intact', async () => {
    const bindDir = mkdtempSync('/tmp/glow-harness-bind-');
    try {
      writeFileSync(join(bindDir, 'hello.txt'), 'from host\n');
      const node = await bootNode({ name: 'leaves-nothing', binds: [bindDir] });
      assert.equal((await node.execOk(['cat', join(bindDir, 'hello.txt')])).stdout, 'from host\n');
      await node.execOk(['sh', '-c', `echo from node > ${bindDir}/back.txt`]);
      assert.equal(readFileSync(join(bindDir, 'back.txt'), 'utf8'), 'from node\n');

      const sleeper = node.spawn(['/bin/sleep', '1000']);
      const sleeperExit = new Promise<void>((r) => sleeper.on('exit', () => r()));
      await node.execOk(['systemd-run', '--unit=background', '/bin/sleep', '1000']);
      assert.ok(processesInNamespace(node.pidNamespace).length >= 4);
      assert.ok(statSync(node.stateDir).isDirectory());

      await node.stop();
      await node.stop(); // idempotent

      assert.deepEqual(processesInNamespace(node.pidNamespace), []);
      await sleeperExit;
      for (const dir of node.cgroups) assert.equal(existsSync(dir), false, `${dir} is left`);
      assert.equal(existsSync(node.stateDir), false);
      assert.equal(readFileSync(canary, 'utf8'), 'still here\n');
      assert.equal(readFileSync(join(bindDir, 'back.txt'), 'utf8'), 'from node\n');
      await assert.rejects(node.exec(['true']), (e: unknown) => e instanceof HarnessError && e.code === 'HARNESS_NODE_STOPPED');
    } finally {
      rmSync(bindDir, { recursive: true, force: true });
    }
  });

  test('a boot that fails says why and cleans up', async () => {
    await assert.rejects(bootNode({ name: 'Bad_Name' }), (e: unknown) => e instanceof HarnessError && e.code === 'HARNESS_BAD_OPTION');
    await assert.rejects(
      bootNode({ name: 'no-bind', binds: ['/nonexistent/glow-harness'] }),
      (e: unknown) => e instanceof HarnessError && e.code === 'HARNESS_BAD_OPTION',
    );
    let stateDir = '';
    await assert.rejects(bootNode({ name: 'too-slow', bootTimeoutMs: 1 }), (e: unknown) => {
      assert.ok(e instanceof HarnessError);
      assert.equal(e.code, 'HARNESS_BOOT_TIMEOUT');
      assert.match(e.message, /boot\.log/);
      return true;
    });
    // the name is free again and nothing of the failed node is left
    const again = await bootNode({ name: 'too-slow' });
    stateDir = again.stateDir;
    await again.stop();
    assert.equal(existsSync(stateDir), false);
  });

  test('the watchdog cleans up after a test process killed with SIGKILL', async () => {
    const fixture = new URL('./fixtures/orphan-node.js', import.meta.url);
    const child = spawn(process.execPath, [fixture.pathname], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const info = await waitUntil(`the fixture's node (stderr: ${err})`, 30_000, () => {
      const line = out.split('\n')[0];
      return out.includes('\n') && line !== undefined
        ? (JSON.parse(line) as { pid: number; pidNamespace: string; cgroups: string[]; stateDir: string; runDir: string; hubPid: number })
        : undefined;
    });
    assert.ok(processesInNamespace(info.pidNamespace).length > 0);
    child.kill('SIGKILL');
    await exited;
    await waitUntil('the orphaned node to die', 10_000, () => (processesInNamespace(info.pidNamespace).length === 0 ? true : undefined));
    await waitUntil('the hub holder to die', 10_000, () => (existsSync(`/proc/${info.hubPid}`) ? undefined : true));
    await waitUntil('the watchdog to remove cgroups, state and run directory', 15_000, () =>
      info.cgroups.every((d) => !existsSync(d)) && !existsSync(info.stateDir) && !existsSync(info.runDir) ? true : undefined,
    );
  });
});

describe('podman in a node', { timeout: 120_000 }, () => {
  test('a busybox container under a Type=notify unit logs to the node journal with the unit fields', async (t) => {
    const node = await bootNode({ name: 'pods', podman: true });
    try {
      let t0 = Date.now();
      await importBusyboxImage(node, 'localhost/busybox:1');
      t.diagnostic(`busybox image imported in ${Date.now() - t0} ms`);
      const tag = `c${Date.now().toString(36)}`;
      await node.writeFile(
        '/etc/systemd/system/web.service',
        podmanUnit({
          description: 'busybox test container',
          image: 'localhost/busybox:1',
          podmanArgs: ['--network=host', '--name=web'],
          command: ['sh', '-c', `trap 'exit 0' TERM; echo hello-from-${tag}; while :; do sleep 0.2; done`],
          serviceLines: ['LogExtraFields=GLOW_APP=web', `LogExtraFields=GLOW_TEST_TAG=${tag}`],
        }),
      );
      await node.execOk(['systemctl', 'daemon-reload']);
      t0 = Date.now();
      await node.execOk(['systemctl', 'start', 'web.service'], { timeoutMs: 60_000 });
      t.diagnostic(`container unit started in ${Date.now() - t0} ms`);
      assert.equal((await node.execOk(['systemctl', 'is-active', 'web.service'])).stdout.trim(), 'active');

      // conmon keeps the newline in MESSAGE
      const line = await node.waitForJournalEntry(
        [`GLOW_TEST_TAG=${tag}`],
        (e) => journalMessage(e).trimEnd() === `hello-from-${tag}`,
        15_000,
      );
      assert.equal(line['GLOW_APP'], 'web');
      assert.equal(line['_SYSTEMD_UNIT'], 'web.service');
      assert.equal(line['CONTAINER_NAME'], 'web');

      // the container's scope is inside the node's cgroup in every hierarchy (systemd's own and those runc
      // manages itself, like cpu), never at the host's roots (the host check at the end looks there)
      for (const tree of node.cgroups.filter((d) => /\/(systemd|cpu|pids)\//.test(d))) {
        const scopes = readdirSync(tree, { recursive: true }).map(String).filter((p) => p.includes('libpod-'));
        assert.ok(scopes.length > 0, `no libpod scope under ${tree}`);
      }

      t0 = Date.now();
      await node.execOk(['systemctl', 'stop', 'web.service'], { timeoutMs: 60_000 });
      t.diagnostic(`container unit stopped in ${Date.now() - t0} ms`);
      assert.equal((await node.execOk(['podman', 'ps', '-aq'])).stdout.trim(), '');
      // and it starts again (the cidfile of the previous run is gone)
      await node.execOk(['systemctl', 'start', 'web.service'], { timeoutMs: 60_000 });
      assert.equal((await node.execOk(['systemctl', 'is-active', 'web.service'])).stdout.trim(), 'active');
    } finally {
      await node.stop();
    }
  });
});

describe('the host', () => {
  test('is unchanged after all of the above', async () => {
    await stopAll();
    assert.deepEqual(hostSnapshot(), host);
    assert.equal(readFileSync(canary, 'utf8'), 'still here\n');
  });
});
