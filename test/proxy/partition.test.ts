/**
 * A vanished peer on a real network: three network namespaces (no systemd: a proxy node and two app nodes) on a
 * hub (test/harness/hub.ts), the proxy as its own process (`glow proxy`, test/proxy/fixtures/glow-proxy.ts) with a
 * loopback listener to a service on node2 and node3. node3's link is cut at the hub while requests are in flight
 * on kept-alive connections to it: nothing comes back, no reset, no FIN — a partition.
 *
 * Proves: the upstream connections carry TCP keep-alive probes (`ss -o` shows their timer); a GET waiting on
 * node3 is failed over to node2 and a POST is answered 502, both as soon as node3's active check finds it down,
 * long before the response timeout and the client's own; node3 is back in traffic once the partition heals and
 * its check passes again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ProxyStatus } from '../../src/proxy/proxy.js';
import { createHub, stopAll as stopHarness, type Hub } from '../harness/systemd-node.js';
import { adminGet, group, listener, routes, sample, until, upstream } from './helpers.js';

const ENTRY = fileURLToPath(new URL('./fixtures/glow-proxy.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'glow-partition-'));
const children: ChildProcess[] = [];

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
  await stopHarness();
  rmSync(work, { recursive: true, force: true });
});

/** An app: GET /health is 200; /slow is held unanswered when argv[2] is `hold` (and logged), else answered. */
const APP = `
const http = require('http');
const [name, hold] = [process.argv[1], process.argv[2] === 'hold'];
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url === '/slow' && hold) { console.log('got ' + req.method + ' ' + req.url); return; }
    res.end(name);
  });
});
server.keepAliveTimeout = 30000;
server.listen(8080, '0.0.0.0', () => console.log('listening'));
`;

/** The client: a kept-alive GET, then a GET /slow and a POST /slow at once; prints each result as a JSON line. */
const CLIENT = `
const http = require('http');
const port = Number(process.argv[1]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
const ask = (method, path) => new Promise((resolve) => {
  const t0 = Date.now();
  const req = http.request({ host: '127.0.0.1', port, method, path, agent, timeout: 30000 }, (res) => {
    let body = ''; res.setEncoding('utf8'); res.on('data', (d) => (body += d));
    res.on('end', () => resolve({ status: res.statusCode, body: body.trim(), ms: Date.now() - t0 }));
  });
  req.on('timeout', () => req.destroy(new Error('client timeout')));
  req.on('error', (e) => resolve({ status: 0, body: e.message, ms: Date.now() - t0 }));
  req.end(method === 'POST' ? 'payload' : undefined);
});
(async () => {
  console.log('warm ' + JSON.stringify(await ask('GET', '/')));
  const [get, post] = await Promise.all([ask('GET', '/slow'), ask('POST', '/slow')]);
  console.log('done ' + JSON.stringify({ get, post }));
  agent.destroy();
})();
`;

/** GETs every 100 ms until node3 answers or 15 s pass; prints how many it took. */
const RETURN = `
const http = require('http');
const port = Number(process.argv[1]);
const end = Date.now() + 15000;
const once = () => new Promise((resolve) => {
  const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 }, (res) => {
    let body = ''; res.setEncoding('utf8'); res.on('data', (d) => (body += d)); res.on('end', () => resolve(body.trim()));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => resolve('error'));
});
(async () => {
  for (let n = 1; Date.now() < end; n++) {
    if ((await once()) === 'node3') { console.log('back ' + n); return; }
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log('never');
})();
`;

