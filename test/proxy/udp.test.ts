/**
 * UDP through the proxy: echo, sessions pinned to one upstream, a re-pick when that upstream dies, and the
 * session and datagram metrics.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { Proxy } from '../../src/proxy/proxy.js';
import { group, listener, NONE, onStop, routes, sample, stopAll, udpEcho, upstream } from './helpers.js';

const log = pino({ level: process.env['GLOW_TEST_LOG'] ?? 'silent' });
const proxy = new Proxy({ log });

after(async () => {
  await proxy.stop(500);
  await stopAll();
});


async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  s.close();
  return port;
}

function client(): Socket {
  const s = createSocket('udp4');
  onStop(() => {
    try {
      s.close();
    } catch {
      /* closed */
    }
  });
  return s;
}

/** Sends `msg` until an answer comes (at most `tries` times, 200 ms apart): UDP may lose the first datagrams. */
function ask(s: Socket, port: number, msg: string, tries = 10): Promise<string> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const onMessage = (m: Buffer) => {
      clearInterval(timer);
      s.removeListener('message', onMessage);
      resolve(m.toString());
    };
    s.on('message', onMessage);
    const send = () => {
      if (n++ >= tries) {
        clearInterval(timer);
        s.removeListener('message', onMessage);
        reject(new Error(`no answer to ${msg} after ${tries} tries`));
        return;
      }
      s.send(msg, port, '127.0.0.1');
    };
    const timer = setInterval(send, 200);
    send();
  });
}

describe('udp', () => {
  test('echo through the proxy, one session per client pinned to one upstream, re-picked when it dies', async () => {
    const a = await udpEcho('127.0.0.2', 'a');
    const b = await udpEcho('127.0.0.3', 'b');
    const port = await freeUdpPort();
    await proxy.apply(routes(listener(port, 'udp', [group('stats:8125', 'udp', [upstream('127.0.0.2', a.port), upstream('127.0.0.3', b.port)], NONE)])));

    const c1 = client();
    const first = await ask(c1, port, 'hello');
    assert.match(first, /^[ab]:hello$/);
    const pinned = first[0]!;
    for (let i = 0; i < 5; i++) assert.equal(await ask(c1, port, `m${i}`), `${pinned}:m${i}`);

    const c2 = client();
    assert.match(await ask(c2, port, 'other'), /^[ab]:other$/);

    // The pinned upstream dies: its port answers ICMP unreachable, the session moves to the other one.
    (pinned === 'a' ? a : b).close();
    const other = pinned === 'a' ? 'b' : 'a';
    assert.equal(await ask(c1, port, 'again'), `${other}:again`);
    assert.equal(await ask(c1, port, 'still'), `${other}:still`);

    const text = await proxy.metrics.text();
    const l = { listener: String(port), service: 'stats:8125' };
    assert.equal(sample(text, 'glow_proxy_udp_sessions_total', l), 2);
    assert.equal(sample(text, 'glow_proxy_udp_sessions_active', l), 2);
    assert.ok(sample(text, 'glow_proxy_udp_received_datagrams_total', l) >= 10, 'nine answered, at least one lost on the dead upstream');
    assert.equal(sample(text, 'glow_proxy_udp_sent_datagrams_total', l), 9);
    const dead = { ...l, upstream: `127.0.0.${pinned === 'a' ? 2 : 3}:${(pinned === 'a' ? a : b).port}`, node: 'node-b' };
    assert.ok(sample(text, 'glow_proxy_upstream_connect_failures_total', dead) >= 1);
  });

  test('sessions end after the idle timeout', async () => {
    const a = await udpEcho('127.0.0.4', 'a');
    const port = await freeUdpPort();
    await proxy.apply(routes(listener(port, 'udp', [group('idle:53', 'udp', [upstream('127.0.0.4', a.port)], NONE)], { idleTimeoutMs: 100 })));
    const c = client();
    assert.equal(await ask(c, port, 'x'), 'a:x');
    const l = { listener: String(port), service: 'idle:53' };
    const deadline = Date.now() + 10_000;
    while (sample(await proxy.metrics.text(), 'glow_proxy_udp_sessions_active', l) !== 0) {
      assert.ok(Date.now() < deadline, 'the idle session was never closed');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await ask(c, port, 'y'), 'a:y');
    assert.equal(sample(await proxy.metrics.text(), 'glow_proxy_udp_sessions_total', l), 2);
  });
});
