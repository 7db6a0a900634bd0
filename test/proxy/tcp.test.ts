/**
 * The TCP data path with real upstream servers and real clients on 127.0.0.x: relaying and half-closes, an
 * instance killed under load, fallback, refusal, a blackholed instance, and the metrics that say so, read from
 * the admin socket as glowd reads them.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { Proxy } from '../../src/proxy/proxy.js';
import { adminGet, blackhole, deadPort, exchange, freePort, group, httpGet, httpUpstream, lineEcho, listener, proxyUnderTest, routes, sample, testLog, until, upstream } from './helpers.js';

const fx = proxyUnderTest('tcp');
const { adminPath, metrics } = fx;

describe('tcp', () => {
  test('relays both ways, passes a half-close on, and counts bytes at close', async () => {
    const a = await lineEcho('127.0.0.2', 'a');
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'tcp', [group('echo:1', 'tcp', [upstream('127.0.0.2', a.port)])])));
    assert.equal(await exchange(port, 'hello'), 'a:hello');

    // The client writes and half-closes at once; the upstream answers after the end and closes: all of it arrives.
    const got = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      let buf = '';
      s.setEncoding('utf8');
      s.on('connect', () => s.end('one\ntwo\n'));
      s.on('data', (d: string) => (buf += d));
      s.on('end', () => resolve(buf));
      s.on('error', reject);
    });
    assert.equal(got, 'a:one\na:two\n');

    await until('both connections closed', async () => sample(await metrics(), 'glow_proxy_connections_closed_total', { listener: String(port), service: 'echo:1' }) === 2);
    const text = await metrics();
    const l = { listener: String(port), service: 'echo:1' };
    assert.equal(sample(text, 'glow_proxy_connections_opened_total', l), 2);
    assert.equal(sample(text, 'glow_proxy_connections_active', l), 0);
    assert.equal(sample(text, 'glow_proxy_received_bytes_total', l), 'hello\n'.length + 'one\ntwo\n'.length);
    assert.equal(sample(text, 'glow_proxy_sent_bytes_total', l), 'a:hello\n'.length + 'a:one\na:two\n'.length);
    assert.equal(sample(text, 'glow_proxy_upstream_connections_total', { ...l, upstream: `127.0.0.2:${a.port}`, node: 'node-b' }), 2);
  });

  test('clients that close before the upstream connection is up are closed too (nothing is left open)', async () => {
    const a = await lineEcho('127.0.0.11', 'a');
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'tcp', [group('early:1', 'tcp', [upstream('127.0.0.11', a.port)])])));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        new Promise<void>((resolve) => {
          const s = connect({ host: '127.0.0.1', port }, () => (i % 2 ? s.end() : s.destroy()));
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.resume();
        }),
      ),
    );
    const l = { listener: String(port), service: 'early:1' };
    await until('every connection closed', async () => sample(await metrics(), 'glow_proxy_connections_closed_total', l) === 20);
    assert.equal(sample(await metrics(), 'glow_proxy_connections_active', l), 0);
    await until('the upstream has no connection left', () => a.sockets.size === 0);
  });

  test('a listener that cannot bind is reported, the others serve, and it binds once the port is free', async () => {
    const own = new Proxy({ log: testLog, bindRetryMs: 50 });
    try {
      const a = await lineEcho('127.0.0.12', 'a');
      const blocker = await lineEcho('127.0.0.1', 'squatter');
      const free = await freePort();
      const r = await own.apply(
        routes(
          listener(blocker.port, 'tcp', [group('taken:1', 'tcp', [upstream('127.0.0.12', a.port)])]),
          listener(free, 'tcp', [group('free:1', 'tcp', [upstream('127.0.0.12', a.port)])]),
        ),
      );
      assert.deepEqual(r.failed, [{ key: `tcp 127.0.0.1:${blocker.port}`, error: 'EADDRINUSE' }]);
      assert.equal(own.ready, false);
      assert.equal(await exchange(free, 'x'), 'a:x');
      assert.equal(sample(await own.metrics.text(), 'glow_proxy_frontend_up', { frontend: `tcp 127.0.0.1:${blocker.port}` }), 0);
      await blocker.kill();
      await until('the listener is bound', () => own.ready);
      assert.equal(await exchange(blocker.port, 'y'), 'a:y');
    } finally {
      await own.stop(100);
    }
  });

  test('an instance killed under load: no connection started after the kill fails, the dead one is ejected', async () => {
    const a = await lineEcho('127.0.0.3', 'a');
    const b = await lineEcho('127.0.0.4', 'b');
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'tcp', [group('kill:1', 'tcp', [upstream('127.0.0.3', a.port), upstream('127.0.0.4', b.port)])])));
    const TOTAL = 600;
    const CONCURRENCY = 8;
    let started = 0;
    let killedAt = Infinity; // index of the first exchange started after the kill completed
    let openAtKill = 0;
    const failures: { index: number; error: string }[] = [];
    const servedBy = { a: 0, b: 0 };
    const worker = async () => {
      while (started < TOTAL) {
        const index = started++;
        if (index === 150) {
          openAtKill = await a.kill();
          killedAt = started;
        }
        try {
          const answer = await exchange(port, `n${index}`);
          servedBy[answer.startsWith('a:') ? 'a' : 'b'] += 1;
        } catch (e) {
          failures.push({ index, error: (e as Error).message });
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const late = failures.filter((f) => f.index >= killedAt);
    assert.deepEqual(late, [], 'connections started after the kill must all succeed');
    assert.ok(failures.length <= openAtKill, `only connections open on the killed instance may fail: ${failures.length} > ${openAtKill}`);
    assert.ok(servedBy.a > 0 && servedBy.b > 0, `both served before the kill: ${JSON.stringify(servedBy)}`);

    const text = await metrics();
    const dead = { listener: String(port), service: 'kill:1', upstream: `127.0.0.3:${a.port}`, node: 'node-b' };
    const connectFailures = sample(text, 'glow_proxy_upstream_connect_failures_total', dead);
    assert.ok(connectFailures >= 1, 'the dead instance was tried and failed');
    // Every failed connect was retried on the other instance: none reached a client.
    assert.equal(sample(text, 'glow_proxy_retries_total', { listener: String(port), service: 'kill:1', reason: 'connect_failure' }), connectFailures);
    assert.equal(sample(text, 'glow_proxy_refused_total', { listener: String(port), service: 'kill:1', reason: 'connect_failed' }), 0);
    assert.equal(sample(text, 'glow_proxy_upstream_ejections_total', { service: 'kill:1', upstream: `127.0.0.3:${a.port}`, node: 'node-b' }), 1);
    assert.equal(sample(text, 'glow_proxy_upstream_up', { service: 'kill:1', upstream: `127.0.0.3:${a.port}`, node: 'node-b' }), 0);
    assert.equal(sample(text, 'glow_proxy_upstreams_healthy', { service: 'kill:1' }), 1);
  });

  test('every instance down: the fallback serves', async () => {
    const d1 = await deadPort('127.0.0.5');
    const d2 = await deadPort('127.0.0.5');
    const f = await lineEcho('127.0.0.6', 'fallback');
    const port = await freePort();
    await fx.proxy.apply(
      routes(
        listener(port, 'tcp', [
          group('main:1', 'tcp', [upstream('127.0.0.5', d1), upstream('127.0.0.5', d2, 'node-c', false)]),
          group('dr:1', 'tcp', [upstream('127.0.0.6', f.port, null, false)], undefined, 'external'),
        ]),
      ),
    );
    for (let i = 0; i < 10; i++) assert.equal(await exchange(port, `x${i}`), `fallback:x${i}`);
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_upstream_connections_total', { listener: String(port), service: 'dr:1', upstream: `127.0.0.6:${f.port}`, node: '' }), 10);
    assert.equal(sample(text, 'glow_proxy_refused_total', { listener: String(port), service: 'main:1', reason: 'connect_failed' }), 0);
  });

  test('every instance and the fallback down: a clean refusal, counted', async () => {
    const d1 = await deadPort('127.0.0.7');
    const d2 = await deadPort('127.0.0.7');
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'tcp', [group('gone:1', 'tcp', [upstream('127.0.0.7', d1)]), group('gone-dr:1', 'tcp', [upstream('127.0.0.7', d2, null, false)], undefined, 'external')])));
    for (let i = 0; i < 3; i++) {
      await assert.rejects(exchange(port, 'x'), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET' || /closed without an answer/.test(e.message));
    }
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_refused_total', { listener: String(port), service: 'gone:1', reason: 'connect_failed' }), 3);
    assert.ok(sample(text, 'glow_proxy_upstream_connect_failures_total', { listener: String(port), service: 'gone-dr:1', upstream: `127.0.0.7:${d2}`, node: '' }) >= 1);

    // No upstream at all is a refusal too, with its own reason.
    const empty = await freePort();
    await fx.proxy.apply(routes(listener(empty, 'tcp', [group('none:1', 'tcp', [])])));
    await assert.rejects(exchange(empty, 'x'));
    assert.equal(sample(await metrics(), 'glow_proxy_refused_total', { listener: String(empty), service: 'none:1', reason: 'no_upstream' }), 1);
  });

  test('a blackholed instance (accepts, never answers) is found by its health check and avoided', async () => {
    const hole = await blackhole('127.0.0.8');
    const good = await httpUpstream('127.0.0.9', (_req, res) => res.end('good'));
    const port = await freePort();
    const check = { type: 'http' as const, path: '/healthz', intervalMs: 50, timeoutMs: 100, rise: 2, fall: 2 };
    await fx.proxy.apply(
      routes(
        listener(port, 'http', [group('web:80', 'http', [upstream('127.0.0.8', hole.port), upstream('127.0.0.9', good.port)], check)], {
          idleTimeoutMs: 500,
        }),
      ),
    );
    await until('the blackholed instance is down', async () => {
      const s = JSON.parse((await adminGet(adminPath, '/status')).body) as { frontends: { key: string; routes: { groups: { upstreams: { address: string; healthy: boolean }[] }[] }[] }[] };
      const f = s.frontends.find((x) => x.key === `tcp 127.0.0.1:${port}`)!;
      return f.routes[0]!.groups[0]!.upstreams.find((u) => u.address === `127.0.0.8:${hole.port}`)!.healthy === false;
    });
    const accepted = hole.accepted;
    for (let i = 0; i < 20; i++) {
      const r = await httpGet(port, `/r${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'good');
    }
    // Health checks still knock on the blackhole, but no request reached it.
    assert.equal(good.seen.filter((s) => s.startsWith('GET /r')).length, 20);
    assert.ok(hole.accepted - accepted <= 5, 'only health checks connect to the blackhole');
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_upstream_up', { service: 'web:80', upstream: `127.0.0.8:${hole.port}`, node: 'node-b' }), 0);
    assert.equal(sample(text, 'glow_proxy_upstreams_healthy', { service: 'web:80' }), 1);
  });

  test('a request stuck on a blackholed instance gets a 504 at the idle timeout, and the instance is ejected', async () => {
    const hole = await blackhole('127.0.0.10');
    const port = await freePort();
    const check = { type: 'none' as const, intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1 };
    await fx.proxy.apply(routes(listener(port, 'http', [group('stuck:80', 'http', [upstream('127.0.0.10', hole.port)], check)], { idleTimeoutMs: 200 })));
    for (let i = 0; i < 3; i++) assert.equal((await httpGet(port, '/')).status, 504);
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_upstream_ejections_total', { service: 'stuck:80', upstream: `127.0.0.10:${hole.port}`, node: 'node-b' }), 1);
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_count', { listener: String(port), service: 'stuck:80', method: 'GET', status_class: '5xx' }), 3);
  });
});
