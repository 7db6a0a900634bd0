/**
 * Exposures in one proxy process, with real upstream servers and real clients (Node's http and tls, raw sockets):
 * Host and path routing on a shared port and the plain 404; X-Forwarded-* set, and a client's own kept only when it
 * is a trusted proxy; head and body limits (431, 413); TLS termination with SNI choosing among certificates, a
 * certificate replaced on disk served to the next handshake while an open connection keeps working, a pair that
 * cannot be loaded never crashing anything; 421 for a Host of another certificate; redirect_http; the access log;
 * TLS-terminated TCP; and what /metrics and /status say about all of it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate as X509 } from 'node:crypto';
import { copyFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { AccessRecord } from '../../src/proxy/access-log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { makeCa, makeCert, type Pem } from './certs.js';
import { exposure, freePort, group, httpGet, httpUpstream, lineEcho, NONE, proxyUnderTest, raw, routesWith, sample, testLog, until, upstream } from './helpers.js';

const access: AccessRecord[] = [];
let ca: Pem;
const fx = proxyUnderTest('exposure', { accessLog: { write: (r) => access.push(r) }, certPollMs: 100 });
const { work, metrics, status } = fx;
before(() => {
  ca = makeCa(work);
});

interface TlsReply {
  status: number;
  body: string;
  head: string;
  subject: string;
  protocol: string | null;
}

/** A TLS connection with SNI `servername` (none when null), one request with `host`, the reply and the certificate. */
function tlsRequest(port: number, servername: string | null, host: string, path = '/', socket?: TLSSocket): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const s =
      socket ??
      tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, ...(servername ? { servername } : {}), checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] });
    let buf = '';
    const timer = setTimeout(() => s.destroy(new Error(`tls request timed out; got ${JSON.stringify(buf)}`)), 10_000);
    const send = () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${socket ? '' : 'Connection: close\r\n'}\r\n`);
    if (socket) send();
    else s.once('secureConnect', send);
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const i = buf.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(buf)?.[1];
      if (i >= 0 && len !== undefined && buf.length >= i + 4 + Number(len)) {
        clearTimeout(timer);
        s.removeListener('data', onData);
        const cert = s.getPeerCertificate();
        resolve({ status: Number(buf.slice(9, 12)), head: buf.slice(0, i), body: buf.slice(i + 4), subject: String(cert.subject?.CN ?? ''), protocol: s.getProtocol() });
        if (!socket) s.end();
      }
    };
    s.on('data', onData);
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The CN of the certificate a handshake with `servername` gets (no request). */
function handshake(port: number, servername: string | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, ...(servername ? { servername } : {}), checkServerIdentity: () => undefined });
    s.once('secureConnect', () => {
      resolve(String(s.getPeerCertificate().subject?.CN ?? ''));
      s.end();
    });
    s.once('error', reject);
    setTimeout(() => s.destroy(new Error('handshake timed out')), 10_000).unref();
  });
}

describe('http exposures', () => {
  test('two hosts on one port reach two apps; wildcard and path routes; an unknown host is a plain 404', async () => {
    const blog = await httpUpstream('127.0.0.2', (req, res) => res.end(`blog ${req.url}`));
    const shop = await httpUpstream('127.0.0.3', (req, res) => res.end(`shop ${req.url}`));
    const api = await httpUpstream('127.0.0.4', (req, res) => res.end(`api ${req.url}`));
    const port = await freePort();
    const g = (name: string, u: { host: string; port: number }) => [group(name, 'http', [upstream(u.host, u.port)], NONE)];
    await fx.proxy.apply(
      routesWith(
        [],
        [
          exposure('blog', port, 'http', g('blog:80', blog), { hosts: ['blog.example.com'] }),
          exposure('shop', port, 'http', g('shop:80', shop), { hosts: ['*.shop.example.com', 'shop.example.com'] }),
          exposure('api', port, 'http', g('api:80', api), { hosts: ['shop.example.com'], path: '/api' }),
        ],
      ),
    );
    const get = (host: string, path = '/') => httpGet(port, path, { headers: { host } });
    assert.equal((await get('blog.example.com', '/post/1')).body, 'blog /post/1');
    assert.equal((await get('BLOG.example.com.:80', '/x')).body, 'blog /x', 'case, port and a trailing dot do not matter');
    assert.equal((await get('shop.example.com', '/cart')).body, 'shop /cart');
    assert.equal((await get('eu.shop.example.com', '/cart')).body, 'shop /cart', 'wildcard');
    assert.equal((await get('shop.example.com', '/api/v1?x=1')).body, 'api /api/v1?x=1', 'the longest path prefix of the host');
    assert.equal((await get('shop.example.com', '/api')).body, 'api /api');
    assert.equal((await get('shop.example.com', '/apix')).body, 'shop /apix', 'a prefix ends at a segment');
    const unknown = await get('nobody.example.org', '/secret');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body, 'not found\n', 'a plain page: no upstream, service or proxy named');
    assert.equal(unknown.headers['server'], undefined);
    assert.match(await raw(port, 'GET / HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 Bad Request[\s\S]*no Host header/);
    assert.match(await raw(port, 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n'), /^HTTP\/1\.1 400 [\s\S]*invalid Host/);
    assert.match(await raw(port, 'GET / HTTP/1.1\r\nHost: blog.example.com\r\nHost: shop.example.com\r\n\r\n'), /^HTTP\/1\.1 400 [\s\S]*two Host headers/);
    // Absolute-form: the target's authority is the host.
    assert.match(await raw(port, 'GET http://blog.example.com/abs HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n'), /blog http:\/\/blog\.example\.com\/abs$/);

    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_count', { listener: 'blog', service: 'blog:80', method: 'GET', status_class: '2xx' }), 3);
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_count', { listener: 'api', service: 'api:80', method: 'GET', status_class: '2xx' }), 2);
    assert.equal(sample(text, 'glow_proxy_http_rejected_total', { frontend: `tcp 127.0.0.1:${port}`, reason: 'no_route' }), 1);
    assert.equal(sample(text, 'glow_proxy_http_rejected_total', { frontend: `tcp 127.0.0.1:${port}`, reason: 'bad_request' }), 3);
    const st = await status();
    const f = st.frontends.find((x) => x.key === `tcp 127.0.0.1:${port}`)!;
    assert.deepEqual(f.routes.map((r) => [r.name, r.hosts, r.path ?? null]), [
      ['blog', ['blog.example.com'], null],
      ['shop', ['*.shop.example.com', 'shop.example.com'], null],
      ['api', ['shop.example.com'], '/api'],
    ]);
  });

  test('X-Forwarded-For/-Proto/-Host are set; a client\'s own are dropped unless it is a trusted proxy', async () => {
    const seen: Record<string, string | string[] | undefined>[] = [];
    const app = await httpUpstream('127.0.0.2', (req, res) => {
      seen.push(req.headers);
      res.end('ok');
    });
    const [open, trusting] = [await freePort(), await freePort()];
    const g = [group('app:80', 'http', [upstream('127.0.0.2', app.port)], NONE)];
    await fx.proxy.apply(
      routesWith(
        [],
        [exposure('open', open, 'http', g, { hosts: ['www.example.com'] }), exposure('trusting', trusting, 'http', g, { hosts: ['www.example.com'], trustedProxies: ['127.0.0.0/8'] })],
      ),
    );
    const spoof = { host: 'www.example.com', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', forwarded: 'for=6.6.6.6' };
    await httpGet(open, '/', { headers: spoof });
    assert.equal(seen[0]!['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen[0]!['x-forwarded-proto'], 'http');
    assert.equal(seen[0]!['x-forwarded-host'], 'www.example.com');
    assert.equal(seen[0]!['forwarded'], undefined);
    assert.equal(seen[0]!['host'], 'www.example.com', 'Host itself goes on unchanged');
    await httpGet(trusting, '/', { headers: spoof });
    assert.equal(seen[1]!['x-forwarded-for'], '6.6.6.6, 127.0.0.1', 'a trusted proxy\'s chain is kept and the client appended');
    assert.equal(seen[1]!['x-forwarded-proto'], 'https');
    assert.equal(seen[1]!['x-forwarded-host'], 'evil.example');
    assert.equal(seen[1]!['forwarded'], 'for=6.6.6.6');
    await httpGet(trusting, '/', { headers: { host: 'www.example.com' } });
    assert.equal(seen[2]!['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen[2]!['x-forwarded-proto'], 'http');
  });

  test('head and body limits: 431 and 413, a chunked body cut off when it grows past the limit', async () => {
    const bodies: number[] = [];
    const app = await httpUpstream('127.0.0.2', (req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        bodies.push(n);
        res.end(`got ${n}`);
      });
    });
    const port = await freePort();
    const g = [group('app:80', 'http', [upstream('127.0.0.2', app.port)], NONE)];
    await fx.proxy.apply(routesWith([], [exposure('small', port, 'http', g, { hosts: ['small.example.com'], limits: { headBytes: 2048, bodyBytes: 1000 } })]));
    const ok = await httpGet(port, '/', { method: 'POST', body: 'x'.repeat(1000), headers: { host: 'small.example.com' } });
    assert.equal(ok.body, 'got 1000');
    const big = await httpGet(port, '/', { method: 'POST', body: 'x'.repeat(1001), headers: { host: 'small.example.com' } });
    assert.equal(big.status, 413);
    const head = await httpGet(port, '/', { headers: { host: 'small.example.com', 'x-big': 'y'.repeat(3000) } });
    assert.equal(head.status, 431);
    const chunked = await raw(port, `POST / HTTP/1.1\r\nHost: small.example.com\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n${'z'.repeat(1024)}\r\n0\r\n\r\n`);
    assert.match(chunked, /^HTTP\/1\.1 413 /);
    assert.deepEqual(bodies, [1000], 'no body over the limit was answered by the app');
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_http_request_duration_seconds_count', { listener: 'small', service: 'app:80', method: 'POST', status_class: '4xx' }), 2);
  });

  test('smuggling shapes are refused with 400 and the connection closed; the app never sees a second request', async () => {
    const app = await httpUpstream('127.0.0.2', (req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const port = await freePort();
    await fx.proxy.apply(routesWith([], [exposure('www', port, 'http', [group('app:80', 'http', [upstream('127.0.0.2', app.port)], NONE)], { hosts: ['www.example.com'] })]));
    const smuggled = 'GET /admin HTTP/1.1\r\nHost: www.example.com\r\n\r\n';
    const attempts = [
      `POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`, // CL.TE
      `POST / HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n${smuggled}`, // TE.CL
      `POST / HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST / HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 0\r\n Transfer-Encoding: chunked\r\n\r\n${smuggled}`, // obs-fold
      `POST / HTTP/1.1\r\nHost: www.example.com\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`, // bare CR
      `POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello${smuggled}`,
    ];
    for (const a of attempts) {
      const reply = await raw(port, a);
      assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*Connection: close\r\n/, JSON.stringify(a));
      assert.equal(reply.match(/HTTP\/1\.1/g)!.length, 1, 'one answer, then the connection is closed');
    }
    assert.deepEqual(app.seen, [], 'nothing reached the app');
  });

  test('WebSocket upgrades pass through an exposure', async () => {
    const app = await httpUpstream('127.0.0.2', (_req, res) => res.end('plain'));
    app.server.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Echo: ${req.headers['x-forwarded-for']}\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(d));
    });
    const port = await freePort();
    await fx.proxy.apply(routesWith([], [exposure('ws', port, 'http', [group('app:80', 'http', [upstream('127.0.0.2', app.port)], NONE)], { hosts: ['ws.example.com'] })]));
    const s = netConnect({ host: '127.0.0.1', port });
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (buf += d));
    s.write('GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    await until('101', () => buf.includes('\r\n\r\n'));
    assert.match(buf, /^HTTP\/1\.1 101 [\s\S]*X-Echo: 127\.0\.0\.1/);
    s.write('frame-bytes');
    await until('echo through the tunnel', () => buf.endsWith('frame-bytes'));
    s.destroy();
  });
});

describe('tls exposures', () => {
  let www: Pem;
  let api: Pem;
  let wild: Pem;
  before(() => {
    www = makeCert(work, ca, 'www', ['www.example.com', 'example.com']);
    api = makeCert(work, ca, 'api', ['api.example.com']);
    wild = makeCert(work, ca, 'wild', ['*.apps.example.com']);
  });

  test('SNI picks the certificate; a replaced certificate serves the next handshake, open connections go on', async () => {
    const a = await httpUpstream('127.0.0.2', (req, res) => res.end(`www ${req.headers['x-forwarded-proto']}`));
    const b = await httpUpstream('127.0.0.3', (_req, res) => res.end('api'));
    const c = await httpUpstream('127.0.0.4', (req, res) => res.end(`app ${req.headers.host}`));
    const dir = mkdtempSync(join(work, 'live-'));
    const files = (p: Pem, name: string) => {
      copyFileSync(p.certPath, join(dir, `${name}.crt`));
      copyFileSync(p.keyPath, join(dir, `${name}.key`));
      return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    };
    const port = await freePort();
    const g = (s: string, u: { host: string; port: number }) => [group(s, 'http', [upstream(u.host, u.port)], NONE)];
    await fx.proxy.apply(
      routesWith(
        [],
        [
          exposure('www', port, 'http', g('www:80', a), { hosts: ['www.example.com', 'example.com'], tls: files(www, 'www'), accessLog: true }),
          exposure('api', port, 'http', g('api:80', b), { hosts: ['api.example.com'], tls: files(api, 'api') }),
          exposure('apps', port, 'http', g('apps:80', c), { hosts: ['*.apps.example.com'], tls: files(wild, 'apps') }),
        ],
      ),
    );
    const w = await tlsRequest(port, 'www.example.com', 'www.example.com');
    assert.deepEqual([w.status, w.body, w.subject], [200, 'www https', 'www.example.com']);
    assert.ok(w.protocol === 'TLSv1.3' || w.protocol === 'TLSv1.2');
    const x = await tlsRequest(port, 'api.example.com', 'api.example.com');
    assert.deepEqual([x.body, x.subject], ['api', 'api.example.com']);
    const y = await tlsRequest(port, 'one.apps.example.com', 'one.apps.example.com');
    assert.deepEqual([y.body, y.subject], ['app one.apps.example.com', '*.apps.example.com']);
    assert.equal(await handshake(port, null), 'www.example.com', 'without SNI: the first route\'s certificate');
    // Host of another certificate than the one SNI chose: 421.
    const mis = await tlsRequest(port, 'www.example.com', 'api.example.com');
    assert.equal(mis.status, 421);
    // An old protocol is refused.
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port, servername: 'www.example.com', ca: ca.cert, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
        s.once('secureConnect', resolve);
        s.once('error', reject);
      }),
    );

    // ALPN: http/1.1 is chosen when offered; a client offering only other protocols is refused (no_application_protocol).
    const alpn = (protocols: string[]) =>
      new Promise<string | false | null>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port, servername: 'www.example.com', ca: ca.cert, ALPNProtocols: protocols });
        s.once('secureConnect', () => {
          resolve(s.alpnProtocol);
          s.destroy();
        });
        s.once('error', reject);
      });
    assert.equal(await alpn(['h2', 'http/1.1']), 'http/1.1');
    await assert.rejects(alpn(['h2']), /no application protocol/);
    // Not TLS at all: refused, counted.
    assert.doesNotMatch(await raw(port, 'GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n'), /HTTP/);

    // An open keep-alive connection, then the certificate replaced on disk (rename, as glowd and certbot do).
    const open = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'www.example.com', checkServerIdentity: () => undefined });
    await new Promise((r) => open.once('secureConnect', r));
    assert.equal((await tlsRequest(port, null, 'www.example.com', '/', open)).body, 'www https');
    const renewed = makeCert(work, ca, 'www-renewed', ['www.example.com', 'example.com'], 365);
    const before = (await status()).frontends.find((f) => f.key === `tcp 127.0.0.1:${port}`)!.routes[0]!.tls!;
    copyFileSync(renewed.certPath, join(dir, 'www.crt.new'));
    copyFileSync(renewed.keyPath, join(dir, 'www.key.new'));
    renameSync(join(dir, 'www.crt.new'), join(dir, 'www.crt'));
    // Half-way: the new certificate with the old key. The old pair keeps serving; status says why.
    await until('the half-way pair refused', async () => ((await status()).frontends.find((f) => f.key === `tcp 127.0.0.1:${port}`)!.routes[0]!.tls!.error ?? '').includes('does not belong'));
    assert.equal((await tlsRequest(port, 'www.example.com', 'www.example.com')).status, 200);
    renameSync(join(dir, 'www.key.new'), join(dir, 'www.key'));
    await until('the renewed certificate loaded', async () => {
      const t = (await status()).frontends.find((f) => f.key === `tcp 127.0.0.1:${port}`)!.routes[0]!.tls!;
      return t.error === null && t.fingerprint !== before.fingerprint;
    });
    const fresh = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'www.example.com', checkServerIdentity: () => undefined });
      s.once('secureConnect', () => {
        resolve(s.getPeerCertificate().valid_to);
        s.end();
      });
      s.once('error', reject);
    });
    assert.equal(new Date(fresh).getTime(), new Date(new X509(renewed.cert).validTo).getTime(), 'the renewed certificate is served');
    assert.equal((await tlsRequest(port, null, 'www.example.com', '/', open)).body, 'www https', 'the connection opened before still works');
    open.end();

    const text = await metrics();
    const expiry = sample(text, 'glow_proxy_certificate_expiry_timestamp_seconds', { exposure: 'www', certificate: join(dir, 'www.crt') });
    assert.equal(expiry, Date.parse(new X509(renewed.cert).validTo) / 1000);
    assert.equal(sample(text, 'glow_proxy_certificate_up', { exposure: 'www', certificate: join(dir, 'www.crt') }), 1);
    assert.ok(sample(text, 'glow_proxy_tls_handshake_failures_total', { frontend: `tcp 127.0.0.1:${port}` }) >= 3, 'the TLS 1.1 attempt, the h2-only client, the plain request');
    assert.equal(sample(text, 'glow_proxy_http_rejected_total', { frontend: `tcp 127.0.0.1:${port}`, reason: 'misdirected' }), 1);
    const line = access.find((r) => r.exposure === 'www' && r['status'] === 200)!;
    assert.ok(line, 'the access log has the www requests');
    assert.equal(line['method'], 'GET');
    assert.equal(line['host'], 'www.example.com');
    assert.equal(line['client'], '127.0.0.1');
    assert.equal(line['upstream'], `127.0.0.2:${a.port}`);
    assert.match(String(line['tls']), /^TLSv1\.[23]$/);
    assert.ok(!access.some((r) => r.exposure === 'api'), 'api has no access log');
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(promtool.status, 0, promtool.stdout + promtool.stderr);
  });

  test('a certificate that cannot be loaded fails only its own handshakes; the proxy and the other hosts serve', async () => {
    const a = await httpUpstream('127.0.0.2', (_req, res) => res.end('www'));
    const port = await freePort();
    const g = [group('www:80', 'http', [upstream('127.0.0.2', a.port)], NONE)];
    writeFileSync(join(work, 'broken.crt'), 'not a certificate\n');
    await fx.proxy.apply(
      routesWith(
        [],
        [
          exposure('www', port, 'http', g, { hosts: ['www.example.com'], tls: { cert: www.certPath, key: www.keyPath } }),
          exposure('gone', port, 'http', g, { hosts: ['gone.example.com'], tls: { cert: join(work, 'missing.crt'), key: www.keyPath } }),
          exposure('broken', port, 'http', g, { hosts: ['broken.example.com'], tls: { cert: join(work, 'broken.crt'), key: www.keyPath } }),
          exposure('mismatch', port, 'http', g, { hosts: ['mismatch.example.com'], tls: { cert: api.certPath, key: www.keyPath } }),
        ],
      ),
    );
    assert.equal((await tlsRequest(port, 'www.example.com', 'www.example.com')).body, 'www');
    for (const name of ['gone.example.com', 'broken.example.com', 'mismatch.example.com']) await assert.rejects(handshake(port, name), name);
    const routes = (await status()).frontends.find((f) => f.key === `tcp 127.0.0.1:${port}`)!.routes;
    const err = (n: string) => routes.find((r) => r.name === n)!.tls!.error ?? '';
    assert.match(err('gone'), /ENOENT/);
    assert.match(err('broken'), /holds no PEM certificate/);
    assert.match(err('mismatch'), /does not belong to the certificate/);
    assert.equal(routes.find((r) => r.name === 'www')!.tls!.error, null);
    const text = await metrics();
    assert.equal(sample(text, 'glow_proxy_certificate_up', { exposure: 'mismatch', certificate: api.certPath }), 0);
  });

  test('keep-alive over TLS with responses of 30 KB: each response on a reused upstream connection comes at once', async () => {
    // A Node TLS socket's write of 16 KiB or more returns false even when it all went out: the upstream connection,
    // paused by it, went back to the pool paused, and the next response on it waited for the response timeout.
    const body = 'x'.repeat(30_000);
    const a = await httpUpstream('127.0.0.2', (_req, res) => res.end(body));
    const port = await freePort();
    const g = [group('big:80', 'http', [upstream('127.0.0.2', a.port)], NONE)];
    const policy = { balance: 'least-conn' as const, connectTimeoutMs: 1000, idleTimeoutMs: 60_000, responseTimeoutMs: 2000, retries: 0 };
    await fx.proxy.apply(routesWith([], [exposure('big', port, 'http', g, { hosts: ['www.example.com'], tls: { cert: www.certPath, key: www.keyPath }, policy })]));
    const open = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'www.example.com' });
    await new Promise((r) => open.once('secureConnect', r));
    for (let i = 0; i < 3; i++) {
      const r = await tlsRequest(port, null, 'www.example.com', '/', open);
      assert.deepEqual([r.status, r.body.length], [200, body.length], `request ${i + 1}`);
    }
    open.destroy();
  });

  test('a client that connects and never finishes its handshake is closed at the handshake timeout, and counted', async () => {
    const own = new Proxy({ log: testLog, tlsHandshakeTimeoutMs: 300 });
    try {
      const port = await freePort();
      const g = [group('www:80', 'http', [upstream('127.0.0.2', 9)], NONE)];
      await own.apply(routesWith([], [exposure('www', port, 'http', g, { hosts: ['www.example.com'], tls: { cert: www.certPath, key: www.keyPath } })]));
      // One that sends nothing, one that stops half-way through its hello.
      for (const first of ['', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03']) {
        const s = netConnect({ host: '127.0.0.1', port });
        s.on('error', () => {}); // a reset is a close too
        s.on('connect', () => first && s.write(Buffer.from(first, 'latin1')));
        s.resume();
        // Bounded: a handshake timeout that never fires fails here, not at the test runner's timeout.
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('the proxy kept a connection past its handshake timeout')), 5000);
          s.once('close', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      assert.equal(own.metrics.frontend(`tcp 127.0.0.1:${port}`).tlsHandshakeFailures, 2);
    } finally {
      await own.stop(1000);
    }
  });

  test('redirect_http answers 308 to https on the plain port; a tcp exposure terminates TLS and logs its connections', async () => {
    const a = await httpUpstream('127.0.0.2', (_req, res) => res.end('www'));
    const echo = await lineEcho('127.0.0.3', 'echo');
    const [secure, plain, tcp] = [await freePort(), await freePort(), await freePort()];
    await fx.proxy.apply(
      routesWith(
        [],
        [
          exposure('www', secure, 'http', [group('www:80', 'http', [upstream('127.0.0.2', a.port)], NONE)], { hosts: ['www.example.com'], tls: { cert: www.certPath, key: www.keyPath }, redirectHttp: plain }),
          exposure('raw', tcp, 'tcp', [group('echo:1', 'tcp', [upstream('127.0.0.3', echo.port)], NONE)], { tls: { cert: api.certPath, key: api.keyPath }, accessLog: true }),
        ],
      ),
    );
    const r = await httpGet(plain, '/path?q=1', { headers: { host: 'www.example.com' } });
    assert.equal(r.status, 308);
    assert.equal(r.headers['location'], `https://www.example.com:${secure}/path?q=1`);
    assert.deepEqual(a.seen, [], 'a redirect never reaches the app');
    assert.equal((await httpGet(plain, '/', { headers: { host: 'other.example.com' } })).status, 404, 'only the exposure\'s hosts are redirected');

    const s = tlsConnect({ host: '127.0.0.1', port: tcp, ca: ca.cert, servername: 'api.example.com' });
    await new Promise((res) => s.once('secureConnect', res));
    assert.equal(s.getPeerCertificate().subject.CN, 'api.example.com');
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.write('hello\n');
    await until('echo over TLS', () => got === 'echo:hello\n');
    s.end();
    await until('the connection logged', () => access.some((x) => x.exposure === 'raw'));
    const line = access.find((x) => x.exposure === 'raw')!;
    assert.equal(line['result'], 'ok');
    assert.equal(line['upstream'], `127.0.0.3:${echo.port}`);
    assert.ok(Number(line['received_bytes']) > 0);
  });
});
