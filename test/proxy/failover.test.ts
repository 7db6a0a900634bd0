/**
 * Failover on loopback, with real upstreams: the HTTP response timeout (a GET retried elsewhere, a POST answered
 * 504), requests in flight on an upstream that active checks find down (failed over or answered 502 at once), an
 * ejection ended by passing checks at their rise, and new upstreams that wait for their first check (and are not
 * ejected for refusing before they ever answered). The vanished peer on a real network is in
 * test/proxy/partition.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { HealthCheck } from '../../src/plan/node-plan.js';
import { blackhole, freePort, group, httpGet, httpUpstream, listener, NONE, onStop, proxyUnderTest, routes, sample, until, upstream } from './helpers.js';

// Ejections last a minute here: whatever ends one sooner is the active check.
const fx = proxyUnderTest('failover', { ejection: { consecutiveFailures: 3, baseEjectionMs: 60_000, maxEjectionMs: 300_000, maxEjectedShare: 0.5 } });
const { metrics } = fx;

/** An HTTP upstream that can stop listening (connections stay), be killed (connections reset) and start again on its port. */
class Restartable {
  hits = 0;
  port = 0;
  readonly waiting: ServerResponse[] = [];
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly host: string,
    private readonly name: string,
    /** Holds `/slow` requests unanswered. */
    private readonly hold = false,
  ) {
    onStop(() => this.kill());
  }

  async start(): Promise<this> {
    const server = createServer({ keepAliveTimeout: 30_000 }, (req: IncomingMessage, res: ServerResponse) => {
      this.hits += 1;
      req.resume();
      req.on('end', () => {
        if (req.url === '/slow' && this.hold) this.waiting.push(res); // answered never
        else res.end(this.name);
      });
    });
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen({ host: this.host, port: this.port }, () => resolve()));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** No more accepts (connects are refused); open connections stay. */
  stopListening(): void {
    this.server?.close();
    this.server = null;
  }

  /** Like kill -9: no more accepts, every connection reset. */
  kill(): void {
    this.stopListening();
    for (const s of this.sockets) s.resetAndDestroy();
  }
}

const check = (over: Partial<HealthCheck>): HealthCheck => ({ type: 'tcp', intervalMs: 150, timeoutMs: 300, rise: 2, fall: 3, ...over });

async function upstreamStatus(port: number, address: string) {
  const st = await fx.status();
  const route = st.frontends.find((f) => f.key === `tcp 127.0.0.1:${port}`)!.routes[0]!;
  return route.groups.flatMap((g) => g.upstreams).find((u) => u.address === address)!;
}

