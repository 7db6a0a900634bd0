/**
 * The Ansible role (ansible/roles/glow, ansible/site.yml): ansible-lint --profile production, then the role applied
 * inside a booted Debian 12 machine (its own ansible-core, `-c local`), as a controller would: the package from a
 * .deb (glow_package_file), Node.js >= 20.19 from a local flat apt repository standing for NodeSource
 * (glow_nodejs_source), the repository from a git repository inside the machine. Check mode on the fresh node,
 * a first run, a second run with nothing changed, check mode again with nothing changed, and then the node is
 * synced from git and serving.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildDeb } from './deb.js';
import { bootMachine, root, ROOT } from './machine.js';
import type { Machine } from './machine.js';
import { untilServing, writeRepository } from './node-fixture.js';

const T = { timeout: 300_000 };
const NODE = 'node-1';

test('ansible-lint --profile production passes on ansible/', T, () => {
  const r = spawnSync('ansible-lint', ['--profile', 'production', '--nocolor'], { cwd: join(ROOT, 'ansible'), encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1', ANSIBLE_LOCAL_TEMP: join(tmpdir(), 'glow-ansible-lint') } });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(`${r.stdout}${r.stderr}`, /Passed with production profile: 0 failure\(s\), 0 warning\(s\)/);
});

describe('the role on a Debian 12 node', () => {
  let m: Machine;
  let apt = '';
  let deb = '';

  before(async () => {
    deb = buildDeb();
    // The Node.js source: a flat repository (Suites: ./) with this machine's Node.js, as NodeSource's would be.
    apt = mkdtempSync(join(tmpdir(), 'glow-apt-'));
    copyFileSync(root('nodejs'), join(apt, basename(root('nodejs'))));
    writeFileSync(join(apt, 'Packages'), execFileSync('dpkg-scanpackages', ['-m', '.'], { cwd: apt, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    m = await bootMachine({ name: 'role-bookworm', root: root('bookworm'), binds: [[join(ROOT, 'ansible'), '/srv/ansible'], [apt, '/srv/apt'], [dirname(deb), '/srv/debs']] });
    // The config repository, in a git repository inside the machine.
    await writeRepository(m, NODE, '/srv/work');
    await m.sh('cd /srv/work && git init -q -b main && git add -A && git -c user.name=t -c user.email=t@example.org commit -qm first && git clone -q --bare /srv/work /srv/git/glow.git');
    m.writeFile(
      '/srv/vars.yml',
      [
        '# As root on the node itself: no sudo',
        'ansible_become: false',
        `glow_package_file: /srv/debs/${basename(deb)}`,
        'glow_nodejs_source: { uris: "file:/srv/apt", suites: "./", trusted: true }',
        'glow_nodejs_source_key_url: ""',
        'glow_sync_source: file:///srv/git/glow.git',
        'glow_sync_ref: main',
        'glow_sync_interval: 10s',
        'glow_metrics_listen: 127.0.0.1:9464',
        'glow_sync_deploy_key: "-----BEGIN OPENSSH PRIVATE KEY-----\\nnot a real key: no_log keeps it out of the output\\n-----END OPENSSH PRIVATE KEY-----"',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await m?.stop();
    rmSync(apt, { recursive: true, force: true });
  });

  async function play(...args: string[]): Promise<{ changed: number; out: string }> {
    const r = await m.exec(['ansible-playbook', '-i', `${NODE},`, '-c', 'local', '-e', '@/srv/vars.yml', '/srv/ansible/site.yml', ...args], {
      timeoutMs: 240_000,
      env: { ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ANSIBLE_RETRY_FILES_ENABLED: '0', ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3' },
    });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.code, 0, out);
    const recap = new RegExp(`^${NODE}\\s*: ok=\\d+\\s+changed=(\\d+)\\s+unreachable=0\\s+failed=0`, 'm').exec(r.stdout);
    assert.ok(recap, out);
    assert.ok(!out.includes('not a real key'), 'the deploy key is never printed');
    return { changed: Number(recap[1]), out };
  }

  test('check mode on the fresh node', T, async (t) => {
    const t0 = Date.now();
    const r = await play('--check', '--diff');
    t.diagnostic(`--check --diff: changed=${r.changed}, ${Date.now() - t0} ms`);
    assert.ok(r.changed > 0);
    assert.ok(!m.exists('/usr/bin/glow') && !m.exists('/etc/glow'), 'check mode changed nothing');
  });

  test('the first run installs and configures; the node syncs from git and serves', T, async (t) => {
    const t0 = Date.now();
    const r = await play();
    t.diagnostic(`first run: changed=${r.changed}, ${Date.now() - t0} ms`);
    assert.ok(r.changed > 0);
    assert.match((await m.execOk(['node', '--version'])).stdout, /^v(20\.(19|[2-9]\d)|2[1-9])\./);
    assert.equal((await m.exec(['systemctl', 'is-enabled', 'glow-sync.timer'])).stdout.trim(), 'enabled');
    assert.equal((await m.exec(['systemctl', 'is-active', 'glow-sync.timer', 'glowd'])).stdout.trim(), 'active\nactive');
    assert.match(m.readFile('/etc/glow/glowd.env'), /^GLOWD_OPTS="--node node-1 --metrics-listen 127\.0\.0\.1:9464"$/m);
    assert.match((await m.execOk(['systemctl', 'show', '-P', 'TimersMonotonic', 'glow-sync.timer'])).stdout, /OnUnitInactiveUSec.*10s/);
    await untilServing(m);
    // The .deb the role installed (glow_<version>_<arch>.deb) brought the native relay: the proxy runs on it.
    const started = await m.until('the proxy to log \'proxy started\'', async () => {
      const j = await m.exec(['journalctl', '-u', 'glow-proxy.service', '-o', 'cat', '--no-pager']);
      return j.stdout.split('\n').find((l) => l.includes('"msg":"proxy started"'));
    }, 30_000);
    assert.match(started, /"dataPath":"native"/);
  });

  test('a second run changes nothing and restarts nothing', T, async () => {
    const glowd = (await m.execOk(['systemctl', 'show', '-P', 'MainPID', 'glowd'])).stdout.trim();
    const r = await play();
    assert.equal(r.changed, 0, r.out);
    assert.equal((await m.execOk(['systemctl', 'show', '-P', 'MainPID', 'glowd'])).stdout.trim(), glowd, 'glowd was not restarted');
  });

  test('check mode again: nothing would change', T, async () => {
    const r = await play('--check', '--diff');
    assert.equal(r.changed, 0, r.out);
  });

  test('synced from the git repository: the commit is the revision glowd applied; glow status shows it running', T, async () => {
    const head = (await m.execOk(['git', '-C', '/srv/git/glow.git', 'rev-parse', 'main'])).stdout.trim();
    // glow sync's state (docs/operations.md, "The state file") and the link it switched.
    const state = JSON.parse(m.readFile('/var/lib/glow/sync/state.json')) as { source: string; kind: string; ref: string; commit: string; lastResult: string };
    assert.deepEqual([state.source, state.kind, state.ref, state.commit], ['file:///srv/git/glow.git', 'git', 'main', head]);
    assert.match(state.lastResult, /^(published|unchanged)$/);
    const link = (await m.execOk(['readlink', '/var/lib/glow/repo'])).stdout.trim();
    assert.ok(link.endsWith(head.slice(0, 12)), link);
    // glowd applied that tree: glow status's revision is the content of /var/lib/glow/repo now.
    const text = (await m.execOk(['glow', 'status'])).stdout;
    const status = JSON.parse((await m.execOk(['glow', 'status', '--json'])).stdout) as { revision?: unknown; errors?: unknown[] };
    const check = (await m.execOk(['glow', 'check', '/var/lib/glow/repo', '--json'])).stdout;
    const revision = (JSON.parse(check) as { revision: string }).revision;
    assert.ok(JSON.stringify(status).includes(revision), `glow status shows revision ${revision}:\n${text}`);
    assert.match(text, new RegExp(`node ${NODE}`));
    assert.match(text, /ping #1 .*active \(running\)/);
    assert.match(text, /pong #1 .*active \(running\)/);
  });
});
