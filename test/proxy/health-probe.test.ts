/**
 * The one health rule (src/proxy/health-probe.ts) and glowd's wrapper of it for rolling restarts
 * (src/shell/health.ts): an HTTP GET whose status is 2xx or 3xx, or a TCP connect, within the timeout — the same
 * answer from both, against real servers on loopback.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { PlannedInstance } from '../../src/plan/node-plan.js';
import { probe } from '../../src/proxy/health-probe.js';
import { checkInstance, httpCheck, tcpCheck } from '../../src/shell/health.js';
import { blackhole, deadPort, httpUpstream, stopAll, TcpUpstream } from './helpers.js';

after(stopAll);

/** A PlannedInstance with only what the check reads. */
const instance = (provides: { port: number; protocol: 'tcp' | 'udp' | 'http' }[], health?: { http?: string; port?: number }): PlannedInstance =>
  ({ provides, ...(health ? { health: { intervalMs: 100, timeoutMs: 500, rise: 1, fall: 1, ...health } } : {}) }) as unknown as PlannedInstance;

describe('health rule', () => {
  test('HTTP: 2xx and 3xx are healthy, anything else is not, with a reason; the proxy and glowd agree', async () => {
    const app = await httpUpstream('127.0.0.1', (req, res) => {
      const code = Number(req.url!.slice(1));
      res.writeHead(code).end();
    });
    for (const [code, want] of [[200, null], [204, null], [301, null], [404, 'HTTP 404'], [500, 'HTTP 500'], [503, 'HTTP 503']] as const) {
      assert.equal(await probe({ host: '127.0.0.1', port: app.port, path: `/${code}`, timeoutMs: 1000 }), want, String(code));
      assert.equal(await httpCheck(app.port, `/${code}`, 1000), want === null, `glowd's check of ${code}`);
      assert.equal(await checkInstance(instance([{ port: app.port, protocol: 'http' }], { http: `/${code}` })), want === null);
    }
    const notHttp = await new TcpUpstream('127.0.0.1', (s) => s.end('SSH-2.0-OpenSSH_9.6\r\n')).listen();
    assert.equal(await probe({ host: '127.0.0.1', port: notHttp.port, path: '/', timeoutMs: 1000 }), 'not an HTTP response');
    assert.equal(await httpCheck(notHttp.port, '/', 1000), false);
  });

  test('TCP: a connect is healthy; a refused or silent port is not, within the timeout', async () => {
    const open = await blackhole('127.0.0.1');
    const dead = await deadPort('127.0.0.1');
    assert.equal(await probe({ host: '127.0.0.1', port: open.port, timeoutMs: 1000 }), null);
    assert.equal(await probe({ host: '127.0.0.1', port: dead, timeoutMs: 1000 }), 'ECONNREFUSED');
    assert.equal(await tcpCheck(open.port, 1000), true);
    assert.equal(await tcpCheck(dead, 1000), false);
    // Every provided tcp/http port must accept; udp ports are not checked; health.port replaces them.
    assert.equal(await checkInstance(instance([{ port: open.port, protocol: 'tcp' }, { port: 9, protocol: 'udp' }])), true);
    assert.equal(await checkInstance(instance([{ port: open.port, protocol: 'tcp' }, { port: dead, protocol: 'http' }])), false);
    assert.equal(await checkInstance(instance([{ port: dead, protocol: 'tcp' }], { port: open.port })), true);
    assert.equal(await checkInstance(instance([{ port: 9, protocol: 'udp' }])), true, 'nothing to check: healthy once active');
    // An HTTP check on a port that accepts and never answers fails at the timeout.
    const t0 = Date.now();
    assert.equal(await probe({ host: '127.0.0.1', port: open.port, path: '/', timeoutMs: 200 }), 'no answer within 200 ms');
    assert.ok(Date.now() - t0 < 2000);
  });
});
