/**
 * The native relay's own bookkeeping (native/relay.c), on a proxy of the native data path: a connection's id
 * names it and no later tenant of its slot, and a burst of connections larger than one batch of events
 * (EV_BATCH) is accepted, relayed, closed and counted, with nothing held afterwards; a listener's id is not
 * reused; an http port runs on the addon's stream sockets, whose backpressure carries a large body to a slow reader
 * both ways, whole; a WebSocket tunnel is spliced in the addon and carries bytes both ways, a half-close and a
 * reset as the tcp relay does, counted. The last two run twice: on a plain http port, and on a TLS exposure (TLS
 * terminated in the addon). (The relay's behaviour against the portable path is test/proxy/relay-compare.test.ts; every
 * HTTP test of test/proxy/ runs on both paths in CI.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { UpstreamGroup } from '../../src/plan/node-plan.js';
import type { ProxyRoutes } from '../../src/render/routes.js';
import { nativeRelay } from '../../src/proxy/native-relay.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { makeCa, makeCert, type Pem } from './certs.js';
import { exposure, freePort, group, httpUpstream, lineEcho, listener, routes, routesWith, stopAll, testLog, until, upstream } from './helpers.js';

const relay = nativeRelay();
let proxy: Proxy | null = null;
let work = '';
let ca: Pem;
let cert: Pem;

before(() => {
  if (relay) proxy = new Proxy({ log: testLog, dataPath: 'native' });
  work = mkdtempSync(join(tmpdir(), 'glow-relay-native-'));
  ca = makeCa(work);
  cert = makeCert(work, ca, 'app', ['app.example.com']);
});
after(async () => {
  await proxy?.stop(1000);
  await stopAll();
  rmSync(work, { recursive: true, force: true });
});

/** An http port in front of one group, plain (a listener) or TLS (an exposure with a certificate), and its clients. */
interface Front {
  readonly secure: boolean;
  routes(port: number, g: UpstreamGroup): ProxyRoutes;
  /** The route's metrics listener name. */
  name(port: number): string;
  dial(port: number, allowHalfOpen?: boolean): Socket;
}

const FRONTS: Front[] = [
  {
    secure: false,
    routes: (port, g) => routes(listener(port, 'http', [g])),
    name: (port) => String(port),
    dial: (port, allowHalfOpen = false) => connect({ host: '127.0.0.1', port, allowHalfOpen }),
  },
  {
    secure: true,
    routes: (port, g) => routesWith([], [exposure('app', port, 'http', [g], { hosts: ['app.example.com'], tls: { cert: cert.certPath, key: cert.keyPath } })]),
    name: () => 'app',
    // allowHalfOpen reaches the TLSSocket (Node's types leave it out of tls.connect's options).
    dial: (port, allowHalfOpen = false) => tlsConnect({ host: '127.0.0.1', port, servername: 'app.example.com', ca: ca.cert, allowHalfOpen } as ConnectionOptions),
  },
];
const CONNECTED = (f: Front) => (f.secure ? 'secureConnect' : 'connect');

interface WithSessions {
  frontends: Map<string, { sessions: Set<{ id?: number }> }>;
}

/** The addon's ids of the open sessions (NativeTcpSession keeps its id private). */
function openIds(p: Proxy): number[] {
  const ids: number[] = [];
  for (const f of (p as unknown as WithSessions).frontends.values()) for (const s of f.sessions) if (typeof s.id === 'number') ids.push(s.id);
  return ids;
}

/** A client that keeps its connection open: send(line) resolves with the answer line. */
function client(port: number): Promise<{ send(line: string): Promise<string>; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    let waiting: ((l: string) => void) | null = null;
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0 && waiting) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = waiting;
        waiting = null;
        w(line);
      }
    });
    s.on('error', () => {});
    s.on('connect', () =>
      resolve({
        send: (line) =>
          new Promise((res, rej) => {
            waiting = res;
            s.write(`${line}\n`);
            setTimeout(() => rej(new Error(`no answer to ${line}`)), 5000).unref();
          }),
        close: () =>
          new Promise((res) => {
            s.once('close', () => res());
            s.end();
          }),
      }),
    );
    s.once('error', reject);
  });
}

