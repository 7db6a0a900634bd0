/**
 * The one metrics endpoint of glowd and the box (src/shell/metrics-server.ts): serving, and moving when glow.yaml
 * moves it.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { MetricsEndpoint } from '../../src/shell/metrics-server.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function get(listen: string, path = '/metrics'): Promise<{ status: number; type: string | null; body: string } | 'refused'> {
  try {
    const r = await fetch(`http://${listen}${path}`);
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  } catch {
    return 'refused';
  }
}

describe('the metrics endpoint', () => {
  test('serves the scrape, and moves: the old address is closed, the same one is left alone', async () => {
    let n = 0;
    const endpoint = new MetricsEndpoint(async () => ({ contentType: 'text/plain; version=0.0.4', text: `glow_test ${++n}\n` }));
    const a = `127.0.0.1:${await freePort()}`;
    const b = `127.0.0.1:${await freePort()}`;
    try {
      assert.equal(endpoint.listen, undefined);
      assert.equal(await endpoint.bind(a), true);
      assert.deepEqual(await get(a), { status: 200, type: 'text/plain; version=0.0.4', body: 'glow_test 1\n' });
      assert.equal(((await get(a, '/other')) as { status: number }).status, 404);
      assert.equal(await endpoint.bind(a), false, 'bound there already');
      assert.equal(await endpoint.bind(b), true);
      assert.equal(endpoint.listen, b);
      assert.equal(await get(a), 'refused');
      assert.equal(((await get(b)) as { body: string }).body.startsWith('glow_test'), true);
    } finally {
      endpoint.close();
    }
    assert.equal(endpoint.listen, undefined);
  });

  test('an address taken: the error is thrown and it listens nowhere', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const busy = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
    const endpoint = new MetricsEndpoint(async () => ({ contentType: 'text/plain', text: '' }));
    const free = `127.0.0.1:${await freePort()}`;
    try {
      await endpoint.bind(free);
      await assert.rejects(endpoint.bind(busy), { code: 'EADDRINUSE' });
      assert.equal(endpoint.listen, undefined);
      assert.equal(await get(free), 'refused', 'the old address is closed');
    } finally {
      endpoint.close();
      await new Promise((r) => taken.close(r));
    }
  });

  test('binds asked at once are carried out in order: the last address is the one that listens, nothing leaks', { timeout: 10_000 }, async () => {
    const endpoint = new MetricsEndpoint(async () => ({ contentType: 'text/plain', text: 'x\n' }));
    const [a, b, c] = await Promise.all([freePort(), freePort(), freePort()]).then((ps) => ps.map((p) => `127.0.0.1:${p}`));
    try {
      // Not awaited one by one: as two passes that move metrics.listen in quick succession would ask.
      await Promise.all([endpoint.bind(a!), endpoint.bind(b!), endpoint.bind(c!)]);
      assert.equal(endpoint.listen, c);
      assert.equal(await get(a!), 'refused');
      assert.equal(await get(b!), 'refused');
      assert.notEqual(await get(c!), 'refused');
    } finally {
      endpoint.close();
    }
    for (const x of [a, b, c]) assert.equal(await get(x!), 'refused', `${x} closed after close()`);
  });
});