function inNs(pid: number, argv: string[]): { child: ChildProcess; out: () => string } {
  const env = { ...process.env };
  delete env['NOTIFY_SOCKET'];
  const child = spawn('nsenter', ['-t', String(pid), '-n', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

function run(pid: number, argv: string[]): Promise<string> {
  const p = inNs(pid, argv);
  return new Promise((resolve) => p.child.once('exit', () => resolve(p.out())));
}

describe('a partitioned upstream', () => {
  test('requests in flight on kept-alive connections to it are failed over or answered at once; it comes back', { timeout: 120_000 }, async (t) => {
    const net: Hub = await createHub('fo-net');
    const [px, n2, n3] = await Promise.all([createHub('fo-proxy'), createHub('fo-node2'), createHub('fo-node3')]);
    await net.attach(px.pid, net.allocateAddress());
    const p2 = await net.attach(n2.pid, net.allocateAddress());
    const p3 = await net.attach(n3.pid, net.allocateAddress());

    const app2 = inNs(n2.pid, [process.execPath, '-e', APP, 'node2']);
    const app3 = inNs(n3.pid, [process.execPath, '-e', APP, 'node3', 'hold']);
    await until('the apps listen', () => app2.out().includes('listening') && app3.out().includes('listening'));

    // node3 is local here, so it is tried first; node2 takes what fails over.
    const port = 18080;
    const check = { type: 'http' as const, path: '/health', intervalMs: 500, timeoutMs: 300, rise: 1, fall: 2 };
    const file = join(work, 'routes.json');
    writeFileSync(file, JSON.stringify(routes(listener(port, 'http', [group('web:8080', 'http', [upstream(p3.address, 8080, 'node3', true), upstream(p2.address, 8080, 'node2', false)], check)], { responseTimeoutMs: 20_000 }))));
    const admin = join(work, 'admin.sock');
    inNs(px.pid, [process.execPath, ENTRY, '--routes', file, '--admin', admin]);
    const status = async () => JSON.parse((await adminGet(admin, '/status')).body) as ProxyStatus;
    const node3 = async () => (await status()).frontends[0]!.routes[0]!.groups[0]!.upstreams.find((u) => u.node === 'node3')!;
    await until('the proxy is up and node3 checked', async () => (await node3().catch(() => null))?.healthy === true, 20_000);

    const client = inNs(px.pid, [process.execPath, '-e', CLIENT, String(port)]);
    await until('node3 holds a GET and a POST', () => app3.out().includes('got GET /slow') && app3.out().includes('got POST /slow'), 20_000);
    assert.match(client.out(), /warm \{"status":200,"body":"node3"/, 'the first GET went to node3 (local)');

    const ss = await run(px.pid, ['ss', '-tnoH', 'state', 'established', 'dst', `${p3.address}:8080`]);
    assert.match(ss, /timer:\(keepalive,/, `upstream connections have keep-alive probes:\n${ss}`);

    await net.setLinkUp(p3, false); // the partition
    await until('the client has its answers', () => client.out().includes('done '), 40_000);
    const done = JSON.parse(client.out().split('done ')[1]!.trim()) as { get: { status: number; body: string; ms: number }; post: { status: number; body: string; ms: number } };
    t.diagnostic(JSON.stringify(done));
    assert.equal(done.get.status, 200);
    assert.equal(done.get.body, 'node2', 'the GET in flight on node3 was failed over to node2');
    assert.equal(done.post.status, 502, 'the POST in flight was answered, not sent again');
    for (const r of [done.get, done.post]) assert.ok(r.ms < 15_000, `answered before the 20 s response timeout and the client's 30 s (${r.ms} ms)`);

    const text = (await adminGet(admin, '/metrics')).body;
    const l = { listener: String(port), service: 'web:8080' };
    assert.equal(sample(text, 'glow_proxy_http_upstream_lost_total', { ...l, upstream: `${p3.address}:8080`, node: 'node3' }), 2);
    assert.equal(sample(text, 'glow_proxy_retries_total', { ...l, reason: 'upstream_lost' }), 1);
    assert.equal((await node3()).healthy, false);

    await net.setLinkUp(p3, true); // healed
    await until('node3 is up again', async () => (await node3()).healthy, 20_000);
    const back = await run(px.pid, [process.execPath, '-e', RETURN, String(port)]);
    assert.match(back, /^back \d+/, `node3 takes traffic again: ${back}`);
  });
});