describe('failover', () => {
  test('the response timeout runs from each request on a keep-alive connection, not from an earlier one', async () => {
    // Answers /quick at once and never answers /slow, on one keep-alive connection.
    const up = await httpUpstream('127.0.0.32', (req, res) => {
      req.resume();
      if (req.url === '/quick') res.end('quick');
    });
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('lazy:80', 'http', [upstream('127.0.0.32', up.port)], NONE)], { responseTimeoutMs: 400 })));
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (got += d));
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    s.write('GET /quick HTTP/1.1\r\nHost: lazy\r\n\r\n');
    await until('the quick answer', () => got.endsWith('quick'));
    // The timer armed for /quick would fire 400 ms after it; /slow is sent 300 ms later and must get its 400 ms.
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    s.write('GET /slow HTTP/1.1\r\nHost: lazy\r\n\r\n');
    await until('the 504', () => got.includes('504'), 10_000);
    const ms = Date.now() - t0;
    s.destroy();
    assert.ok(ms >= 380, `the 504 came ${ms} ms after /slow, not when the timer of /quick ran out`);
    assert.ok(ms < 5000, `and not much later (${ms} ms)`);
  });

  test('the response timeout: a GET is retried on another upstream, a POST gets 504; both counted', async () => {
    const hole = await blackhole('127.0.0.30'); // accepts, never answers
    const well = await httpUpstream('127.0.0.31', (req, res) => {
      req.resume();
      req.on('end', () => res.end('well'));
    });
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('rt:80', 'http', [upstream('127.0.0.30', hole.port), upstream('127.0.0.31', well.port, 'node-c', false)], NONE)], { responseTimeoutMs: 400 })));

    const t0 = Date.now();
    const get = await httpGet(port, '/g');
    assert.equal(get.status, 200);
    assert.equal(get.body, 'well');
    const post = await httpGet(port, '/p', { method: 'POST', body: 'once' });
    const ms = Date.now() - t0;
    assert.equal(post.status, 504);
    assert.deepEqual(well.seen, ['GET /g'], 'the POST reached no other upstream');
    assert.ok(ms >= 800, `two response timeouts of 400 ms passed (${ms} ms)`);
    assert.ok(ms < 8000, `and not much more (${ms} ms)`);

    const text = await metrics();
    const l = { listener: String(port), service: 'rt:80' };
    assert.equal(sample(text, 'glow_proxy_http_response_timeouts_total', { ...l, upstream: `127.0.0.30:${hole.port}`, node: 'node-b' }), 2);
    assert.equal(sample(text, 'glow_proxy_retries_total', { ...l, reason: 'response_timeout' }), 1);
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_count', { ...l, method: 'POST', status_class: '5xx' }), 1);
  });

  test('requests waiting on an upstream found down are failed over (GET) or answered 502 (POST) at once', async () => {
    const a = await new Restartable('127.0.0.32', 'a', true).start();
    const b = await new Restartable('127.0.0.33', 'b').start();
    const port = await freePort();
    // a is local: tried first. A TCP check on the serving port: a stops listening, its connections stay open.
    const hc = check({ intervalMs: 100, timeoutMs: 200, rise: 1, fall: 2 });
    await fx.proxy.apply(routes(listener(port, 'http', [group('lost:80', 'http', [upstream('127.0.0.32', a.port), upstream('127.0.0.33', b.port, 'node-c', false)], hc)])));
    await until('a is up', async () => (await upstreamStatus(port, `127.0.0.32:${a.port}`)).healthy);

    const t0 = Date.now();
    const get = httpGet(port, '/slow');
    const post = httpGet(port, '/slow', { method: 'POST', body: 'x' });
    await until('a holds both requests', () => a.waiting.length === 2);
    a.stopListening();
    const [g, p] = await Promise.all([get, post]);
    const ms = Date.now() - t0;
    assert.equal(p.status, 502, 'the POST is not sent twice');
    assert.equal(g.status, 200);
    assert.equal(g.body, 'b', 'the GET was failed over to b');
    assert.equal(b.hits, 1, 'only the GET reached b');
    assert.ok(ms < 10_000, `answered long before the 30 s response timeout (${ms} ms)`);
    const text = await metrics();
    const l = { listener: String(port), service: 'lost:80' };
    assert.equal(sample(text, 'glow_proxy_http_upstream_lost_total', { ...l, upstream: `127.0.0.32:${a.port}`, node: 'node-b' }), 2);
    assert.equal(sample(text, 'glow_proxy_retries_total', { ...l, reason: 'upstream_lost' }), 1);
  });

  test('an ejected upstream is back in traffic at its active check\'s rise, not an ejection (a minute here) later', async () => {
    const a = await new Restartable('127.0.0.34', 'a').start();
    const b = await new Restartable('127.0.0.35', 'b').start();
    const port = await freePort();
    // fall is out of reach: the checks never call a down, only the ejection takes it out of traffic.
    const hc = check({ intervalMs: 150, rise: 2, fall: 1000 });
    await fx.proxy.apply(routes(listener(port, 'http', [group('back:80', 'http', [upstream('127.0.0.34', a.port), upstream('127.0.0.35', b.port, 'node-c', false)], hc)])));
    // A fresh proxy serves at once: nothing is checked yet, everything is tried.
    assert.equal((await httpGet(port, '/first')).status, 200);
    await until('a is up', async () => (await upstreamStatus(port, `127.0.0.34:${a.port}`)).healthy);

    a.kill();
    for (let i = 0; i < 3; i++) assert.equal((await httpGet(port, `/k${i}`)).body, 'b', 'a refused: retried on b');
    const ejected = await upstreamStatus(port, `127.0.0.34:${a.port}`);
    assert.equal(ejected.ejected, true);
    assert.ok(ejected.ejectedForMs > 30_000);

    await a.start(); // back on its port, as systemd restarts it
    const back = Date.now();
    const before = a.hits;
    await until('a gets traffic again', async () => (await httpGet(port, '/again')).body === 'a', 10_000);
    const ms = Date.now() - back;
    assert.ok(a.hits > before);
    assert.ok(ms < 10_000, `back within its rise (2 × 150 ms), not the minute of its ejection (${ms} ms)`);
    const st = await upstreamStatus(port, `127.0.0.34:${a.port}`);
    assert.equal(st.ejected, false);
    assert.equal(st.ejections, 1);
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_upstream_up', { service: 'back:80', upstream: `127.0.0.34:${a.port}`, node: 'node-b' }), 1);
  });

  test('a new upstream waits for its first check: refused at first, it is neither tried while others serve nor ejected', async () => {
    const b = await new Restartable('127.0.0.37', 'b').start();
    const a = new Restartable('127.0.0.36', 'a');
    a.port = await freePort('127.0.0.36'); // nothing listens there yet: its node has not started it
    const port = await freePort();
    const hc = check({ intervalMs: 150, rise: 2, fall: 3 });
    const bUp = upstream('127.0.0.37', b.port, 'node-c', false);
    await fx.proxy.apply(routes(listener(port, 'http', [group('new:80', 'http', [bUp], hc)])));
    await until('b is up', async () => (await upstreamStatus(port, `127.0.0.37:${b.port}`)).healthy);

    // a is added (and local, so it would be preferred if it were picked).
    await fx.proxy.apply(routes(listener(port, 'http', [group('new:80', 'http', [upstream('127.0.0.36', a.port), bUp], hc)])));
    for (let i = 0; i < 10; i++) assert.equal((await httpGet(port, `/n${i}`)).body, 'b');
    let text = await metrics();
    const la = { listener: String(port), service: 'new:80', upstream: `127.0.0.36:${a.port}`, node: 'node-b' };
    assert.equal(sample(text, 'glow_proxy_upstream_connect_failures_total', la), 0, 'a new upstream gets no traffic while another serves');

    await a.start();
    await until('a gets traffic once its check passes', async () => (await httpGet(port, '/x')).body === 'a', 10_000);
    const st = await upstreamStatus(port, `127.0.0.36:${a.port}`);
    assert.equal(st.ejections, 0);
    text = await metrics();
    assert.equal(sample(text, 'glow_proxy_upstream_ejections_total', { service: 'new:80', upstream: `127.0.0.36:${a.port}`, node: 'node-b' }), 0);
  });

  test('new upstreams that all refuse are tried (fail open) but not ejected for it; the first to pass its check serves', async () => {
    const c = new Restartable('127.0.0.38', 'c');
    c.port = await freePort('127.0.0.38');
    const d = new Restartable('127.0.0.39', 'd');
    d.port = await freePort('127.0.0.39');
    const port = await freePort();
    const hc = check({ intervalMs: 150, rise: 2, fall: 3 });
    await fx.proxy.apply(routes(listener(port, 'http', [group('void:80', 'http', [upstream('127.0.0.38', c.port), upstream('127.0.0.39', d.port, 'node-c', false)], hc)])));
    for (let i = 0; i < 5; i++) assert.equal((await httpGet(port, `/v${i}`)).status, 503);
    const text = await metrics();
    const l = { listener: String(port), service: 'void:80' };
    assert.ok(sample(text, 'glow_proxy_upstream_connect_failures_total', { ...l, upstream: `127.0.0.38:${c.port}`, node: 'node-b' }) >= 5);
    for (const u of [`127.0.0.38:${c.port}`, `127.0.0.39:${d.port}`]) {
      const st = await upstreamStatus(port, u);
      assert.equal(st.ejected, false, `${u} refused before it ever answered: not ejected`);
      assert.equal(st.ejections, 0);
    }
    await d.start();
    await until('d serves once its check passes', async () => (await httpGet(port, '/d')).body === 'd', 10_000);
    assert.equal((await upstreamStatus(port, `127.0.0.39:${d.port}`)).ejections, 0);
  });
});
