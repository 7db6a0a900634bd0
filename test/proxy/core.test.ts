/**
 * The pure core of the proxy, without sockets or timers: balancer selection, health and ejection state, the retry
 * budget, HTTP head parsing and body framing, the routes file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { pickUpstream, type BalancerTarget, type Rotation } from '../../src/proxy/balancer.js';
import { BodyFramer, MALFORMED, NEED_MORE } from '../../src/proxy/body-framer.js';
import { findHeadEnd, hostOf, HttpHeadError, parseRequestHead, parseResponseHead, withConnectionClose, withoutConnectionHeader } from '../../src/proxy/http-head.js';
import { RetryBudget } from '../../src/proxy/retry-budget.js';
import { frontendsOf, parseRoutes } from '../../src/proxy/routes-file.js';
import { UpstreamHealth } from '../../src/proxy/upstream-health.js';

class T implements BalancerTarget {
  constructor(
    readonly name: string,
    public active = 0,
    readonly local = false,
    public up = true,
    public ejected = false,
    public unknown = false,
  ) {}
  usable(): boolean {
    return this.up && !this.ejected;
  }
  isEjected(): boolean {
    return this.ejected;
  }
}

const rot = (n: number): Rotation[] => Array.from({ length: n }, () => ({ next: 0 }));
const names = (groups: T[][], n: number, opts: { balance?: 'least-conn' | 'round-robin'; tried?: Set<T>; panicShare?: number } = {}) => {
  const r = rot(groups.length);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = pickUpstream(groups, r, { balance: opts.balance ?? 'least-conn', now: 0, tried: opts.tried ?? null, ...(opts.panicShare !== undefined ? { panicShare: opts.panicShare } : {}) });
    out.push(p ? `${p.upstream.name}${p.panic ? '!' : ''}` : '-');
  }
  return out;
};

describe('balancer', () => {
  test('least-conn takes the fewest active connections; ties take turns', () => {
    assert.deepEqual(names([[new T('a', 3), new T('b', 1), new T('c', 2)]], 2), ['b', 'b']);
    assert.deepEqual(names([[new T('a'), new T('b'), new T('c')]], 3).sort(), ['a', 'b', 'c']);
  });

  test('round-robin goes round', () => {
    assert.deepEqual(names([[new T('a', 9), new T('b'), new T('c')]], 6, { balance: 'round-robin' }), ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test('instances on this node are preferred while one is usable', () => {
    const g = [new T('remote'), new T('local', 50, true)];
    assert.deepEqual(names([g], 3), ['local', 'local', 'local']);
    g[1]!.up = false;
    assert.deepEqual(names([g], 1), ['remote']);
  });

  test('unusable and tried upstreams are skipped; then the fallbacks, in order', () => {
    const a = new T('a', 0, false, false);
    const b = new T('b');
    assert.deepEqual(names([[a, b]], 2), ['b', 'b']);
    assert.deepEqual(names([[a, b], [new T('f1')], [new T('f2')]], 1, { tried: new Set([b]) }), ['f1']);
    const f1 = new T('f1', 0, false, false);
    assert.deepEqual(names([[a, new T('b', 0, false, false)], [f1], [new T('f2')]], 1), ['f2']);
  });

  test('nothing usable anywhere: fail open over the chain, ejected last; nothing untried: no pick', () => {
    const a = new T('a', 0, false, false);
    const e = new T('e', 0, false, true, true);
    const f = new T('f', 0, false, false);
    assert.deepEqual(names([[e, a], [f]], 1), ['a!']);
    assert.deepEqual(names([[e, a], [f]], 1, { tried: new Set([a]) }), ['f!']);
    assert.deepEqual(names([[e, a], [f]], 1, { tried: new Set([a, f]) }), ['e!']);
    assert.deepEqual(names([[e, a], [f]], 1, { tried: new Set([a, f, e]) }), ['-']);
    assert.deepEqual(names([[]], 1), ['-']);
  });

  test('the last group panics below the threshold and spreads over its non-ejected upstreams', () => {
    const g = () => [new T('up'), new T('down1', 0, false, false), new T('down2', 0, false, false), new T('ej', 0, false, true, true)];
    assert.deepEqual(new Set(names([g()], 12)), new Set(['up', 'down1!', 'down2!']));
    assert.deepEqual(names([g()], 3, { panicShare: 0 }), ['up', 'up', 'up']);
    // With a fallback left, a group below the threshold still serves from its usable upstreams only.
    assert.deepEqual(names([g(), [new T('f')]], 3), ['up', 'up', 'up']);
  });
});

describe('upstreams not yet checked', () => {
  const fresh = (name: string, local = false) => new T(name, 0, local, false, false, true);

  test('are not picked while another upstream of their group is usable, nor by the panic spread', () => {
    assert.deepEqual(names([[new T('a'), fresh('new', true)]], 3), ['a', 'a', 'a']);
    // One usable of four, three of them new: no panic (the new ones are not counted as unusable).
    assert.deepEqual(names([[new T('a'), fresh('n1'), fresh('n2'), fresh('n3')]], 4), ['a', 'a', 'a', 'a']);
    // Checked ones below the threshold: the spread is over the checked, not the new.
    assert.deepEqual(new Set(names([[new T('a'), new T('d1', 0, false, false), new T('d2', 0, false, false), fresh('n')]], 12)), new Set(['a', 'd1!', 'd2!']));
  });

  test('serve when nothing of their group is usable: a fresh proxy (all unknown) serves at once, before any fallback', () => {
    assert.deepEqual(names([[fresh('n1'), fresh('n2')], [new T('f')]], 4).sort(), ['n1', 'n1', 'n2', 'n2']);
    assert.deepEqual(names([[new T('d', 0, false, false), fresh('n')], [new T('f')]], 2), ['n', 'n']);
    assert.deepEqual(names([[fresh('n')], [new T('f')]], 1, { tried: new Set() }), ['n']);
  });
});

describe('upstream health', () => {
  test('an upstream with an active check starts unknown: up at its first passing check, down after `fall` failures', () => {
    const h = new UpstreamHealth(undefined, true);
    assert.equal(h.state, 'unknown');
    assert.equal(h.usable(0), false);
    assert.equal(h.check(true, 2, 3), 'up', 'one passing check is enough for a new upstream');
    assert.equal(h.usable(0), true);
    const g = new UpstreamHealth(undefined, true);
    assert.equal(g.check(false, 2, 3), null);
    assert.equal(g.check(false, 2, 3), null);
    assert.equal(g.check(false, 2, 3), 'down');
    assert.equal(g.check(true, 2, 3), null);
    assert.equal(g.check(true, 2, 3), 'up', 'back from down takes `rise`');
    assert.equal(new UpstreamHealth().state, 'up', 'without an active check: up');
    const t = new UpstreamHealth(undefined, true);
    assert.equal(t.success(0), true, 'traffic that succeeded (while failing open) makes it up too');
    assert.equal(t.state, 'up');
    assert.equal(t.success(0), false);
  });

  test('failures before an upstream ever answered do not count towards (or grow) an ejection', () => {
    const policy = { consecutiveFailures: 2, baseEjectionMs: 100, maxEjectionMs: 1000, maxEjectedShare: 0.5 };
    const h = new UpstreamHealth(policy, true);
    const yes = () => true;
    for (let i = 0; i < 10; i++) assert.equal(h.failure(0, yes), 0);
    assert.equal(h.ejections, 0);
    h.check(true, 2, 3, null, 0, 1);
    assert.equal(h.failure(2, yes), 0);
    assert.equal(h.failure(2, yes), 100, 'the first ejection once it answered: the base time');
  });

  test('a passing active check ends an ejection at the check\'s rise; checks begun before the ejection do not count', () => {
    const policy = { consecutiveFailures: 1, baseEjectionMs: 60_000, maxEjectionMs: 300_000, maxEjectedShare: 0.5 };
    const h = new UpstreamHealth(policy, true);
    h.check(true, 2, 3, null, 0, 1);
    assert.equal(h.failure(1000, () => true), 60_000);
    assert.equal(h.check(true, 2, 3, null, 900, 1100), null, 'begun before the ejection');
    assert.equal(h.check(true, 2, 3, null, 1200, 1300), null);
    assert.equal(h.check(false, 2, 3, 'ECONNREFUSED', 1400, 1500), null, 'a failure starts the rise over');
    assert.equal(h.check(true, 2, 3, null, 1600, 1700), null);
    assert.equal(h.isEjected(1750), true);
    assert.equal(h.check(true, 2, 3, null, 1800, 1900), 'reinstated');
    assert.equal(h.isEjected(1900), false);
    assert.equal(h.usable(1900), true);
    // The quiet period counts from the end: a new ejection right away is the second in a row.
    assert.equal(h.failure(2000, () => true), 120_000);
  });

  test('active checks: down after `fall` failures in a row, up after `rise` successes', () => {
    const h = new UpstreamHealth();
    assert.equal(h.check(false, 2, 3), null);
    assert.equal(h.check(true, 2, 3), null); // the streak is broken
    assert.equal(h.check(false, 2, 3), null);
    assert.equal(h.check(false, 2, 3), null);
    assert.equal(h.check(false, 2, 3, 'ECONNREFUSED'), 'down');
    assert.equal(h.usable(0), false);
    assert.equal(h.lastCheckError, 'ECONNREFUSED');
    assert.equal(h.check(true, 2, 3), null);
    assert.equal(h.check(true, 2, 3), 'up');
    assert.equal(h.usable(0), true);
  });

  test('passive: ejected after consecutive failures, for a time that grows, within the cap', () => {
    const policy = { consecutiveFailures: 2, baseEjectionMs: 100, maxEjectionMs: 250, maxEjectedShare: 0.5 };
    const h = new UpstreamHealth(policy);
    const yes = () => true;
    assert.equal(h.failure(0, yes), 0);
    assert.equal(h.failure(0, yes), 100);
    assert.equal(h.isEjected(50), true);
    assert.equal(h.usable(100), true);
    h.failure(100, yes);
    assert.equal(h.failure(100, yes), 200);
    h.failure(300, yes);
    assert.equal(h.failure(300, yes), 250, 'capped at maxEjectionMs');
    h.success(550 + 250); // a quiet period as long as the longest ejection forgets the past
    h.failure(800, yes);
    assert.equal(h.failure(800, yes), 100);
    h.failure(900, () => false);
    assert.equal(h.failure(900, () => false), 0, 'the group cap forbids it');
    assert.equal(h.ejectionsTotal, 4);
  });

  test('the cap: at most half of a group, and always at least one', () => {
    assert.equal(UpstreamHealth.mayEject(1, 0), true);
    assert.equal(UpstreamHealth.mayEject(2, 1), false);
    assert.equal(UpstreamHealth.mayEject(4, 1), true);
    assert.equal(UpstreamHealth.mayEject(4, 2), false);
  });
});

describe('retry budget', () => {
  test('20% of requests plus a floor per second, over a sliding window', () => {
    const b = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowMs: 1000 });
    assert.equal(b.tryRetry(0), true, 'the floor allows one retry with no traffic');
    assert.equal(b.tryRetry(0), false);
    for (let i = 0; i < 10; i++) b.request(10);
    assert.equal(b.tryRetry(10), true);
    assert.equal(b.tryRetry(10), true);
    assert.equal(b.tryRetry(10), false, '1 + 0.2 × 10 = 3 retries');
    assert.equal(b.tryRetry(2500), true, 'the window has passed');
  });
});

const buf = (s: string) => Buffer.from(s, 'latin1');

describe('http heads', () => {
  test('a request head: method, framing, connection, upgrade, host', () => {
    const b = buf('xxGET /a HTTP/1.1\r\nHost: example.com\r\nconnection: close\r\nContent-Length: 12\r\n\r\nbody');
    const end = findHeadEnd(b, 2);
    assert.equal(b.toString('latin1', end), 'body');
    const h = parseRequestHead(b, 2, end);
    assert.equal(h.method, 'GET');
    assert.equal(h.idempotent, true);
    assert.equal(h.contentLength, 12);
    assert.equal(h.close, true);
    assert.equal(h.connectionIsCloseOnly, true);
    assert.equal(hostOf(b, 2, h), 'example.com');
    const stripped = withoutConnectionHeader(b.subarray(2, end), h.connectionLines).toString('latin1');
    assert.equal(stripped, 'GET /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 12\r\n\r\n');

    const post = parseRequestHead(buf('POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'), 0, 51);
    assert.equal(post.idempotent, false);
    assert.equal(post.chunked, true);
    const ws = buf('GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n');
    assert.equal(parseRequestHead(ws, 0, ws.length).upgrade, true);
    const old = buf('PROPFIND / HTTP/1.0\r\n\r\n');
    const o = parseRequestHead(old, 0, old.length);
    assert.equal(o.method, 'OTHER');
    assert.equal(o.close, true, 'HTTP/1.0 closes unless keep-alive');
    assert.equal(findHeadEnd(buf('GET / HTTP/1.1\r\nHost: x\r\n'), 0), -1);
  });

  test('smuggling shapes and malformed heads are refused with 400', () => {
    const bad = [
      'GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
      'GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      'GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n',
      'GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
      'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
      'GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n',
      'GET / HTTP/1.1\nHost: x\r\n\r\n',
      'GET / HTTP/2.0\r\n\r\n',
      'GET\r\n\r\n',
    ];
    for (const text of bad) {
      const b = buf(text);
      assert.throws(
        () => parseRequestHead(b, 0, b.length),
        (e: unknown) => e instanceof HttpHeadError && e.status === 400 && e.code === 'GLOW_E_PROXY_HTTP_HEAD',
        JSON.stringify(text),
      );
    }
  });

  test('a response head: status, framing, close; Connection: close added for a closing client', () => {
    const b = buf('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n');
    const r = parseResponseHead(b, 0, b.length);
    assert.deepEqual([r.status, r.contentLength, r.chunked, r.close], [200, 5, false, false]);
    assert.equal(withConnectionClose(b, r.connectionLines).toString('latin1'), 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n');
    const c = buf('HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n');
    const rc = parseResponseHead(c, 0, c.length);
    assert.deepEqual([rc.status, rc.contentLength, rc.chunked], [503, -1, true]);
    // Both framings from an upstream: refused (502), not forwarded with a Content-Length a cache in front might trust.
    const both = buf('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n');
    assert.throws(() => parseResponseHead(both, 0, both.length), (e: unknown) => e instanceof HttpHeadError && e.status === 502);
    const ten = buf('HTTP/1.0 200 OK\r\n\r\n');
    assert.equal(parseResponseHead(ten, 0, ten.length).close, true);
    const junk = buf('HTTP/1.1 2x0 OK\r\n\r\n');
    assert.throws(() => parseResponseHead(junk, 0, junk.length), (e: unknown) => e instanceof HttpHeadError && e.status === 502);
  });
});

describe('body framing', () => {
  test('Content-Length across chunks', () => {
    const f = new BodyFramer();
    f.reset('length', 10);
    assert.equal(f.feed(buf('abcd'), 0, 4), NEED_MORE);
    assert.equal(f.feed(buf('efghijNEXT'), 0, 10), 6);
  });

  test('chunked, split at every byte, with extensions and trailers', () => {
    const body = '5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n';
    const whole = buf(`${body}NEXT`);
    const f = new BodyFramer();
    f.reset('chunked');
    assert.equal(f.feed(whole, 0, whole.length), body.length);
    for (let cut = 1; cut < body.length; cut++) {
      f.reset('chunked');
      const first = f.feed(whole, 0, cut);
      assert.equal(first, NEED_MORE, `cut at ${cut}`);
      assert.equal(f.feed(whole, cut, whole.length), body.length, `cut at ${cut}`);
    }
  });

  test('malformed chunked bodies are caught', () => {
    for (const bad of ['x\r\n', '5\r\nhelloXX', '5\nhello\r\n']) {
      const f = new BodyFramer();
      f.reset('chunked');
      assert.equal(f.feed(buf(bad), 0, bad.length), MALFORMED, bad);
    }
  });
});

describe('routes file', () => {
  const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

  test('the example cluster: glowd’s file for node-b, as frontends', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/glow.js'), 'plan', join(ROOT, 'examples/cluster'), '--node', 'node-b', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { listeners: unknown[]; exposures: unknown[] };
    const routes = parseRoutes(JSON.stringify({ version: 1, node: 'node-b', listeners: plan.listeners, exposures: plan.exposures }));
    const f = frontendsOf(routes);
    assert.deepEqual(
      f.map((x) => [x.key, x.routes.map((r) => `${r.kind} ${r.name} ${r.protocol} ${r.groups.map((g) => g.service).join('>')}`)]),
      [
        ['tcp 0.0.0.0:80', ['exposure www http web:8080']],
        ['tcp 127.0.0.1:15432', ['listener 15432 tcp postgres:5432']],
        ['tcp 127.0.0.1:19000', ['listener 19000 http api:9000>api-dr:9000']],
        ['udp 127.0.0.1:18125', ['listener 18125 udp statsd:8125']],
      ],
    );
  });

  test('a bad file is refused with the path of the first bad value', () => {
    const cases: [string, RegExp][] = [
      ['nope', /is not JSON/],
      ['{"version": 2, "node": "n", "listeners": []}', /\$\.version must be 1/],
      ['{"version": 1, "node": "n", "listeners": [{"name": "1", "bind": "127.0.0.1", "port": 0}]}', /\$\.listeners\[0\]\.port must be an integer/],
      [
        '{"version": 1, "node": "n", "listeners": [{"name": "1", "bind": "127.0.0.1", "port": 1, "protocol": "udp", "service": "s:1", "policy": {"balance": "least-conn", "connectTimeoutMs": 1, "idleTimeoutMs": 1, "retries": 0}, "groups": [{"service": "s:1", "kind": "app", "protocol": "tcp", "upstreams": [], "health": {"type": "none", "intervalMs": 1, "timeoutMs": 1, "rise": 1, "fall": 1}}]}]}',
        /groups\[0\]\.protocol is tcp but the route is udp/,
      ],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseRoutes(text), (e: unknown) => (e as { code: string }).code === 'GLOW_E_PROXY_ROUTES_INVALID' && message.test((e as Error).message), text);
    }
  });
});
