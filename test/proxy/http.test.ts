/**
 * The HTTP data path with real Node HTTP servers as upstreams and real clients: retries (a GET is retried, a
 * POST never is), keep-alive to upstreams, bodies both ways untouched, chunked framing, pipelining, upgrades, and
 * the request histogram as /metrics shows it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { deadPort, freePort, group, httpGet, httpUpstream, listener, NONE, proxyUnderTest, raw, routes, sample, upstream } from './helpers.js';

const fx = proxyUnderTest('http');
const { metrics } = fx;

describe('http', () => {
  test('a GET answered 503 is retried on another instance; a POST is not', async () => {
    // The sick instance is local, so it is always tried first.
    const sick = await httpUpstream('127.0.0.2', (_req, res) => res.writeHead(503).end('sick'));
    const well = await httpUpstream('127.0.0.3', (req, res) => {
      req.resume();
      req.on('end', () => res.end('well'));
    });
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('api:80', 'http', [upstream('127.0.0.2', sick.port), upstream('127.0.0.3', well.port, 'node-c', false)], NONE)])));

    const get = await httpGet(port, '/g');
    assert.equal(get.status, 200);
    assert.equal(get.body, 'well');
    assert.deepEqual(sick.seen, ['GET /g']);
    assert.deepEqual(well.seen, ['GET /g']);

    const post = await httpGet(port, '/p', { method: 'POST', body: 'payload' });
    assert.equal(post.status, 503);
    assert.equal(post.body, 'sick');
    assert.deepEqual(sick.seen, ['GET /g', 'POST /p']);
    assert.deepEqual(well.seen, ['GET /g'], 'the POST never reached a second instance');

    const text = await metrics();
    const l = { listener: String(port), service: 'api:80' };
    assert.equal(sample(text, 'glow_proxy_retries_total', { ...l, reason: 'status_503' }), 1);
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_count', { ...l, method: 'GET', status_class: '2xx' }), 1);
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_count', { ...l, method: 'POST', status_class: '5xx' }), 1);
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_bucket', { ...l, method: 'GET', status_class: '2xx', le: '+Inf' }), 1);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(promtool.status, 0, `promtool check metrics:\n${promtool.stdout}${promtool.stderr}`);
  });

  test('a GET reset before its response is retried; a POST gets a 502 and reaches no other instance', async () => {
    const resetting = await httpUpstream('127.0.0.4', (req) => req.socket.destroy());
    const well = await httpUpstream('127.0.0.5', (req, res) => {
      req.resume();
      req.on('end', () => res.end('well'));
    });
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('rst:80', 'http', [upstream('127.0.0.4', resetting.port), upstream('127.0.0.5', well.port, 'node-c', false)], NONE)])));
    const get = await httpGet(port, '/g');
    assert.equal(get.status, 200);
    assert.equal(get.body, 'well');
    const post = await httpGet(port, '/p', { method: 'POST', body: 'once' });
    assert.equal(post.status, 502);
    assert.deepEqual(resetting.seen, ['GET /g', 'POST /p']);
    assert.deepEqual(well.seen, ['GET /g']);
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_retries_total', { listener: String(port), service: 'rst:80', reason: 'reset' }), 1);
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_count', { listener: String(port), service: 'rst:80', method: 'POST', status_class: '5xx' }), 1);
  });

  test("a GET reset, with no other instance to retry it on, gets the upstream's failure (502), not a refusal (503)", async () => {
    const resetting = await httpUpstream('127.0.0.8', (req) => req.socket.destroy());
    const sick = await httpUpstream('127.0.0.9', (_req, res) => res.writeHead(503).end('sick'));
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('one:80', 'http', [upstream('127.0.0.8', resetting.port)], NONE)])));
    const get = await httpGet(port, '/g');
    assert.equal(get.status, 502);
    assert.match(get.body, /the upstream failed before answering/);
    assert.deepEqual(resetting.seen, ['GET /g']);
    const l = { listener: String(port), service: 'one:80' };
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_refused_total', { ...l, reason: 'connect_failed' }), 0, 'no connect failed: it is not counted as a refusal');
    // An instance answering 503 alone: the client gets a 503 too.
    await fx.proxy.apply(routes(listener(port, 'http', [group('one:80', 'http', [upstream('127.0.0.9', sick.port)], NONE)])));
    assert.equal((await httpGet(port, '/s')).status, 503);
  });

  test('a failed connect is retried for any method (the upstream never saw the request); nothing left answers 503', async () => {
    const dead = await deadPort('127.0.0.6');
    const well = await httpUpstream('127.0.0.7', (req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => res.end(`got ${body}`));
    });
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('conn:80', 'http', [upstream('127.0.0.6', dead), upstream('127.0.0.7', well.port, 'node-c', false)], NONE)])));
    const post = await httpGet(port, '/p', { method: 'POST', body: 'abc' });
    assert.equal(post.status, 200);
    assert.equal(post.body, 'got abc');

    const nothing = await freePort();
    await fx.proxy.apply(routes(listener(nothing, 'http', [group('void:80', 'http', [upstream('127.0.0.6', dead)], NONE)])));
    const r = await httpGet(nothing, '/');
    assert.equal(r.status, 503);
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_retries_total', { listener: String(port), service: 'conn:80', reason: 'connect_failure' }), 1);
    assert.equal(sample(text, 'glow_proxy_refused_total', { listener: String(nothing), service: 'void:80', reason: 'connect_failed' }), 1);
  });

  test('clients that close after each request reuse one keep-alive connection to the upstream', async () => {
    const up = await httpUpstream('127.0.0.8', (_req, res) => res.end('ok'));
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('ka:80', 'http', [upstream('127.0.0.8', up.port)], NONE)])));
    for (let i = 0; i < 20; i++) {
      const r = await httpGet(port, `/${i}`); // Connection: close, a new client connection each time
      assert.equal(r.status, 200);
      assert.equal(r.headers['connection'], 'close');
    }
    assert.equal(up.seen.length, 20);
    assert.equal(up.connections, 1);
  });

  test('a POST never goes on an upstream connection that idled long enough to be closing; a GET may', async () => {
    const up = await httpUpstream('127.0.0.13', (req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('idle:80', 'http', [upstream('127.0.0.13', up.port)], NONE)])));
    assert.equal((await httpGet(port, '/a')).status, 200);
    assert.equal(up.connections, 1);
    await new Promise((r) => setTimeout(r, 1200)); // longer than NON_IDEMPOTENT_MAX_IDLE_MS, shorter than the pool's idle limit
    assert.equal((await httpGet(port, '/p', { method: 'POST', body: 'x' })).status, 200);
    assert.equal(up.connections, 2, 'the POST opened a fresh connection');
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await httpGet(port, '/b')).status, 200);
    assert.equal(up.connections, 2, 'the GET reused an idle one');
  });

  test('bodies pass untouched both ways: a large POST, a chunked response, HEAD, pipelined requests', async () => {
    const up = await httpUpstream('127.0.0.9', (req, res) => {
      if (req.url === '/echo') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no length: chunked
        req.pipe(res);
        return;
      }
      res.setHeader('content-length', '5');
      res.end(req.method === 'HEAD' ? undefined : `p${req.url!.slice(1)}...`.slice(0, 5));
    });
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('body:80', 'http', [upstream('127.0.0.9', up.port)], NONE)])));
    const big = 'x'.repeat(300_000) + 'end';
    const echoed = await httpGet(port, '/echo', { method: 'POST', body: big });
    assert.equal(echoed.status, 200);
    assert.equal(echoed.headers['transfer-encoding'], 'chunked');
    assert.equal(echoed.body, big);

    const head = await httpGet(port, '/h', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');

    // Three requests in one write; the answers come in order, on one connection.
    const text = await raw(port, 'GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const bodies = [...text.matchAll(/\r\n\r\n(p\d\.\.\.)/g)].map((m) => m[1]);
    assert.deepEqual(bodies, ['p1...', 'p2...', 'p3...']);
  });

  test('a malformed request is answered 400; smuggling shapes are refused', async () => {
    const up = await httpUpstream('127.0.0.10', (_req, res) => res.end('ok'));
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('bad:80', 'http', [upstream('127.0.0.10', up.port)], NONE)])));
    assert.match(await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc'), /^HTTP\/1\.1 400 /);
    assert.match(await raw(port, 'NOT-HTTP\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.deepEqual(up.seen, []);
  });

  test('a removed listener closes idle keep-alive connections at once and busy ones after their response', async () => {
    const up = await httpUpstream('127.0.0.12', (req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('slow'), 300);
      else res.end('fast');
    });
    const port = await freePort();
    const other = await freePort();
    const keep = listener(other, 'http', [group('other:80', 'http', [upstream('127.0.0.12', up.port)], NONE)]);
    await fx.proxy.apply(routes(listener(port, 'http', [group('gone:80', 'http', [upstream('127.0.0.12', up.port)], NONE)]), keep));
    const open = (path: string) =>
      new Promise<{ text: Promise<string>; socket: ReturnType<typeof connect> }>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port });
        let buf = '';
        socket.setEncoding('latin1');
        const text = new Promise<string>((done) => {
          socket.on('data', (d: string) => (buf += d));
          socket.on('end', () => done(buf));
        });
        socket.on('connect', () => {
          socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
          resolve({ text, socket });
        });
      });
    const idle = await open('/fast');
    const busy = await open('/slow');
    await new Promise((r) => setTimeout(r, 100)); // the fast one is answered, the slow one is in flight
    await fx.proxy.apply(routes(keep));
    const [idleText, busyText] = await Promise.all([idle.text, busy.text]);
    assert.match(idleText, /\r\n\r\nfast$/);
    assert.match(busyText, /^HTTP\/1\.1 200 [^]*\r\n\r\nslow$/);
    idle.socket.destroy();
    busy.socket.destroy();
  });

  test('a WebSocket upgrade becomes a tunnel', async () => {
    const up = await httpUpstream('127.0.0.11', (_req, res) => res.end('not an upgrade'));
    up.server.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers['upgrade']}\r\nConnection: Upgrade\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
      socket.on('end', () => socket.end());
    });
    const port = await freePort();
    await fx.proxy.apply(routes(listener(port, 'http', [group('ws:80', 'http', [upstream('127.0.0.11', up.port)], NONE)])));
    const got = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port });
      let buf = '';
      s.setEncoding('latin1');
      s.on('connect', () => s.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
      s.on('data', (d: string) => {
        buf += d;
        if (buf.endsWith('\r\n\r\n')) s.write('ping');
        if (buf.endsWith('echo:ping')) s.end();
      });
      s.on('end', () => resolve(buf));
      s.on('error', reject);
    });
    assert.match(got, /^HTTP\/1\.1 101 /);
    assert.ok(got.endsWith('\r\n\r\necho:ping'), got);
  });
});