describe('the native relay', { skip: relay ? false : 'the native relay is not built' }, () => {
  test("a closed connection's id finds nothing, not the next connection in its slot", async () => {
    const a = await lineEcho('127.0.0.41', 'a');
    const port = await freePort();
    await proxy!.apply(routes(listener(port, 'tcp', [group('ids:1', 'tcp', [upstream('127.0.0.41', a.port)])])));
    const first = await client(port);
    assert.equal(await first.send('one'), 'a:one');
    const [old] = openIds(proxy!);
    assert.equal(typeof old, 'number');
    await first.close();
    await until('the first connection is gone', () => openIds(proxy!).length === 0 && relay!.open === 0);

    const second = await client(port);
    assert.equal(await second.send('two'), 'a:two');
    const [now] = openIds(proxy!);
    assert.equal(now! % 2 ** 21, old! % 2 ** 21, 'the second connection took the first one\'s slot (a free slot is reused first)');
    assert.notEqual(now, old);
    // Calls about the old id are no-ops: no peer, no connect, and neither reset nor abort touches the new tenant.
    assert.equal(relay!.peer(old!), null);
    assert.equal(relay!.connect(old!, '127.0.0.41', a.port, 1000, 1000), false);
    relay!.reset(old!);
    relay!.abort(old!);
    assert.equal(await second.send('three'), 'a:three');
    assert.equal(relay!.peer(now!), '127.0.0.1');
    await second.close();
    await until('nothing is held', () => openIds(proxy!).length === 0 && relay!.open === 0);
  });

  test('a burst of connections larger than one batch of events: all relayed, closed and counted', async () => {
    const a = await lineEcho('127.0.0.42', 'a');
    const port = await freePort();
    await proxy!.apply(routes(listener(port, 'tcp', [group('burst:1', 'tcp', [upstream('127.0.0.42', a.port)])])));
    const N = 1500; // 3 events each (accepted, connected, closed), more than EV_BATCH (2048) in all
    const answers = await Promise.all(
      Array.from(
        { length: N },
        (_, i) =>
          new Promise<string>((resolve) => {
            const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
            let buf = '';
            s.setEncoding('utf8');
            s.on('connect', () => s.end(`n${i}\n`));
            s.on('data', (d: string) => (buf += d));
            s.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
            s.on('close', () => resolve(buf));
          }),
      ),
    );
    assert.deepEqual(
      answers.filter((x, i) => x !== `a:n${i}\n`),
      [],
    );
    const stats = proxy!.metrics.route(String(port), 'burst:1');
    await until('every connection is counted closed', () => stats.closed === N);
    assert.equal(stats.opened, N);
    assert.equal(stats.active, 0);
    await until('nothing is held', () => openIds(proxy!).length === 0 && relay!.open === 0);
  });

  test("a closed listener's id is not given to the next listener (an accept still queued for it is refused)", async () => {
    const owner = { accepted: (id: number) => relay!.reset(id) };
    const port = await freePort();
    const first = relay!.listen('127.0.0.1', port, owner);
    relay!.closeListener(first);
    // The same port again at once: the close frees it synchronously.
    const second = relay!.listen('127.0.0.1', port, owner);
    relay!.closeListener(second);
    assert.notEqual(second, first);
  });

  for (const front of FRONTS) {
  const on = front.secure ? 'a TLS exposure (TLS in the addon)' : 'an http port on stream sockets';
  test(`${on}: a large body to a slow reader, both ways, arrives whole; nothing is held after`, async () => {
    const SIZE = 3 * 1024 * 1024;
    const body = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i++) body[i] = (i * 31 + (i >> 11)) & 0xff;
    const sha = (b: Buffer) => createHash('sha1').update(b).digest('hex');
    const app = await httpUpstream('127.0.0.43', (req, res) => {
      if (req.method === 'GET') return void res.end(body);
      // A slow reader of the request body: 64 KiB, then a pause.
      const h = createHash('sha1');
      req.on('data', (d: Buffer) => {
        h.update(d);
        req.pause();
        setTimeout(() => req.resume(), 5);
      });
      req.on('end', () => res.end(h.digest('hex')));
    });
    const own = new Proxy({ log: testLog, dataPath: 'native' });
    const port = await freePort();
    await own.apply(front.routes(port, group('big:1', 'http', [upstream('127.0.0.43', app.port)])));
    assert.equal(own.status().frontends.find((f) => f.key === `tcp 127.0.0.1:${port}`)?.native, true);
    // One connection, two requests: the GET read slowly by the client, then a POST the app reads slowly.
    const s = front.dial(port);
    await new Promise((r) => s.once(CONNECTED(front), r));
    const got: Buffer[] = [];
    let n = 0;
    const response = (want: number) =>
      new Promise<Buffer>((resolve) => {
        const onData = (d: Buffer) => {
          got.push(d);
          n += d.length;
          s.pause();
          setTimeout(() => s.resume(), 2);
          const all = Buffer.concat(got);
          const headEnd = all.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const len = Number(/content-length: (\d+)/i.exec(all.subarray(0, headEnd).toString('latin1'))?.[1]);
          if (all.length - headEnd - 4 < Math.min(len, want)) return;
          s.removeListener('data', onData);
          got.length = 0;
          n = 0;
          resolve(all.subarray(headEnd + 4, headEnd + 4 + len));
        };
        s.on('data', onData);
      });
    s.write(`GET /big HTTP/1.1\r\nHost: app.example.com\r\n\r\n`);
    const down = await response(SIZE);
    assert.equal(down.length, SIZE);
    assert.equal(sha(down), sha(body));
    s.write(`POST /sink HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: ${SIZE}\r\n\r\n`);
    s.write(body);
    const up = await response(40);
    assert.equal(up.toString(), sha(body));
    assert.equal(n, 0);
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
    await own.stop(1000);
    await until('nothing is held (pooled upstream connections closed with the proxy)', () => relay!.open === 0);
  });

  test(`${on}: a WebSocket tunnel is spliced in the addon: bytes both ways, a half-close, a reset, counted`, async () => {
    const SIZE = 2 * 1024 * 1024;
    const blob = (seed: number) => {
      const b = Buffer.alloc(SIZE);
      for (let i = 0; i < SIZE; i++) b[i] = (i * seed + (i >> 9)) & 0xff;
      return b;
    };
    const toApp = blob(7);
    const toClient = blob(13);
    const sha = (b: Buffer) => createHash('sha1').update(b).digest('hex');
    const appGot: string[] = [];
    const app = await httpUpstream('127.0.0.44', (_req, res) => res.end('not an upgrade'));
    app.server.on('upgrade', (req, socket: import('node:net').Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      if (req.url === '/reset') return void setTimeout(() => socket.resetAndDestroy(), 50);
      const h = createHash('sha1');
      let n = 0;
      socket.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      // After the client's end: the app answers its whole blob, then ends (the tunnel is half-closed meanwhile).
      socket.on('end', () => {
        appGot.push(`${n} ${h.digest('hex')}`);
        socket.end(toClient);
      });
    });
    const spliced: number[] = [];
    const splice = relay!.splice.bind(relay!);
    relay!.splice = (a: number, b: number) => {
      const ok = splice(a, b);
      spliced.push(ok ? 1 : 0);
      return ok;
    };
    const own = new Proxy({ log: testLog, dataPath: 'native' });
    try {
      const port = await freePort();
      await own.apply(front.routes(port, group('ws:1', 'http', [upstream('127.0.0.44', app.port)])));
      const tunnel = (path: string, send: Buffer | null) =>
        new Promise<{ body: Buffer; end: string }>((resolve) => {
          const s = front.dial(port, true);
          const got: Buffer[] = [];
          let head = true;
          s.on(CONNECTED(front), () => s.write(`GET ${path} HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`));
          s.on('data', (d: Buffer) => {
            got.push(d);
            if (head && Buffer.concat(got).includes('\r\n\r\n')) {
              head = false;
              if (send) s.end(send); // the whole blob, then a half-close
            }
            s.pause(); // a slow reader
            setTimeout(() => s.resume(), 1);
          });
          const done = (end: string) => {
            const all = Buffer.concat(got);
            resolve({ body: all.subarray(all.indexOf('\r\n\r\n') + 4), end });
          };
          s.on('end', () => done('end'));
          s.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
          setTimeout(() => done('timeout'), 20_000).unref();
        });
      const ok = await tunnel('/ws', toApp);
      assert.equal(ok.end, 'end');
      assert.deepEqual(appGot, [`${SIZE} ${sha(toApp)}`]);
      assert.equal(ok.body.length, SIZE);
      assert.equal(sha(ok.body), sha(toClient));
      const reset = await tunnel('/reset', null);
      assert.equal(reset.end, 'ECONNRESET');
      assert.deepEqual(spliced, [1, 1]);
      const stats = own.metrics.route(front.name(port), 'ws:1');
      await until('both connections counted closed', () => stats.closed === 2);
      assert.ok(stats.receivedBytes >= SIZE && stats.receivedBytes < SIZE + 1000, `received ${stats.receivedBytes}`);
      assert.ok(stats.sentBytes >= SIZE && stats.sentBytes < SIZE + 1000, `sent ${stats.sentBytes}`);
    } finally {
      relay!.splice = splice;
      await own.stop(1000);
    }
    await until('nothing is held', () => relay!.open === 0);
  });
  }
});
