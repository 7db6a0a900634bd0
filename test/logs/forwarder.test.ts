/**
 * The forwarding shell without systemd: LogForwarders with a stand-in journalctl (fixtures/fake-journalctl.ts)
 * and real sinks — an HTTP receiver on port 0 whose answers each test scripts, files in a temporary directory.
 * The same behaviour on a real journald, rsyslog and glowd is in logs-node.test.ts.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Sink } from '../../src/config/model.js';
import { LogForwarders } from '../../src/logs/manager.js';
import { jsonEntry } from './helpers.js';

const FAKE = fileURLToPath(new URL('./fixtures/fake-journalctl.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'glow-logs-'));
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
/** A fresh directory with a fake journal and a journalctl wrapper that reads it. */
function setup(entries: string[]) {
  const dir = join(work, `t${++n}`);
  const journal = join(dir, 'journal.jsonl');
  const journalctl = join(dir, 'journalctl');
  mkdirSync(dir, { recursive: true });
  writeFileSync(journal, entries.map((e) => `${e}\n`).join(''));
  // The journalctl the forwarder runs: the stand-in, reading this test's journal.
  writeFileSync(journalctl, `#!/bin/sh\nFAKE_JOURNAL='${journal}' exec '${process.execPath}' '${FAKE}' "$@"\n`, { mode: 0o755 });
  const registry = new Registry();
  const logs = new LogForwarders({
    node: 'node-a',
    stateDir: join(dir, 'state'),
    registry,
    log: pino({ level: 'silent' }),
    journalctl,
    limits: { backoff: { baseMs: 20, maxMs: 200 }, startBackoff: { baseMs: 50, maxMs: 200 }, stopTimeoutMs: 1000 },
  });
  running.push(logs);
  return { dir, journal, logs, registry, cursor: (sink: string) => readFileSync(join(dir, 'state', 'logs', `${sink}.cursor`), 'utf8').trim() };
}

const running: LogForwarders[] = [];
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((l) => l.stop()));
  const list = servers.splice(0);
  for (const s of list) s.closeAllConnections();
  await Promise.all(list.map((s) => new Promise((r) => s.close(r))));
});

/** Numbered lines `<app> <i>` from two instances, interleaved. */
function numbered(count: number, apps = ['web', 'api']): string[] {
  const out: string[] = [];
  for (let i = 1; i <= count; i++) for (const app of apps) out.push(jsonEntry({ message: `${app} ${i}`, app, cursor: `${app}-${i}` }));
  return out;
}

interface Receiver {
  port: number;
  /** Every JSON line received in an acknowledged (2xx) request, in order. */
  lines: { app: string; message: string; message_base64?: string }[];
  requests: number;
}

