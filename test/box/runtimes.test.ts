/**
 * `glow up` with both runtimes: a podman app (busybox httpd, its config directory mounted read-only) behind an
 * exposure, and an exec app from an artifact tarball. Run inside a node of the test harness for its own network,
 * /tmp and podman storage; `glow up` itself does not talk to that node's systemd (a laptop has none to drive).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { DevBoxStatus } from '../../src/box/devbox.js';
import { eventually, GLOW, NODE, Repo } from '../systemd/fixture.js';
import { bootNode, importBusyboxImage, stopAll } from '../harness/systemd-node.js';
import type { SystemdNode } from '../harness/systemd-node.js';

after(stopAll);

const ENV = { XDG_STATE_HOME: '/tmp/state', XDG_RUNTIME_DIR: '/tmp/run', NO_COLOR: '1' };

describe('glow up: podman and exec (tarball) runtimes', { timeout: 180_000 }, () => {
  let node: SystemdNode;
  let repo: Repo;
  let up: ReturnType<SystemdNode['spawn']>;
  let out = '';

  const get = async (url: string) => {
    const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(2000) }).then(async (r) => process.stdout.write(r.status + ' ' + (await r.text()))).catch((e) => { console.error(e.cause?.code ?? e.message); process.exit(1); });`;
    return (await node.execOk([NODE, '-e', script], { timeoutMs: 5000 })).stdout;
  };
  const status = async () => JSON.parse((await node.execOk([NODE, GLOW, 'status', '--json'], { env: ENV })).stdout) as DevBoxStatus;

  before(async () => {
    repo = new Repo('glow-devbox-rt-');
    repo.artifact('api', '1.0');
    repo.write('glow.yaml', `artifacts: ${repo.artifacts}\n`);
    repo.write('nodes/n.yaml', 'address: 10.77.0.31\n');
    repo.write('apps/box.yaml', 'image: localhost/busybox\nversion: "1"\ncommand: ["sh", "-c", "echo box $GLOW_INSTANCE on $GLOW_NODE; exec httpd -f -v -p 8081 -h /tmp/box"]\nprovides: [8081/http]\nconfig: { source: files/box/index.html, path: /tmp/box/index.html }\nstop_timeout: 5s\n');
    repo.write('apps/api.yaml', 'image: api\nversion: "1.0"\nruntime: exec\ncommand: [bin/server, "9000"]\nprovides: [9000/tcp]\nrequires: [box:8081 -> 18081]\n');
    repo.write('exposures/www.yaml', 'service: box:8081\nport: 8090\nnodes: [n]\n');
    repo.write('deployments/box.yaml', 'app: box\nnode: n\n');
    repo.write('deployments/api.yaml', 'app: api\nnode: n\n');
    // An app whose config directory the box cannot create: the host's file system is read-only in the node.
    repo.write('apps/ro.yaml', 'image: api\nversion: "1.0"\nruntime: exec\ncommand: [bin/server]\nconfig: { source: files/box/index.html, path: /opt/ro/ro.conf }\n');
    repo.write('deployments/ro.yaml', 'app: ro\nnode: n\n');
    repo.write('files/box/index.html', 'first\n');
    node = await bootNode({ name: 'node-up', binds: [repo.root], podman: true });
    await importBusyboxImage(node, 'localhost/busybox:1');
    up = node.spawn([NODE, GLOW, 'up', repo.dir], { env: ENV });
    up.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    up.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(async () => /Ctrl-C stops everything/.test(out), `the banner:\n${out}`, 60_000);
  });

  after(async () => {
    if (up && up.exitCode === null) up.kill('SIGKILL');
    repo?.cleanup();
  });

  test('the podman instance serves its config file through the exposure; the exec one runs from the tarball', async () => {
    assert.equal(await eventually(async () => (await get('http://127.0.0.1:8090/index.html')).startsWith('200') && get('http://127.0.0.1:8090/index.html'), `box through www:\n${out}`, 60_000), '200 first\n');
    const api = JSON.parse((await eventually(async () => get('http://127.0.0.1:9000/'), 'api')).slice(4)) as { app: string; node: string; instance: string };
    assert.deepEqual([api.app, api.node, api.instance], ['api', 'devbox', '1']);
    // api's listener for box: the proxy's second hop on the box.
    assert.equal(await get('http://127.0.0.1:18081/index.html'), '200 first\n');
    assert.match(out, /box#1 +│ box 1 on devbox/);
    const st = await status();
    assert.deepEqual(st.instances.map((i) => [i.app, i.activeState, i.subState]).sort(), [
      ['api', 'active', 'running'],
      ['box', 'active', 'running'],
      ['ro', 'inactive', 'blocked'],
    ]);
    const ps = await node.execOk(['podman', 'ps', '--format', '{{.Names}}']);
    assert.equal(ps.stdout.trim(), 'glow-box-1');
  });

  test('a config path the box cannot write: a clear error, that app alone not started', async () => {
    assert.match(out, /GLOW_E_DEVBOX_PATH cannot write the config file \/opt\/ro\/ro\.conf: \/opt is on a read-only file system; the dev box writes config files at their real path, so give the app a path it can write/);
    assert.match(out, /ro is not started \(GLOW_E_DEVBOX_PATH, said above\)/);
    assert.match(out, /the box writes \/opt\/ro\/ro\.conf as soon as \/opt is writable by root \(it looks twice a second\)/);
    const st = await status();
    assert.deepEqual(st.applyErrors.map((e) => [e.code, e.unit]), [['GLOW_E_DEVBOX_PATH', 'ro']]);
    assert.equal((await node.exec([NODE, GLOW, 'status'], { env: ENV })).code, 1, 'glow status exits 1 on errors');
  });

  test('a config change restarts the container (on_change: restart) and the new file is served', async () => {
    const before = (await status()).instances.find((i) => i.app === 'box')!.mainPid;
    repo.write('files/box/index.html', 'second\n');
    await eventually(async () => (await get('http://127.0.0.1:8090/index.html')) === '200 second\n', `the new file:\n${out}`, 60_000);
    assert.match(out, /restarting box#1: its config file \/tmp\/box\/index\.html changed \(on_change: restart\)/);
    assert.notEqual((await status()).instances.find((i) => i.app === 'box')!.mainPid, before);
  });

  test('Ctrl-C stops the container and the exec instance; nothing is left', async () => {
    const gone = new Promise((r) => up.once('exit', r));
    // `up` is nsenter, which forwards no signal: Ctrl-C to glow up itself, nsenter's child.
    const pids = readFileSync(`/proc/${up.pid}/task/${up.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    assert.equal(pids.length, 1);
    process.kill(pids[0]!, 'SIGINT');
    await Promise.race([gone, new Promise((_, reject) => setTimeout(() => reject(new Error(`glow up did not stop:\n${out}`)), 20_000))]);
    assert.match(out, /glow +│ stopped/);
    assert.equal((await node.execOk(['podman', 'ps', '-a', '--format', '{{.Names}}'])).stdout.trim(), '', 'no container left');
    const procs = (await node.execOk(['ps', '-eo', 'args'])).stdout;
    assert.doesNotMatch(procs, /server\.cjs|httpd|conmon|glow\.js up/, procs);
  });
});
