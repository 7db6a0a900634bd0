/**
 * The pure parts of exposures: which route serves a Host and path, how Host values are normalised, and what the
 * head parser records and refuses for them (targets, forwarding lines, control characters, header names).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HostRouter, normalizeHost, pathMatches, splitTarget } from '../../src/proxy/host-router.js';
import { FWD_FOR, FWD_FORWARDED, FWD_HOST, FWD_PROTO, HttpHeadError, parseRequestHead, rewriteRequestHead, targetOf } from '../../src/proxy/http-head.js';

const route = (name: string, hosts: string[], path?: string) => ({ name, spec: { hosts, ...(path ? { path } : {}) } });

describe('host router', () => {
  const routes = [
    route('any', []),
    route('www', ['www.example.com', 'example.com']),
    route('api', ['www.example.com'], '/api'),
    route('apps', ['*.apps.example.com']),
    route('deep', ['*.eu.apps.example.com']),
    route('static', [], '/static'),
  ];
  const r = new HostRouter(routes);
  const m = (host: string | null, path: string) => r.match(host, path)?.name ?? null;

  test('exact before wildcard before catch-all; the longest path prefix within a host', () => {
    assert.equal(m('www.example.com', '/'), 'www');
    assert.equal(m('www.example.com', '/api/v1'), 'api');
    assert.equal(m('www.example.com', '/api'), 'api');
    assert.equal(m('www.example.com', '/apiary'), 'www');
    assert.equal(m('example.com', '/api'), 'www', 'paths belong to the hosts that name them');
    assert.equal(m('x.apps.example.com', '/'), 'apps');
    assert.equal(m('a.b.apps.example.com', '/'), 'apps', 'a wildcard covers any depth');
    assert.equal(m('x.eu.apps.example.com', '/'), 'deep', 'the longest wildcard suffix wins');
    assert.equal(m('apps.example.com', '/'), 'any', 'a wildcard needs a label before its suffix');
    assert.equal(m('other.org', '/static/x.css'), 'static');
    assert.equal(m(null, '/'), 'any');
    assert.equal(r.only, null);
  });

  test('no match at all is null (the proxy answers 404); one plain route is taken without a lookup', () => {
    const only = new HostRouter([route('www', ['www.example.com'])]);
    assert.equal(only.match('other.example.com', '/'), null);
    assert.equal(only.match(null, '/'), null);
    const listener = new HostRouter([route('19000', [])]);
    assert.equal(listener.only?.name, '19000');
    assert.equal(listener.match('whatever', '/x')?.name, '19000');
  });

  test('forHost: the routes of the most specific level, for SNI', () => {
    assert.deepEqual(r.forHost('www.example.com').map((x) => x.name), ['api', 'www']);
    assert.deepEqual(r.forHost('q.apps.example.com').map((x) => x.name), ['apps']);
    assert.deepEqual(r.forHost('nothing.org').map((x) => x.name), ['static', 'any']);
  });

  test('Host values: lower case, no port, no trailing dot; garbage refused', () => {
    assert.equal(normalizeHost('WWW.Example.COM'), 'www.example.com');
    assert.equal(normalizeHost('www.example.com:8443'), 'www.example.com');
    assert.equal(normalizeHost('www.example.com.'), 'www.example.com');
    assert.equal(normalizeHost('10.0.0.1:80'), '10.0.0.1');
    assert.equal(normalizeHost('[FD00::1]:443'), '[fd00::1]');
    for (const bad of ['', 'a b', 'www.example.com:x', 'evil.com/path', 'a@b', '[::1', '[::1]x', 'www.example.com:123456', '-start.example.com']) {
      assert.equal(normalizeHost(bad), null, bad);
    }
  });

  test('targets and path prefixes', () => {
    assert.deepEqual(splitTarget('/a/b?c=1'), { host: null, path: '/a/b' });
    assert.deepEqual(splitTarget('http://www.example.com/x?y'), { host: 'www.example.com', path: '/x' });
    assert.deepEqual(splitTarget('https://user@www.example.com'), { host: 'www.example.com', path: '/' });
    assert.deepEqual(splitTarget('*'), { host: null, path: '*' });
    assert.ok(pathMatches('/api', '/api/'));
    assert.ok(pathMatches('/api/', '/api'));
    assert.ok(!pathMatches('/api', '/ap'));
    assert.ok(pathMatches(undefined, '/anything'));
  });
});

describe('request heads for exposures', () => {
  const head = (text: string) => {
    const buf = Buffer.from(text, 'latin1');
    return { buf, h: parseRequestHead(buf, 0, buf.length) };
  };

  test('the target and the forwarding lines are recorded; a head is rewritten without them and with new ones', () => {
    const text = 'GET /p?q HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-proto: https\r\nX-Forwarded-Host: b\r\nForwarded: for=1\r\nConnection: close\r\n\r\n';
    const { buf, h } = head(text);
    assert.equal(targetOf(buf, 0, h), '/p?q');
    assert.deepEqual(
      Array.from({ length: h.forwardedLines.length / 3 }, (_, i) => h.forwardedLines[i * 3]),
      [FWD_FOR, FWD_PROTO, FWD_HOST, FWD_FORWARDED],
    );
    const drop: number[] = [];
    for (let i = 0; i < h.forwardedLines.length; i += 3) drop.push(h.forwardedLines[i + 1]!, h.forwardedLines[i + 2]!);
    const out = rewriteRequestHead(buf, [...drop, ...h.connectionLines], 'X-Forwarded-For: 9.9.9.9\r\n').toString('latin1');
    assert.equal(out, 'GET /p?q HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n');
  });

  test('control characters, names that are not tokens and two Host headers are refused', () => {
    for (const bad of [
      'GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX\x7f: y\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nContent Length: 5\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\n[x]: y\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    ]) {
      assert.throws(() => head(bad), (e: unknown) => e instanceof HttpHeadError && e.status === 400, JSON.stringify(bad));
    }
    assert.doesNotThrow(() => head('GET / HTTP/1.1\r\nHost: a\r\nX-Tab:\tvalue\twith tabs\r\n\r\n'));
  });
});
