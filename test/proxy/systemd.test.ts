/**
 * The proxy under a real systemd (a node booted by the harness), run by the very unit glowd renders
 * (src/render/units.ts: Type=notify, NotifyAccess=all, DynamicUser, RuntimeDirectory, ExecReload=kill -HUP):
 * `systemctl start` returns once the proxy said READY=1 through systemd-notify, `systemctl reload` changes its
 * listeners in place (same main PID), the admin socket answers root in /run/glow-proxy, and `systemctl stop` ends
 * it cleanly.
 */
import { PROXY_UNIT } from '../../src/base/names.js';
import { PROXY_ADMIN_SOCKET, routesFile } from '../../src/base/paths.js';
import type { NodePaths } from '../../src/base/paths.js';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NodePlan } from '../../src/plan/node-plan.js';
import { renderUnits } from '../../src/render/units.js';
import { bootNode, stopAll, type SystemdNode } from '../harness/systemd-node.js';
import { group, listener, routes, upstream } from './helpers.js';

const ENTRY = fileURLToPath(new URL('./fixtures/glow-proxy.js', import.meta.url));
const NODE = process.execPath;

after(stopAll);

const ECHO = `require('net').createServer((s) => s.on('data', (d) => s.write('up:' + d))).listen(Number(process.argv[1]), '127.0.0.1')`;

/** One line through `port` inside the node. */
async function ask(node: SystemdNode, port: number, line: string): Promise<string> {
  const script = `const s = require('net').connect(${port}, '127.0.0.1', () => s.write(${JSON.stringify(line)}));
s.setTimeout(5000, () => { console.log('timeout'); process.exit(2); });
s.on('data', (d) => { process.stdout.write(d); s.end(); }); s.on('error', (e) => { console.log(e.code); process.exit(1); });`;
  const r = await node.exec([NODE, '-e', script]);
  return r.stdout.trim();
}

async function adminGet(node: SystemdNode, path: string): Promise<string> {
  const script = `require('http').get({ socketPath: ${JSON.stringify(PROXY_ADMIN_SOCKET)}, path: ${JSON.stringify(path)} }, (r) => r.pipe(process.stdout)).on('error', (e) => { console.error(e.message); process.exit(1); });`;
  return (await node.execOk([NODE, '-e', script])).stdout;
}

describe('glow-proxy.service under systemd', () => {
  test('start waits for READY, reload changes listeners in place, the admin socket answers, stop is clean', async () => {
    const node = await bootNode({ name: 'proxy-a' });
    // The unit's SupplementaryGroups= (glowd creates the group at start; the package's sysusers.d file does too).
    await node.execOk(['systemd-sysusers', '-'], { input: 'g glow-tls -\n' });
    node.spawn([NODE, '-e', ECHO, '7001']);
    node.spawn([NODE, '-e', ECHO, '7002']);
    const env: NodePaths = { stateDir: '/var/lib/glow', glowCommand: [NODE, ENTRY], podman: '/usr/bin/podman' };
    const plan = { node: 'proxy-a', address: '127.0.0.1', revision: 'test', instances: [], listeners: [], exposures: [], files: [], metricsListen: '127.0.0.1:9464', stopGraceMs: 1000 } as unknown as NodePlan;
    const unit = renderUnits(plan, env).files.get(PROXY_UNIT)!;
    assert.match(unit, /Type=notify/);
    const file = routesFile(env);
    const write = (r: unknown) => node.writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
    await write(routes(listener(15000, 'tcp', [group('echo:7001', 'tcp', [upstream('127.0.0.1', 7001, 'proxy-a')])])));
    await node.writeFile(`/etc/systemd/system/${PROXY_UNIT}`, unit);
    await node.execOk(['systemctl', 'daemon-reload']);

    // `systemctl start` of a Type=notify unit returns when READY=1 arrived (or fails on the start timeout).
    await node.execOk(['systemctl', 'start', PROXY_UNIT], { timeoutMs: 60_000 });
    const show = async () => (await node.execOk(['systemctl', 'show', '-p', 'ActiveState', '-p', 'SubState', '-p', 'MainPID', '-p', 'StatusText', PROXY_UNIT])).stdout;
    const first = await show();
    assert.match(first, /ActiveState=active/);
    assert.match(first, /SubState=running/);
    assert.match(first, /StatusText=serving: 1 listeners bound/);
    const pid = /MainPID=(\d+)/.exec(first)![1];
    assert.equal(await ask(node, 15000, 'hello'), 'up:hello');

    // Reload: a second listener, through ExecReload (SIGHUP), without a restart.
    await write(
      routes(
        listener(15000, 'tcp', [group('echo:7001', 'tcp', [upstream('127.0.0.1', 7001, 'proxy-a')])]),
        listener(15001, 'tcp', [group('echo:7002', 'tcp', [upstream('127.0.0.1', 7002, 'proxy-a')])]),
      ),
    );
    await node.execOk(['systemctl', 'reload', PROXY_UNIT]);
    let answer = '';
    for (let i = 0; i < 100 && answer !== 'up:again'; i++) {
      answer = await ask(node, 15001, 'again');
      if (answer !== 'up:again') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(answer, 'up:again');
    const second = await show();
    assert.equal(/MainPID=(\d+)/.exec(second)![1], pid, 'reloaded in place');

    const metrics = await adminGet(node, '/metrics');
    assert.match(metrics, /^glow_proxy_reloads_total\{result="ok"\} 1$/m);
    assert.match(metrics, /^glow_proxy_connections_opened_total\{listener="15000",service="echo:7001"\} 1$/m);
    const status = JSON.parse(await adminGet(node, '/status')) as { frontends: { key: string; bound: boolean }[] };
    assert.deepEqual(status.frontends.map((f) => [f.key, f.bound]).sort(), [['tcp 127.0.0.1:15000', true], ['tcp 127.0.0.1:15001', true]]);

    await node.execOk(['systemctl', 'stop', PROXY_UNIT], { timeoutMs: 60_000 });
    assert.match(await show(), /ActiveState=inactive/);
    const log = await node.journal(['-u', PROXY_UNIT]);
    assert.match(log, /"msg":"stopped"/);
    assert.doesNotMatch(log, /"level":50/, 'no error in the log');
  });
});
