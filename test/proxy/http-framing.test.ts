/**
 * Framing on an exposure, byte for byte: raw requests through a real exposure to an upstream that records the raw
 * bytes it receives. Bare LF (and CR) line ends are refused with 400 and the connection closed wherever a line can
 * end — request line, header lines, chunk-size lines, chunk extensions, trailers — and in an upstream's response
 * head (502); a head sent too slowly gets 408 (the header timeout, small here); HTTP/1.0 with Transfer-Encoding is
 * refused; an absolute-form target's host is the Host the app sees; a response delimited by the upstream's close
 * ends the client's connection too.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { exposure, freePort, group, NONE, proxyUnderTest, rawExchange, recordingUpstream, routesWith, sample, TcpUpstream, upstream, type RecordingUpstream } from './helpers.js';

const HEAD_TIMEOUT_MS = 400;
const fx = proxyUnderTest('framing', { headTimeoutMs: HEAD_TIMEOUT_MS });

/** A fresh port with one exposure for app.test in front of a recording upstream. */
async function app(): Promise<{ port: number; up: RecordingUpstream }> {
  const up = await recordingUpstream('127.0.0.2');
  const port = await freePort();
  await fx.proxy.apply(routesWith([], [exposure('app', port, 'http', [group('app:80', 'http', [upstream('127.0.0.2', up.port)], NONE)], { hosts: ['app.test'] })]));
  return { port, up };
}

/** One answer of the proxy's own with this status, then the connection closed (not left to the client's patience). */
function assertRefused(r: { data: string; closed: boolean }, status: number, what: string): void {
  assert.match(r.data, new RegExp(`^HTTP/1\\.1 ${status} [^\\r\\n]*\\r\\n[\\s\\S]*Connection: close\\r\\n`), what);
  assert.equal(r.data.match(/HTTP\/1\.1 /g)!.length, 1, `${what}: one answer`);
  assert.ok(r.closed, `${what}: the connection is closed by the proxy`);
}

