/**
 * `glow proxy` as a real child process, driven by real signals: readiness through NOTIFY_SOCKET (received by
 * socat, as systemd would), routes changed under load with SIGHUP (no connection dropped, a removed listener
 * drains, a new one opens, a changed upstream set applies to new connections), a bad routes file refused with
 * the old routes kept, and SIGTERM draining and exiting. The admin socket is read as glowd reads it, and its
 * /metrics text must pass `promtool check metrics`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ProxyRoutes } from '../../src/render/routes.js';
import { adminGet, exchange, freePort, group, lineEcho, listener, onStop, routes, sample, stopAll, until, upstream } from './helpers.js';

const ENTRY = fileURLToPath(new URL('./fixtures/glow-proxy.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'glow-proxy-process-'));

after(async () => {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
});

function writeRoutes(file: string, r: ProxyRoutes | string): void {
  // As glowd does: a temporary file renamed over the old one.
  writeFileSync(`${file}.tmp`, typeof r === 'string' ? r : `${JSON.stringify(r, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** A connection that stays open and answers a line at a time. */
async function longLived(port: number): Promise<{ socket: Socket; ask(line: string): Promise<string> }> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  onStop(() => {
    socket.destroy();
  });
  let buf = '';
  const waiting: ((line: string) => void)[] = [];
  socket.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()?.(line);
    }
  });
  return {
    socket,
    ask: (line) =>
      new Promise((resolve, reject) => {
        waiting.push(resolve);
        socket.write(`${line}\n`, (e) => e && reject(e));
      }),
  };
}

