/**
 * Log forwarding end to end on a real systemd node (test/harness) with real journald: glowd follows the journal of
 * an app's two instances and forwards to six sinks at once — a file, an http and a loki receiver (small servers in
 * the node), and rsyslogd (Debian's, with its own configuration) over UDP, TCP and TLS with a throwaway CA and a
 * client certificate. The tests run in order on one node, as an operator's day would.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, Glowd, GLOW, metricsText, NODE, Repo, sleep } from '../systemd/fixture.js';
import { bootNode, stopAll } from '../harness/systemd-node.js';
import type { SystemdNode } from '../harness/systemd-node.js';
import { installPeers, makeCertificates, numbersOf, packGenerator, received, runJob, SINKS, startReceiver, stopReceiver } from './node-fixture.js';
import type { SinkName } from './node-fixture.js';

after(stopAll);

const BATCH = 500;
const range = (k: number) => Array.from({ length: k }, (_, i) => i + 1);

function glowYaml(tls: string, extra = ''): string {
  return `artifacts: ARTIFACTS
logs:
  sinks:
    - { name: file, type: file, path: "/var/log/glow/{app}.log", batch_size: ${BATCH} }
    - { name: http, type: http, url: "http://127.0.0.1:8088/ingest", batch_size: ${BATCH} }
    - { name: loki, type: loki, url: "http://127.0.0.1:3100", batch_size: ${BATCH} }
    - { name: udp, type: syslog, url: "udp://127.0.0.1:5514", batch_size: ${BATCH} }
    - { name: tcp, type: syslog, url: "tcp://127.0.0.1:5514", batch_size: ${BATCH} }
    - name: tls
      type: syslog
      url: "tls://127.0.0.1:6514"
      batch_size: ${BATCH}
      tls: { ca: files/tls/ca.pem, cert: ${tls}/client.pem, key: ${tls}/client.key }
${extra}`;
}

describe('log forwarding on a real systemd node', { timeout: 300_000 }, () => {
  let node: SystemdNode;
  let repo: Repo;
  let glowd: Glowd;
  let tls: string;

  const writeSettings = (extra = '') => repo.write('glow.yaml', glowYaml(tls, extra).replace('ARTIFACTS', repo.artifacts));

  /** Waits until `sinks` hold all `count` lines of job `id` from both instances; returns the duplicates seen. */
  async function arrived(id: string, count: number, sinks: readonly SinkName[] = SINKS, timeoutMs = 60_000): Promise<Record<string, number>> {
    const dups: Record<string, number> = {};
    await eventually(
      async () => {
        for (const sink of sinks) {
          const got = received(node, sink);
          let d = 0;
          for (const inst of ['1', '2']) {
            const { firsts, duplicates } = numbersOf(got, id, inst);
            if (firsts.length < count) return false;
            d += duplicates;
          }
          dups[sink] = d;
        }
        return true;
      },
      `job ${id}: ${count} lines per instance at ${sinks.join(', ')}`,
      timeoutMs,
    ).catch(async (e: Error) => {
      const state = sinks.map((s) => `${s}: ${['1', '2'].map((i) => numbersOf(received(node, s), id, i).firsts.length).join('/')}`).join('; ');
      throw new Error(`${e.message}\nreceived: ${state}\nstatus: ${JSON.stringify((await glowd.status().catch(() => undefined))?.sinks, null, 1)}\nglowd log:\n${glowd.log.slice(-4000)}`);
    });
    // Complete and in order, per instance, at every sink.
    for (const sink of sinks) {
      const got = received(node, sink);
      for (const inst of ['1', '2']) assert.deepEqual(numbersOf(got, id, inst).firsts, range(count), `${sink}, instance ${inst}: every line once, in order`);
    }
    return dups;
  }

  before(async () => {
    repo = new Repo('glow-logs-');
    tls = join(repo.root, 'tls');
    makeCertificates(tls);
    repo.write('files/tls/ca.pem', readFileSync(join(tls, 'ca.pem'), 'utf8'));
    packGenerator(repo);
    writeSettings();
    repo.write('nodes/logs-a.yaml', 'address: 10.77.0.11\n');
    repo.write('apps/gen.yaml', 'image: gen\nversion: "1.0"\nruntime: exec\ncommand: [bin/gen]\n');
    repo.write('deployments/gen-1.yaml', 'app: gen\nnode: logs-a\n');
    repo.write('deployments/gen-2.yaml', 'app: gen\nnode: logs-a\n');
    node = await bootNode({ name: 'logs-a', binds: [repo.root] });
    await installPeers(node, tls);
    glowd = new Glowd(node, repo);
    glowd.start();
    await glowd.until((s) => s.instances.filter((i) => i.activeState === 'active').length === 2, 'both generators active');
    for (const inst of ['1', '2']) {
      await node.waitForJournalEntry(['GLOW_APP=gen', `GLOW_INSTANCE=${inst}`], (e) => e.MESSAGE === 'gen ready', 10_000);
    }
    await glowd.until((s) => s.sinks.length === 6 && s.sinks.every((k) => k.state === 'running'), 'six sinks running');
  });

  after(async () => {
    await glowd?.stop();
    repo?.cleanup();
  });

  test('10,000 numbered lines from two instances arrive complete and in order at all six sinks, with their fields', async () => {
    await runJob(node, { id: 'a', count: 5000 });
    const dups = await arrived('a', 5000);
    assert.deepEqual(dups, { file: 0, http: 0, loki: 0, udp: 0, tcp: 0, tls: 0 });

    // The fields every record carries, as each sink shows them.
    const rec = received(node, 'http').find((g) => g.text === 'a 1' && g.instance === '2')!.fields!;
    assert.deepEqual(
      { app: rec['app'], version: rec['version'], instance: rec['instance'], node: rec['node'], unit: rec['unit'], priority: rec['priority'], stream: rec['stream'] },
      { app: 'gen', version: '1.0', instance: 2, node: 'logs-a', unit: 'glow-gen@2.service', priority: 6, stream: 'stdout' },
    );
    const ageUs = Date.now() * 1000 - (rec['timestamp_us'] as number);
    assert.ok(ageUs > 0 && ageUs < 120e6, `a journal timestamp in microseconds (${rec['timestamp_us']})`);
    assert.match(rec['time'] as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const loki = received(node, 'loki').find((g) => g.text === 'a 1' && g.instance === '1')!.fields!;
    assert.deepEqual({ app: loki['app'], instance: loki['instance'], node: loki['node'] }, { app: 'gen', instance: '1', node: 'logs-a' });
    assert.match(loki['ts'] as string, /^\d{19}$/);
    const syslog = received(node, 'tls').find((g) => g.text === 'a 1' && g.instance === '1')!.fields!;
    assert.match(syslog['head'] as string, /^gen \d+ \[glow@32473 app="gen" version="1\.0" instance="1" node="logs-a" unit="glow-gen@1\.service" stream="stdout"\]$/);

    // The metrics, as Prometheus reads them.
    const m = await eventually(async () => {
      const text = await metricsText(node);
      return /^glow_log_records_forwarded_total\{sink="tls",type="syslog",node="logs-a"\} 1\d{4}$/m.test(text) && text;
    }, 'forwarded records in the metrics');
    for (const sink of SINKS) assert.match(m, new RegExp(`^glow_log_forwarded_bytes_total\\{sink="${sink}",type="\\w+",node="logs-a"\\} [1-9]\\d+$`, 'm'));
    assert.match(m, /^glow_log_lag_seconds\{sink="http",type="http",node="logs-a"\} /m);
    assert.match(m, /^glow_log_last_forwarded_timestamp_seconds\{sink="loki",type="loki",node="logs-a"\} 1\d{9}(\.\d+)?$/m);
    const status = await glowd.status();
    assert.deepEqual(status.sinks.map((k) => [k.name, k.type, k.state]), [['file', 'file', 'running'], ['http', 'http', 'running'], ['loki', 'loki', 'running'], ['tcp', 'syslog', 'running'], ['tls', 'syslog', 'running'], ['udp', 'syslog', 'running']]);
    const cursor = await node.execOk(['cat', '/var/lib/glow/logs/http.cursor']);
    assert.match(cursor.stdout, /^s=[0-9a-f]+;i=[0-9a-f]+;b=[0-9a-f]+;m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+\n$/);
  });

  test('glowd killed (SIGKILL) midway and restarted: every line arrives, duplicates at most one batch per sink', async (t) => {
    await runJob(node, { id: 'b', count: 5000, rate: 2500 });
    await eventually(async () => numbersOf(received(node, 'http'), 'b', '1').firsts.length >= 1000, 'a part of job b forwarded');
    await glowd.stop('SIGKILL');
    const before = numbersOf(received(node, 'http'), 'b', '1').firsts.length;
    assert.ok(before < 5000, 'killed midway');
    // Its six journalctl processes went with it (parent-death signal), none is left waiting.
    await eventually(async () => (await node.exec(['pgrep', '-x', 'journalctl'])).code === 1, 'no journalctl left');
    glowd.start();
    const dups = await arrived('b', 5000);
    t.diagnostic(`killed after ${before} of 5000 lines of instance 1 reached http; duplicates per sink: ${JSON.stringify(dups)}`);
    for (const [sink, d] of Object.entries(dups)) assert.ok(d <= BATCH, `${sink}: ${d} duplicates, at most one batch (${BATCH})`);
  });

  test('a sink down for a while, then back: every line arrives, and the other sinks never paused', async () => {
    await stopReceiver(node, 'http');
    await runJob(node, { id: 'c', count: 3000, rate: 1500 });
    // Loki gets everything while the http sink is down.
    await arrived('c', 3000, SINKS.filter((s) => s !== 'http'));
    assert.ok(numbersOf(received(node, 'http'), 'c', '1').firsts.length === 0, 'nothing reached the stopped receiver');
    const down = await glowd.until((s) => s.sinks.some((k) => k.name === 'http' && k.state === 'retrying' && k.lagSeconds > 1), 'the http sink retrying, its lag growing');
    const http = down.sinks.find((k) => k.name === 'http')!;
    assert.equal(http.lastError?.code, 'GLOW_E_LOG_SEND');
    assert.match(http.lastError!.message, /ECONNREFUSED/);
    assert.ok(down.sinks.filter((k) => k.name !== 'http').every((k) => k.state === 'running' && k.lagSeconds < 1), 'the others are caught up');
    assert.match(await metricsText(node), /^glow_log_send_failures_total\{sink="http",type="http",reason="error",node="logs-a"\} [1-9]/m);
    await startReceiver(node, 'http', 8088, true);
    const dups = await arrived('c', 3000, ['http']);
    assert.ok(dups['http']! <= BATCH);
    await glowd.until((s) => s.sinks.find((k) => k.name === 'http')?.state === 'running', 'the http sink running again');
  });

  test('a non-UTF-8 line and a 100 KiB line arrive intact, as journald stored them', async () => {
    const binary = Buffer.from([0x62, 0x69, 0x6e, 0x20, 0xff, 0xfe, 0x80, 0x41, 0xc3, 0x28, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x21]);
    const big = `big ${'0123456789abcdef'.repeat(6400)}`.slice(0, 102_400);
    await runJob(node, { id: 's', kind: 'special', binary: binary.toString('base64'), big });
    // journald split the long line (LineMax 48 KiB); the journal holds the pieces.
    const pieces = await node.journalEntries(['GLOW_APP=gen', 'GLOW_INSTANCE=1', '_LINE_BREAK=line-max']);
    assert.ok(pieces.length >= 2, 'journald stored the 100 KiB line in pieces');
    const sinks: SinkName[] = ['file', 'http', 'loki', 'tcp', 'tls'];
    await eventually(async () => sinks.every((s) => received(node, s).filter((g) => g.text === 's done').length === 2), 'the special lines at every sink');
    for (const sink of sinks) {
      const got = received(node, sink).filter((g) => g.instance === '1');
      assert.equal(got.filter((g) => g.bytes?.equals(binary)).length, 1, `${sink}: the non-UTF-8 line, byte for byte`);
      const long = got.filter((g) => g.text.startsWith('big '));
      assert.equal(long.length, 1, `${sink}: the long line once, joined`);
      assert.equal(long[0]!.text, big, `${sink}: the long line intact`);
    }
    // UDP carries the non-UTF-8 line too (a 100 KiB datagram it cannot: it is cut at 65,000 bytes).
    assert.equal(received(node, 'udp').filter((g) => g.instance === '1' && g.bytes?.equals(binary)).length, 1);
    const file = received(node, 'file').find((g) => g.instance === '1' && g.bytes?.equals(binary))!;
    assert.equal(file.fields!['message_base64'], binary.toString('base64'));
  });

  test('a sink that rejects a batch with a 4xx: reported and skipped, not retried forever; the lines after it arrive', async () => {
    await runJob(node, { id: 'p', count: 2000, poison: 1000 });
    await arrived('p', 2000, ['file', 'loki', 'tcp']);
    const status = await glowd.until((s) => (s.sinks.find((k) => k.name === 'http')?.rejected ?? 0) > 0, 'the rejection reported');
    const http = status.sinks.find((k) => k.name === 'http')!;
    assert.equal(http.lastError?.code, 'GLOW_E_LOG_REJECTED');
    assert.match(http.lastError!.message, /answered 400: this batch holds poison/);
    assert.ok(http.rejected <= BATCH);
    // Every line but those of the rejected batch arrives, whichever instance they came from.
    const missingNow = () => ['1', '2'].reduce((n, i) => n + 2000 - numbersOf(received(node, 'http'), 'p', i).firsts.length, 0);
    await eventually(async () => missingNow() === http.rejected, 'every line after the rejected batch');
    await sleep(1000);
    assert.equal(missingNow(), http.rejected, 'exactly the rejected records are missing');
    const rejectedBatches = (await node.execOk(['cat', '/var/log/rx/http.rejected'])).stdout.trim().split('\n');
    assert.deepEqual(rejectedBatches, ['batch'], 'the rejected batch was sent once');
    assert.match(await metricsText(node), new RegExp(`^glow_log_records_rejected_total\\{sink="http",type="http",node="logs-a"\\} ${http.rejected}$`, 'm'));
  });

  test('a sink that cannot start is reported by glow status; a broken glow.yaml keeps the last good sinks', async () => {
    writeSettings('    - { name: broken, type: syslog, url: "tls://127.0.0.1:6514", tls: { ca: /nonexistent/ca.pem } }\n');
    const s = await glowd.until((st) => st.sinks.some((k) => k.name === 'broken' && k.state === 'failed'), 'the broken sink reported');
    const broken = s.sinks.find((k) => k.name === 'broken')!;
    assert.equal(broken.lastError?.code, 'GLOW_E_SINK_TLS');
    const text = await node.exec([NODE, GLOW, 'status']);
    assert.equal(text.code, 1, 'a sink that cannot start is an error');
    assert.match(text.stdout, /log sinks \(7\)/);
    assert.match(text.stdout, /broken +syslog +failed/);
    assert.match(text.stdout, /GLOW_E_SINK_TLS sink broken cannot start: cannot read the ca file \/nonexistent\/ca\.pem/);

    // An unknown sink type: glow check and glowd report it with file:line; the sinks of the last good revision go on.
    writeSettings('    - { name: broken, type: kafka, url: "tcp://127.0.0.1:9092" }\n');
    const bad = await glowd.until((st) => st.configErrors.length > 0, 'the error reported');
    // (with glow.yaml invalid, its `artifacts` is unknown too: the exec app is reported as well)
    assert.deepEqual(bad.configErrors.filter((e) => e.file === 'glow.yaml').map((e) => `${e.file}:${e.line} ${e.code}`), ['glow.yaml:14 GLOW_E_SINK_TYPE']);
    const check = await node.exec([NODE, GLOW, 'check', repo.dir]);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /^glow\.yaml:14:29 GLOW_E_SINK_TYPE `logs\.sinks\[6\]\.type` is `kafka`; it must be one of syslog, loki, http, file/m);
    assert.equal(bad.sinks.length, 7, 'the last good sinks keep running');
    await runJob(node, { id: 'd', count: 300 });
    await arrived('d', 300);
    writeSettings();
    await glowd.until((st) => st.configErrors.length === 0 && st.sinks.length === 6, 'back to six sinks');
  });

  test('glow logs APP on the node: the journal, with instance, lines, JSON and the long line joined', async () => {
    const last = await node.execOk([NODE, GLOW, 'logs', 'gen', '--instance', '2', '-n', '3']);
    assert.deepEqual(last.stdout.trim().split('\n').map((l) => l.replace(/^\S+ /, '')), ['gen#2 d 298', 'gen#2 d 299', 'gen#2 d 300']);
    const json = await node.execOk([NODE, GLOW, 'logs', 'gen', '--since=-10min', '--json']);
    const records = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message: string; instance: number });
    const long = records.filter((r) => r.message.startsWith('big '));
    assert.deepEqual(long.map((r) => [r.instance, r.message.length]).sort(), [[1, 102_400], [2, 102_400]]);
    assert.ok(records.filter((r) => r.message === 'a 5000').length === 2);
    // -f: the last lines, then new ones as they come; ended by SIGINT.
    const follow = node.spawn([NODE, GLOW, 'logs', 'gen', '-f', '--instance', '1']);
    let out = '';
    follow.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => follow.once('exit', r));
    await eventually(async () => out.includes('gen#1 d 300'), 'glow logs -f shows the last lines');
    await runJob(node, { id: 'f', count: 5 });
    await eventually(async () => out.includes('gen#1 f 5\n'), 'glow logs -f follows new lines');
    assert.ok(!out.includes('gen#2'));
    // (the spawned process is nsenter; the command inside the node is its child)
    for (const pid of readFileSync(`/proc/${follow.pid}/task/${follow.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGINT');
    assert.equal(await exited, 0);
    const usage = await node.exec([NODE, GLOW, 'logs', 'Gen']);
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /GLOW_E_LOGS_USAGE/);
  });
});