/** An HTTP sink receiver; `answer` decides each request's status (and may delay it). */
async function receiver(answer: (body: string, i: number) => number | Promise<number> = () => 200): Promise<Receiver> {
  const r: Receiver = { port: 0, lines: [], requests: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', async () => {
      const status = await answer(body, r.requests++);
      if (status >= 200 && status < 300) for (const l of body.split('\n').filter(Boolean)) r.lines.push(JSON.parse(l));
      if (!res.destroyed) res.writeHead(status).end(status >= 400 ? `refused (${status})` : '');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.port = (server.address() as { port: number }).port;
  return r;
}

const httpSink = (port: number, over: Partial<Sink> = {}): Sink => ({ name: 'collector', type: 'http', url: `http://127.0.0.1:${port}/ingest`, batchSize: 100, batchWaitMs: 50, ...over });

async function eventually<T>(fn: () => T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function perApp(lines: { app: string; message: string }[], app: string): number[] {
  return lines.filter((l) => l.app === app).map((l) => Number(l.message.split(' ')[1]));
}
const range = (k: number) => Array.from({ length: k }, (_, i) => i + 1);

describe('log forwarding (stand-in journalctl, real sinks)', { timeout: 180_000 }, () => {
  test('10,000 numbered lines of two instances arrive complete and in order; the cursor is the last one', async () => {
    const t = setup(numbered(5000));
    const rx = await receiver();
    t.logs.apply([httpSink(rx.port)], new Map());
    await eventually(() => rx.lines.length >= 10_000, '10,000 lines');
    assert.deepEqual(perApp(rx.lines, 'web'), range(5000));
    assert.deepEqual(perApp(rx.lines, 'api'), range(5000));
    await eventually(() => existsSync(join(t.dir, 'state/logs/collector.cursor')) && t.cursor('collector') === 'api-5000', 'the last cursor stored');
    await eventually(() => t.logs.status()[0]!.lagSeconds === 0, 'caught up');
    const metrics = await t.registry.metrics();
    assert.match(metrics, /^glow_log_records_forwarded_total\{sink="collector",type="http"\} 10000$/m);
    assert.match(metrics, /^glow_log_lag_seconds\{sink="collector",type="http"\} 0$/m);
    assert.match(metrics, /^glow_log_forwarded_bytes_total\{sink="collector",type="http"\} \d{6,}$/m);
    const [status] = t.logs.status();
    assert.equal(status!.state, 'running');
    assert.equal(status!.forwarded, 10_000);
  });

  test('a sink that fails (5xx, then refused connections) gets every line once it is back; retries are counted', async () => {
    const t = setup(numbered(500));
    let failing = true;
    const rx = await receiver(() => (failing ? 503 : 200));
    t.logs.apply([httpSink(rx.port)], new Map());
    await eventually(() => rx.requests >= 3, 'three refused attempts');
    const s = t.logs.status()[0]!;
    assert.equal(s.state, 'retrying');
    assert.equal(s.lastError?.code, 'GLOW_E_LOG_SEND');
    assert.match(s.lastError!.message, /answered 503/);
    assert.ok(s.lagSeconds > 0, 'lag grows while the sink is down');
    failing = false;
    await eventually(() => rx.lines.length >= 1000, 'every line after recovery');
    assert.deepEqual(perApp(rx.lines, 'web'), range(500));
    assert.equal(t.logs.status()[0]!.state, 'running');
    const metrics = await t.registry.metrics();
    assert.match(metrics, /^glow_log_retries_total\{sink="collector",type="http"\} [1-9]/m);
    assert.match(metrics, /^glow_log_send_failures_total\{sink="collector",type="http",reason="error"\} [1-9]/m);
  });

  test('a batch the sink rejects with a 4xx is reported and skipped, never retried; the lines after it arrive', async () => {
    const entries = numbered(300, ['web']);
    entries.splice(150, 0, jsonEntry({ message: 'poison', app: 'web', cursor: 'poison' }));
    const t = setup(entries);
    let rejected = 0;
    const rx = await receiver((body) => (body.includes('poison') ? (rejected++, 400) : 200));
    t.logs.apply([httpSink(rx.port, { batchSize: 50 })], new Map());
    await eventually(() => perApp(rx.lines, 'web').at(-1) === 300, 'the last line');
    assert.equal(rejected, 1, 'the rejected batch was sent once');
    const got = perApp(rx.lines, 'web');
    const s = t.logs.status()[0]!;
    assert.ok(s.rejected > 0 && s.rejected <= 50, `one batch rejected (${s.rejected} records)`);
    assert.equal(got.length + s.rejected, 301, 'only the rejected batch is missing');
    const missing = range(300).filter((i) => !got.includes(i));
    assert.deepEqual(missing, range(missing.length).map((i) => missing[0]! + i - 1), 'the missing lines are the batch around the poison');
    assert.ok(missing[0]! <= 151 && missing.at(-1)! >= 150);
    assert.equal(s.lastError?.code, 'GLOW_E_LOG_REJECTED');
    assert.match(s.lastError!.message, /answered 400: refused/);
    assert.match(await t.registry.metrics(), new RegExp(`^glow_log_records_rejected_total\\{sink="collector",type="http"\\} ${s.rejected}$`, 'm'));
  });

  test('a batch too large for the sink (413) is split until it fits', async () => {
    const t = setup(numbered(200, ['web']));
    const rx = await receiver((body) => (body.split('\n').length > 26 ? 413 : 200));
    t.logs.apply([httpSink(rx.port, { batchSize: 100 })], new Map());
    await eventually(() => rx.lines.length >= 200, 'every line');
    assert.deepEqual(perApp(rx.lines, 'web'), range(200));
    assert.equal(t.logs.status()[0]!.rejected, 0);
  });

  test('a slow sink slows reading: journalctl is held back by the pipe, nothing queues in glowd', async () => {
    const t = setup(numbered(10_000, ['web']));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const rx = await receiver(async () => {
      await gate;
      return 200;
    });
    t.logs.apply([httpSink(rx.port, { batchSize: 100 })], new Map());
    await eventually(() => rx.requests >= 1, 'the first request');
    await new Promise((r) => setTimeout(r, 1000));
    const written = Number(readFileSync(`${t.journal}.progress`, 'utf8'));
    // Three batches of 100 (in flight, ready, filling), one 64 KiB chunk and the pipe's 64 KiB: well under 1,000.
    assert.ok(written < 1000, `journalctl wrote ${written} of 10,000 lines while the sink did not answer`);
    release();
    await eventually(() => rx.lines.length >= 10_000, 'every line once the sink answers', 20_000);
    assert.deepEqual(perApp(rx.lines, 'web'), range(10_000));
  });

  test('the file sink writes JSON lines per app and reopens a file that was rotated away', async () => {
    const t = setup(numbered(100));
    const path = join(t.dir, 'out', '{app}.log');
    t.logs.apply([{ name: 'files', type: 'file', path, batchSize: 20, batchWaitMs: 20 }], new Map());
    const web = join(t.dir, 'out', 'web.log');
    const count = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).length : 0);
    await eventually(() => count(web) === 100 && count(join(t.dir, 'out', 'api.log')) === 100, '100 lines in each file');
    renameSync(web, `${web}.1`);
    appendFileSync(t.journal, numbered(150).slice(200).map((e) => `${e}\n`).join(''));
    await eventually(() => count(web) === 50, 'the new lines in a new web.log');
    const all = [...readFileSync(`${web}.1`, 'utf8').split('\n'), ...readFileSync(web, 'utf8').split('\n')].filter(Boolean).map((l) => JSON.parse(l) as { message: string; app: string });
    assert.deepEqual(perApp(all, 'web'), range(150));
    assert.equal(all[0]!.app, 'web');
  });

  test('a stored cursor journalctl refuses is put aside and the sink starts afresh', async () => {
    const t = setup(numbered(50, ['web']));
    mkdirSync(join(t.dir, 'state/logs'), { recursive: true });
    writeFileSync(join(t.dir, 'state/logs/collector.cursor'), 'not-a-cursor\n');
    const rx = await receiver();
    t.logs.apply([httpSink(rx.port)], new Map());
    await eventually(() => rx.lines.length >= 50, 'every line');
    assert.equal(readFileSync(join(t.dir, 'state/logs/collector.cursor.bad'), 'utf8'), 'not-a-cursor\n');
    assert.equal(t.logs.status()[0]!.lastError?.code, 'GLOW_E_LOG_CURSOR');
    await eventually(() => existsSync(join(t.dir, 'state/logs/collector.cursor')) && t.cursor('collector') === 'web-50', 'the new cursor');
  });

  test('a sink that cannot start is reported as failed and the others go on', async () => {
    const t = setup(numbered(100, ['web']));
    const rx = await receiver();
    t.logs.apply(
      [httpSink(rx.port), { name: 'secure', type: 'syslog', url: 'tls://127.0.0.1:1', tls: { ca: { node: '/nonexistent/ca.pem' } }, batchSize: 100, batchWaitMs: 50 }],
      new Map(),
    );
    await eventually(() => rx.lines.length >= 100, 'the http sink delivers');
    const secure = await eventually(() => t.logs.status().find((s) => s.name === 'secure' && s.state === 'failed'), 'the tls sink failed');
    assert.equal(secure.lastError?.code, 'GLOW_E_SINK_TLS');
    assert.match(secure.lastError!.message, /cannot read the ca file \/nonexistent\/ca\.pem/);
  });

  test('apply is level-triggered: an unchanged sink is left alone, a changed one restarts from its cursor', async () => {
    const t = setup(numbered(100, ['web']));
    const rx = await receiver();
    const sink = httpSink(rx.port);
    t.logs.apply([sink], new Map());
    await eventually(() => rx.lines.length >= 100 && t.logs.status()[0]!.forwarded === 100, 'the first 100 acknowledged');
    t.logs.apply([{ ...sink }], new Map());
    assert.equal(t.logs.status()[0]!.forwarded, 100, 'the same forwarder');
    t.logs.apply([{ ...sink, batchSize: 10 }], new Map());
    appendFileSync(t.journal, numbered(150, ['web']).slice(100).map((e) => `${e}\n`).join(''));
    await eventually(() => rx.lines.length >= 150, 'the next 50, from the cursor');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(perApp(rx.lines, 'web'), range(150), 'nothing twice, nothing lost');
    const args = readFileSync(`${t.journal}.args`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    assert.equal(args.length, 2);
    assert.ok(args[1]!.includes('--after-cursor=web-100'), args[1]!.join(' '));
    t.logs.apply([], new Map());
    await eventually(() => t.logs.status().length === 0, 'the sink removed');
  });
});
