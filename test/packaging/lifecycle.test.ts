/**
 * The package's life on a real node: a debootstrapped Debian 13 root (Debian's nodejs 20.19) and a Debian 12 root
 * with a Node.js >= 20.19 package (test/packaging/roots.sh), each booted with systemd-nspawn -b (machine.ts).
 * Install → glowd waits for a repository; glow-sync.service publishes one from a directory → two instances, one
 * reaching the other through the proxy and an exposure, the proxy on its native data path (the relay the package
 * carries, built on Debian 12 against Node.js 20's headers: N-API, so Debian 13's own Node.js loads it); upgrade to a newer build of the same tree → glowd
 * restarts, no instance and no proxy does, and a client loop on both proxy listeners sees no connection refused;
 * a restart of the proxy, measured; remove → nothing of Glow runs and no unit glowd generated is left; purge →
 * /etc/glow and /var/lib/glow gone; reinstall → serving again.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseVersion, buildDeb, debName } from './deb.js';
import { bootMachine, root } from './machine.js';
import type { Machine } from './machine.js';
import { mainPids, startLoop, untilServing, writeRepository } from './node-fixture.js';

const T = { timeout: 300_000 };
const NODE = 'node-1';
const INSTANCES = ['glow-proxy.service', 'glow-pong@1.service', 'glow-ping@1.service'];
const LISTENERS = ['127.0.0.1:19000', '127.0.0.1:8080'];

/** The unit files and links under /etc/systemd/system whose name has "glow", as `find` prints them. */
async function glowUnitFiles(m: Machine): Promise<string[]> {
  const r = await m.exec(['find', '/etc/systemd/system', '-name', '*glow*']);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** The proxy's 'proxy started' lines in the journal, oldest first (JSON: dataPath, why when portable). */
async function proxyStarts(m: Machine): Promise<{ dataPath: string; why?: string; pid?: number }[]> {
  const j = await m.exec(['journalctl', '-u', 'glow-proxy.service', '-o', 'cat', '--no-pager']);
  return j.stdout
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"msg":"proxy started"'))
    .map((l) => JSON.parse(l) as { dataPath: string; why?: string; pid?: number });
}

/** Waits for the running proxy's 'proxy started' line and asserts it runs the native data path. */
async function assertNativeProxy(m: Machine): Promise<void> {
  const pid = Number((await m.execOk(['systemctl', 'show', '-P', 'MainPID', 'glow-proxy.service'])).stdout.trim());
  const start = await m.until(`the proxy (PID ${pid}) to log 'proxy started'`, async () => (await proxyStarts(m)).find((l) => l.pid === pid), 30_000);
  assert.equal(start.dataPath, 'native', `the proxy runs the ${start.dataPath} data path: ${start.why ?? ''}`);
}

async function loadedGlowUnits(m: Machine): Promise<string[]> {
  const r = await m.exec(['systemctl', 'list-units', '--all', '--plain', '--no-legend', 'glow*']);
  return r.stdout.split('\n').filter(Boolean).map((l) => l.trim().replace(/\s+/g, ' '));
}

for (const distro of ['trixie', 'bookworm'] as const) {
  describe(`the package on a Debian ${distro === 'trixie' ? 13 : 12} node (${distro})`, () => {
    const v1 = baseVersion();
    const v2 = `${v1}+upgrade1`;
    let m: Machine;
    let debs: { a: string; b: string };

    before(async () => {
      const a = buildDeb(v1);
      const b = buildDeb(v2);
      const binds: [string, string][] = [[dirname(a), '/debs/a'], [dirname(b), '/debs/b']];
      if (distro === 'bookworm') binds.push([dirname(root('nodejs')), '/debs/nodejs']);
      m = await bootMachine({ name: `pkg-${distro}`, root: root(distro), binds });
      debs = { a: `/debs/a/${debName(v1)}`, b: `/debs/b/${debName(v2)}` };
      if (distro === 'bookworm') await m.sh('dpkg -i /debs/nodejs/nodejs_*+glowtest_amd64.deb >/dev/null');
    });
    after(() => m?.stop());

    test('install: glowd is enabled and started; with no repository it says so and waits', T, async (t) => {
      const t0 = Date.now();
      await m.execOk(['dpkg', '-i', debs.a]);
      t.diagnostic(`dpkg -i: ${Date.now() - t0} ms`);
      assert.equal((await m.exec(['systemctl', 'is-enabled', 'glowd'])).stdout.trim(), 'enabled');
      assert.equal((await m.exec(['systemctl', 'is-active', 'glowd'])).stdout.trim(), 'active');
      assert.equal((await m.execOk(['glow', '--version'])).stdout, `${v1}\n`);
      assert.equal((await m.execOk(['glowd', '--version'])).stdout, `${v1}\n`);
      assert.match((await m.execOk(['getent', 'group', 'glow-tls'])).stdout, /^glow-tls:/);
      // The node's own Node.js (Debian 13's nodejs, or Debian 12's stand-in) loads the relay the package carries.
      const versions = await m.execOk(['/usr/bin/node', '-p', 'const a = require("/usr/lib/glow/build/Release/glow_relay.node"); `${process.version} (N-API ${process.versions.napi}, libuv ${process.versions.uv}): ${Object.getOwnPropertyNames(a).length} functions`']);
      t.diagnostic(`the relay loads in ${versions.stdout.trim()}`);
      assert.match(versions.stdout, /: 19 functions$/m);
      await m.until('glowd to report the missing repository', async () => {
        const j = await m.exec(['journalctl', '-u', 'glowd', '-o', 'cat', '--no-pager']);
        return j.stdout.includes('GLOW_E_REPO_MISSING') ? true : undefined;
      }, 30_000);
      // It keeps running: no crash loop.
      await new Promise((r) => setTimeout(r, 3000));
      const show = async (p: string) => (await m.execOk(['systemctl', 'show', '-P', p, 'glowd'])).stdout.trim();
      assert.deepEqual([await show('ActiveState'), await show('NRestarts')], ['active', '0']);
      // Not enabled until a source is set: the sync timer.
      assert.equal((await m.exec(['systemctl', 'is-enabled', 'glow-sync.timer'])).stdout.trim(), 'disabled');
    });

    test('the settings, then glow-sync.service publishes a directory: an instance answers, another reaches it through the proxy', T, async (t) => {
      m.writeFile('/etc/glow/glowd.env', `GLOWD_OPTS="--node ${NODE}"\n`);
      m.writeFile('/etc/glow/sync.env', 'GLOW_SYNC_SOURCE=/srv/glow-repo\n');
      await m.execOk(['systemctl', 'restart', 'glowd']);
      await writeRepository(m, NODE);
      const t0 = Date.now();
      await m.execOk(['systemctl', 'start', 'glow-sync.service']);
      const serving = await untilServing(m);
      t.diagnostic(`glow sync to ping answering with pong: ${Date.now() - t0} ms`);
      assert.ok(serving.ping.pid > 0 && serving.pong.pid > 0);
      const st = await m.execOk(['glow', 'status']);
      assert.match(st.stdout, new RegExp(`node ${NODE}`));
      // The proxy the node runs is /usr/bin/glow: a path that outlives every version.
      assert.match(m.readFile('/etc/systemd/system/glow-proxy.service'), /^ExecStart=\/usr\/bin\/glow proxy /m);
      // On the native data path: ping reached pong through it above.
      await assertNativeProxy(m);
    });

    test('upgrade to a newer build: glowd restarts, no instance or proxy does, no connection is refused', T, async (t) => {
      const before = await mainPids(m, ['glowd.service', ...INSTANCES]);
      const loop = await startLoop(m, LISTENERS);
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      const upgrade = await m.execOk(['dpkg', '-i', debs.b]);
      const upgradeMs = Date.now() - t0;
      assert.match(upgrade.stdout, /glow-proxy\.service keeps the code it started with until it restarts/);
      // The new glowd's first pass: it compares the node with the repository (nothing to do) while the loop runs.
      const glowd = await mainPids(m, ['glowd.service']);
      await m.until('the new glowd to finish its first pass', async () => {
        const j = await m.exec(['journalctl', `_PID=${glowd['glowd.service']}`, '-o', 'cat', '--no-pager']);
        return j.stdout.includes('"reconciling"') ? true : undefined;
      }, 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      const stats = await loop.stop();
      const afterPids = await mainPids(m, ['glowd.service', ...INSTANCES]);
      t.diagnostic(`dpkg -i (upgrade): ${upgradeMs} ms; client loop: ${JSON.stringify(stats)}`);
      assert.notEqual(afterPids['glowd.service'], before['glowd.service'], 'glowd restarted');
      for (const u of INSTANCES) assert.equal(afterPids[u], before[u], `${u} kept its PID`);
      for (const l of LISTENERS) {
        assert.ok(stats[l]!.ok > 50, `${l}: ${stats[l]!.ok} answers`);
        assert.equal(stats[l]!.refused, 0, `${l}: refused`);
        assert.equal(stats[l]!.other, 0, `${l}: ${stats[l]!.errors.join(', ')}`);
      }
      assert.equal((await m.execOk(['glow', '--version'])).stdout, `${v2}\n`);
      assert.equal((await m.execOk(['glowd', '--version'])).stdout, `${v2}\n`);
      // The proxy keeps the code it started with until its next restart (a unit change, a reboot).
      await untilServing(m);
    });

    test('a restart of the proxy (how it takes a new version): the window of refused connections, measured', T, async (t) => {
      const loop = await startLoop(m, LISTENERS);
      await new Promise((r) => setTimeout(r, 1000));
      await m.execOk(['systemctl', 'restart', 'glow-proxy.service']);
      await untilServing(m);
      await new Promise((r) => setTimeout(r, 500));
      const stats = await loop.stop();
      // The new version's proxy runs the native path too (the relay the upgrade installed).
      await assertNativeProxy(m);
      for (const l of LISTENERS) {
        const s = stats[l]!;
        const window = s.firstRefusedAt && s.lastRefusedAt ? s.lastRefusedAt - s.firstRefusedAt : 0;
        t.diagnostic(`proxy restart, ${l}: ${s.refused} connections refused over ${window} ms, ${s.other} other failures (${s.errors.join(', ')}), ${s.ok} answers`);
        // Node.js 20 cannot hand its listening sockets over: the restart refuses connections for a moment. Bounded:
        assert.ok(window < 5000, `${l}: refused for ${window} ms`);
      }
    });

    test('remove: nothing of Glow runs, and no unit glowd generated is left', T, async () => {
      await m.execOk(['apt-get', 'remove', '-y', 'glow']);
      const left = await loadedGlowUnits(m);
      // The enablement link of glowd.service stays until purge, as Debian keeps every service's (its unit file is
      // gone: "not-found", nothing runs).
      assert.deepEqual(left.filter((l) => !/^glowd\.service not-found inactive dead/.test(l)), [], left.join('\n'));
      assert.deepEqual(await glowUnitFiles(m), ['/etc/systemd/system/multi-user.target.wants/glowd.service']);
      for (const l of LISTENERS) {
        const [h, p] = l.split(':');
        const r = await m.exec(['/usr/bin/node', '-e', `require('net').connect(${p}, '${h}').on('connect', () => process.exit(0)).on('error', (e) => { console.log(e.code); process.exit(1); })`]);
        assert.equal(r.stdout.trim(), 'ECONNREFUSED', `${l} is closed`);
      }
      assert.ok(!m.exists('/usr/bin/glow') && !m.exists('/usr/lib/glow'));
      assert.ok(m.exists('/etc/glow/glowd.env') && m.exists('/var/lib/glow/repo'), 'settings and state stay until purge');
    });

    test('purge: /etc/glow and /var/lib/glow are gone, and every unit', T, async () => {
      await m.execOk(['apt-get', 'purge', '-y', 'glow']);
      assert.ok(!m.exists('/etc/glow'), '/etc/glow');
      assert.ok(!m.exists('/var/lib/glow'), '/var/lib/glow');
      assert.ok(!m.exists('/run/glow'), '/run/glow');
      assert.deepEqual(await glowUnitFiles(m), []);
      assert.deepEqual(await loadedGlowUnits(m), []);
    });

    test('reinstall: serving again', T, async () => {
      await m.execOk(['dpkg', '-i', debs.b]);
      m.writeFile('/etc/glow/glowd.env', `GLOWD_OPTS="--node ${NODE}"\n`);
      m.writeFile('/etc/glow/sync.env', 'GLOW_SYNC_SOURCE=/srv/glow-repo\n');
      await m.execOk(['systemctl', 'restart', 'glowd']);
      await m.execOk(['systemctl', 'start', 'glow-sync.service']);
      await untilServing(m);
      await assertNativeProxy(m);
    });
  });
}