describe('http framing', () => {
  test('a bare LF or CR ends no line of a request head: 400, closed, nothing reaches the app', async () => {
    const { port, up } = await app();
    const cases: [string, string[]][] = [
      ['all lines bare LF (the issue)', ['GET /x HTTP/1.1\nHost: app.test\n\n']],
      ['request line bare LF', ['GET /x HTTP/1.1\nHost: app.test\r\n\r\n']],
      ['a header line bare LF', ['GET /x HTTP/1.1\r\nHost: app.test\nX-A: 1\r\n\r\n']],
      ['the blank line bare LF', ['GET /x HTTP/1.1\r\nHost: app.test\r\n\n']],
      ['bare CR line ends', ['GET /x HTTP/1.1\rHost: app.test\r\r']],
      ['a bare LF, the rest of the head never sent', ['GET /x HTTP/1.1\n']],
      ['a bare LF in a later part of the head', ['GET /x HTTP/1.1\r\n', 'Host: app.test\n']],
    ];
    for (const [what, parts] of cases) {
      const r = await rawExchange(port, parts, { gapMs: 30 });
      assertRefused(r, 400, what);
      assert.match(r.data, /bare (CR or )?(CR|LF)/, what);
      assert.ok(r.ms < HEAD_TIMEOUT_MS, `${what}: refused at once, not by a timeout (${r.ms} ms)`);
    }
    assert.equal(up.received(), '', 'the app saw no byte');
    assert.equal(up.accepted, 0);
  });

  test('a bare LF in chunked framing (size line, extension, trailer, last line) is 400 and closed', async () => {
    const { port, up } = await app();
    const head = 'POST /c HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n';
    const smuggled = 'GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n';
    const bodies: [string, string][] = [
      ['size line', `5\nhello\r\n0\r\n\r\n`],
      ['extension', `5;a=b\nhello\r\n0\r\n\r\n${smuggled}`],
      ['extension, the smuggling shape', `5;\n0\r\n\r\n${smuggled}`],
      ['trailer line', `5\r\nhello\r\n0\r\nX-T: 1\n\r\n${smuggled}`],
      ['last line', `5\r\nhello\r\n0\r\n\n${smuggled}`],
      ['after chunk data', `5\r\nhello\n0\r\n\r\n`],
    ];
    for (const [what, body] of bodies) assertRefused(await rawExchange(port, [head + body]), 400, what);
    assert.equal(up.received(), '', 'the app saw no byte');
    // The same framing with CRLF everywhere goes through.
    const ok = await rawExchange(port, [`${head}5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n`]);
    assert.match(ok.data, /^HTTP\/1\.1 200 OK\r\n[\s\S]*ok$/);
    assert.ok(up.received().endsWith('5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n'), 'forwarded as it came');
  });

  test("an upstream's response with bare LF line ends (head or chunked body) is a 502: the parsers refuse it both ways", async () => {
    const lf = await new TcpUpstream('127.0.0.3', (s) => s.once('data', () => s.write('HTTP/1.1 200 OK\nContent-Length: 2\n\nok'))).listen();
    const port = await freePort();
    await fx.proxy.apply(routesWith([], [exposure('lf', port, 'http', [group('lf:80', 'http', [upstream('127.0.0.3', lf.port)], NONE)], { hosts: ['lf.test'] })]));
    const r = await rawExchange(port, ['GET / HTTP/1.1\r\nHost: lf.test\r\n\r\n']);
    assertRefused(r, 502, 'bare LF response');
    assert.match(r.data, /malformed response/);
    // A chunked response body with a bare LF in its first chunk: nothing of it reached the client yet, so a 502.
    const body = await new TcpUpstream('127.0.0.4', (s) => s.once('data', () => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n'))).listen();
    await fx.proxy.apply(routesWith([], [exposure('lf', port, 'http', [group('lf:80', 'http', [upstream('127.0.0.4', body.port)], NONE)], { hosts: ['lf.test'] })]));
    const b = await rawExchange(port, ['GET / HTTP/1.1\r\nHost: lf.test\r\n\r\n']);
    assertRefused(b, 502, 'bare LF in a chunked response');
  });

  test("an HTTP/1.1 response delimited by the upstream's close (no length, not chunked, no Connection: close) ends the client's connection too", async () => {
    const bare = await new TcpUpstream('127.0.0.5', (s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nX-Bare: 1\r\n\r\nthe body, ');
        setTimeout(() => s.end('to the close'), 20);
      }),
    ).listen();
    const port = await freePort();
    await fx.proxy.apply(routesWith([], [exposure('bare', port, 'http', [group('bare:80', 'http', [upstream('127.0.0.5', bare.port)], NONE)], { hosts: ['bare.test'] })]));
    const r = await rawExchange(port, ['GET / HTTP/1.1\r\nHost: bare.test\r\n\r\n']);
    assert.match(r.data, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nthe body, to the close$/);
    assert.ok(r.closed, 'the client sees the end of the body as the end of the connection, not a connection left open');
  });

  test('the header timeout: a head begun and not finished in time is 408 and closed; idle and quick clients are not', async () => {
    const { port, up } = await app();
    const slow = await rawExchange(port, ['GET /slow HTTP/1.1\r\n', 'Host: app.test\r\n'], { gapMs: 50 });
    assertRefused(slow, 408, 'slow head');
    assert.match(slow.data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.ok(slow.ms >= HEAD_TIMEOUT_MS - 50 && slow.ms < 3000, `answered after the header timeout (${slow.ms} ms)`);
    // One byte at a time keeps no connection past the timeout either.
    const drip = await rawExchange(port, [...'GET /drip HTTP/1.1\r\nHost: app.test\r\n'], { gapMs: 40 });
    assertRefused(drip, 408, 'a head sent byte by byte');
    assert.equal(up.received(), '', 'a timed-out head never reaches the app');
    // A head in parts that completes in time is served.
    const quick = await rawExchange(port, ['GET /ok HTTP/1.1\r\n', 'Host: app.test\r\n', 'Connection: close\r\n\r\n'], { gapMs: 40 });
    assert.match(quick.data, /^HTTP\/1\.1 200 OK\r\n[\s\S]*ok$/);
    assert.ok(quick.closed);
    // The timer starts with the head's first byte: a keep-alive request after a response times out on its own.
    const second = await rawExchange(port, ['GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n', 'GET /b HTTP/1.1\r\n'], { gapMs: 100 });
    assert.match(second.data, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nokHTTP\/1\.1 408 Request Timeout\r\n/);
    assert.ok(second.closed);
    // A connection that has sent nothing is left to the idle timeout.
    const idle = await rawExchange(port, [], { deadlineMs: HEAD_TIMEOUT_MS * 2 });
    assert.deepEqual([idle.data, idle.closed], ['', false]);
    const text = await fx.metrics();
    assert.equal(sample(text, 'glow_proxy_http_rejected_total', { frontend: `tcp 127.0.0.1:${port}`, reason: 'head_timeout' }), 3);
  });

  test('HTTP/1.0 with Transfer-Encoding is refused: 400, closed, nothing reaches the app', async () => {
    const { port, up } = await app();
    for (const conn of ['', 'Connection: keep-alive\r\n']) {
      const r = await rawExchange(port, [`POST /t HTTP/1.0\r\nHost: app.test\r\n${conn}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /admin HTTP/1.0\r\n\r\n`]);
      assertRefused(r, 400, `HTTP/1.0 chunked ${conn}`);
      assert.match(r.data, /Transfer-Encoding in an HTTP\/1\.0 request/);
    }
    assert.equal(up.received(), '');
    // HTTP/1.0 with a Content-Length is forwarded as it is.
    const ok = await rawExchange(port, ['POST /t HTTP/1.0\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello']);
    assert.match(ok.data, /^HTTP\/1\.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok$/);
    assert.ok(ok.closed);
  });

  test('absolute-form: the app sees Host and X-Forwarded-Host of the host the exposure routed on', async () => {
    const { port, up } = await app();
    const r = await rawExchange(port, ['GET http://app.test/x HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n']);
    assert.match(r.data, /^HTTP\/1\.1 200 OK\r\n[\s\S]*ok$/);
    assert.equal(
      up.received(),
      'GET http://app.test/x HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.test\r\n\r\n',
    );
    // Without a Host header (HTTP/1.0), with a port and another case: the authority as sent.
    const before = up.received().length;
    await rawExchange(port, ['GET http://APP.test:8080/y HTTP/1.0\r\n\r\n']);
    assert.equal(
      up.received().slice(before),
      'GET http://APP.test:8080/y HTTP/1.0\r\nHost: APP.test:8080\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: APP.test:8080\r\n\r\n',
    );
    // Origin-form: Host as sent.
    const at = up.received().length;
    await rawExchange(port, ['GET /z HTTP/1.1\r\nHost: App.Test\r\nConnection: close\r\n\r\n']);
    assert.equal(up.received().slice(at), 'GET /z HTTP/1.1\r\nHost: App.Test\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: App.Test\r\n\r\n');
    assert.ok(!up.received().includes('evil'), 'the conflicting Host never reaches the app');
  });
});