describe('glow proxy process', () => {
  test('ready, reloaded under load without a dropped connection, a bad file refused, SIGTERM drains', async () => {
    const a = await lineEcho('127.0.0.2', 'a');
    const b = await lineEcho('127.0.0.3', 'b');
    const c = await lineEcho('127.0.0.4', 'c');
    const [kept, removed, added] = [await freePort(), await freePort(), await freePort()];
    const file = join(work, 'routes.json');
    const adminPath = join(work, 'admin.sock');
    writeRoutes(file, routes(listener(kept, 'tcp', [group('svc:1', 'tcp', [upstream('127.0.0.2', a.port)])]), listener(removed, 'tcp', [group('old:1', 'tcp', [upstream('127.0.0.4', c.port)])])));

    // systemd's side of NOTIFY_SOCKET: a unix datagram socket, here socat's.
    const notifyPath = join(work, 'notify.sock');
    const socat = spawn('socat', ['-u', `UNIX-RECV:${notifyPath}`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'inherit'] });
    onStop(() => {
      socat.kill();
    });
    let notified = '';
    socat.stdout.on('data', (d: Buffer) => (notified += d.toString()));
    await until('socat listens', () => existsSync(notifyPath));

    const proxy = spawn(process.execPath, [ENTRY, '--routes', file, '--admin', adminPath, '--drain-timeout', '5000'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NOTIFY_SOCKET: notifyPath },
    });
    let logs = '';
    proxy.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
    onStop(async () => {
      if (proxy.exitCode === null) {
        proxy.kill('SIGKILL');
        await exited(proxy);
      }
    });

    await until('READY=1 from the proxy', () => notified.includes('READY=1'));
    assert.match(notified, new RegExp(`MAINPID=${proxy.pid}`));
    // Ready means bound: both listeners answer at once.
    assert.equal(await exchange(kept, 'first'), 'a:first');
    assert.equal(await exchange(removed, 'first'), 'c:first');

    const draining = await longLived(removed);
    assert.equal(await draining.ask('before'), 'c:before');

    // Load on the kept listener: new connections all the time, through the reload.
    let stop = false;
    const failures: string[] = [];
    const answers: string[] = [];
    const worker = async () => {
      for (let i = 0; !stop && i < 20_000; i++) {
        try {
          answers.push(await exchange(kept, `w${i}`));
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    };
    const load = Array.from({ length: 4 }, worker);
    await until('load is running', () => answers.length >= 100);

    writeRoutes(file, routes(listener(kept, 'tcp', [group('svc:1', 'tcp', [upstream('127.0.0.3', b.port)])]), listener(added, 'tcp', [group('new:1', 'tcp', [upstream('127.0.0.4', c.port)])])));
    const atReload = answers.length;
    proxy.kill('SIGHUP');
    await until('the new listener answers', async () => {
      try {
        return (await exchange(added, 'hello')) === 'c:hello';
      } catch {
        return false;
      }
    });
    // New connections on the kept listener now go to the new upstream set.
    await until('the changed upstream set serves', () => answers.slice(-20).length === 20 && answers.slice(-20).every((x) => x.startsWith('b:')));
    await until('load ran well past the reload', () => answers.length >= atReload + 300);

    // The removed listener accepts nothing new, and its open connection still works while it drains.
    await assert.rejects(exchange(removed, 'x'), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    assert.equal(await draining.ask('during'), 'c:during');

    // A bad file: refused, counted, and the routes in force stay.
    writeRoutes(file, '{"version": 1, "node": "node-b", "listeners": [{"name": "x"}]}');
    proxy.kill('SIGHUP');
    await until('the bad reload is counted', async () => sample((await adminGet(adminPath, '/metrics')).body, 'glow_proxy_reloads_total', { result: 'error' }) === 1);
    assert.equal(await exchange(added, 'still'), 'c:still');
    const before = answers.length;
    await until('load still runs after the bad file', () => answers.length >= before + 100);

    stop = true;
    await Promise.all(load);
    assert.deepEqual(failures, [], 'no connection failed across the reloads');
    assert.ok(answers.some((x) => x.startsWith('a:')) && answers.some((x) => x.startsWith('b:')));

    const text = (await adminGet(adminPath, '/metrics')).body;
    assert.equal(sample(text, 'glow_proxy_reloads_total', { result: 'ok' }), 1);
    assert.equal(sample(text, 'glow_proxy_refused_total', { listener: String(kept), service: 'svc:1', reason: 'connect_failed' }), 0);
    assert.equal(sample(text, 'glow_proxy_connections_opened_total', { listener: String(kept), service: 'svc:1' }), answers.length + 1);
    assert.equal(sample(text, 'glow_proxy_frontend_up', { frontend: `tcp 127.0.0.1:${added}` }), 1);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(promtool.status, 0, `promtool check metrics:\n${promtool.stdout}${promtool.stderr}`);

    // The load's last connections close on the client's side first: the proxy counts them closed a moment later.
    const expected = JSON.stringify(
      [
        [`tcp 127.0.0.1:${added}`, false, 0],
        [`tcp 127.0.0.1:${kept}`, false, 0],
        [`tcp 127.0.0.1:${removed}`, true, 1],
      ].sort(),
    );
    let seen = '';
    await until(
      'every connection but the draining one closed in /status',
      async () => {
        const status = JSON.parse((await adminGet(adminPath, '/status')).body) as { frontends: { key: string; draining: boolean; connections: number }[] };
        seen = JSON.stringify(status.frontends.map((f) => [f.key, f.draining, f.connections]).sort());
        return seen === expected;
      },
      5000,
    ).catch((e: Error) => assert.fail(`${e.message}: ${seen} instead of ${expected}`));

    // SIGTERM: nothing new is accepted, the open connection still answers while the proxy drains, and the proxy
    // exits 0 as soon as it is closed.
    proxy.kill('SIGTERM');
    await until('the listeners are closed', async () => {
      try {
        await exchange(kept, 'late');
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'ECONNREFUSED';
      }
    });
    assert.equal(await draining.ask('draining'), 'c:draining');
    draining.socket.end();
    assert.equal(await exited(proxy), 0, logs);
    await until('STOPPING=1 from the proxy', () => notified.includes('STOPPING=1'));
    assert.match(logs, /"msg":"routes file refused; the routes in force stay"/);
    assert.match(logs, /GLOW_E_PROXY_ROUTES_INVALID/);
  });

  test('a routes file that cannot be used at start is an error with its code', async () => {
    const file = join(work, 'bad.json');
    writeFileSync(file, '{"version": 2}');
    const r = spawnSync(process.execPath, [ENTRY, '--routes', file, '--admin', join(work, 'bad.sock')], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /GLOW_E_PROXY_ROUTES_INVALID .*\$\.version must be 1/);
  });
});
