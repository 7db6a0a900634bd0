/**
 * `glow status --cluster DIR` against nodes on loopback addresses (127.0.0.2…: Linux routes 127/8 to lo): the real
 * metrics endpoint (src/shell/metrics-server.ts) serving GET /status, a node on an older revision, one with errors,
 * one that accepts connections and never answers, one where nothing listens. Every node is asked at once and none
 * longer than the timeout; exit status 0 only when every node is on DIR's revision without errors. A repository
 * that does not load still names its nodes. The public status drops what a sink said.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadRepository } from '../../src/config/load.js';
import { readRepo } from '../../src/config/source.js';
import type { ClusterView } from '../../src/shell/cluster-view.js';
import { publicStatus } from '../../src/shell/cluster-view.js';
import { MetricsEndpoint } from '../../src/shell/metrics-server.js';
import type { AgentStatus } from '../../src/shell/status.js';
import { GLOW } from '../systemd/fixture.js';

const roots: string[] = [];
const servers: { close(): void }[] = [];
after(() => {
  servers.forEach((s) => s.close());
  roots.forEach((r) => rmSync(r, { recursive: true, force: true }));
});

function repoDir(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'glow-view-'));
  roots.push(root);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return root;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const status = (node: string, revision: string, extra: Partial<AgentStatus> = {}): AgentStatus => ({
  node,
  repo: '/var/lib/glow/repo',
  revision,
  appliedAt: new Date().toISOString(),
  loadedRevision: revision,
  loadedAt: new Date().toISOString(),
  configErrors: [],
  applyErrors: [],
  proxy: undefined,
  instances: [{ unit: 'glow-web@1.service', app: 'web', instance: 1, version: '1', activeState: 'active', subState: 'running', mainPid: 42, since: undefined, desired: true }],
  instancesPlanned: 1,
  sinks: [{ name: 'loki', type: 'loki', state: 'retrying', lastError: { code: 'GLOW_E_LOG_REJECTED', message: 'the server said: token abc123 refused', at: new Date().toISOString() } as never, lagSeconds: 1, forwarded: 0, rejected: 0, lastForwarded: undefined }],
  ...extra,
});

/** A glowd's metrics endpoint on 127.0.0.N:port answering GET /status with `st()`. */
async function node(address: string, port: number, st: () => AgentStatus): Promise<void> {
  const e = new MetricsEndpoint(async () => ({ contentType: 'text/plain', text: '' }), async () => publicStatus(st()));
  await e.bind(`${address}:${port}`);
  servers.push({ close: () => e.close() });
}

/** Accepts connections and never answers. */
async function silent(address: string, port: number): Promise<void> {
  const held: Socket[] = [];
  const s: Server = createServer((c) => held.push(c));
  await new Promise<void>((r) => s.listen(port, address, () => r()));
  servers.push({ close: () => (held.forEach((c) => c.destroy()), s.close()) });
}

function glow(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [GLOW, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const files = (port: number, n: number): Record<string, string> => {
  const f: Record<string, string> = { 'glow.yaml': `metrics: { listen: "127.0.0.1:${port}" }\n`, 'apps/web.yaml': 'image: web\nversion: "1"\nprovides: [8080/http]\n' };
  for (let i = 1; i <= n; i++) f[`nodes/n${i}.yaml`] = `address: 127.0.0.${i + 1}\n`;
  f['deployments/web-1.yaml'] = 'app: web\nnode: n1\n';
  return f;
};

describe('glow status --cluster', { timeout: 60_000 }, () => {
  test('converged: exit 0; one behind, one with errors, one silent, one down: exit 1 naming each, within the timeout', async (t) => {
    const port = await freePort();
    const dir = repoDir(files(port, 5));
    const result = loadRepository(readRepo(dir));
    assert.ok(result.ok);
    const rev = result.snapshot.revision;

    const good = repoDir(files(port, 2));
    const goodRev = (loadRepository(readRepo(good)) as { snapshot: { revision: string } }).snapshot.revision;
    await node('127.0.0.2', port, () => status('n1', goodRev));
    await node('127.0.0.3', port, () => status('n2', goodRev));
    const conv = await glow(['status', '--cluster', good]);
    t.diagnostic(conv.stdout);
    assert.equal(conv.code, 0, conv.stdout + conv.stderr);
    assert.match(conv.stdout, new RegExp(`^converged: 2 node\\(s\\) on revision ${goodRev}$`, 'm'));

    // The same two nodes, now compared with a repository of five: n1, n2 behind (another revision), n3 with
    // errors, n4 silent, n5 down.
    await node('127.0.0.4', port, () => status('n3', rev, { applyErrors: [{ code: 'GLOW_E_SYSTEMD_JOB', message: 'glow-web@1.service failed', unit: 'glow-web@1.service', at: new Date().toISOString() }] }));
    await silent('127.0.0.5', port);
    const r = await glow(['status', '--cluster', dir, '--timeout', '1s']);
    t.diagnostic(`${r.ms} ms\n${r.stdout}`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^n1: behind: applied ${goodRev}, the repository is ${rev}`, 'm'));
    assert.match(r.stdout, /^n3: 1 error\(s\) of its last reconcile \(GLOW_E_SYSTEMD_JOB\)$/m);
    assert.match(r.stdout, /^n4: unreachable: http:\/\/127\.0\.0\.5:\d+\/status: no answer within 1s$/m);
    assert.match(r.stdout, /^n5: unreachable: http:\/\/127\.0\.0\.6:\d+\/status: connect ECONNREFUSED 127\.0\.0\.6:\d+$/m);
    assert.match(r.stdout, /^not converged: n1 \(behind\), n2 \(behind\), n3 \(errors\), n4 \(unreachable\), n5 \(unreachable\)$/m);
    assert.ok(r.ms < 1000 + 2500, `all at once, each within 1 s: ${r.ms} ms`);

    const j = await glow(['status', '--cluster', dir, '--timeout', '1s', '--json']);
    assert.equal(j.code, 1);
    const view = JSON.parse(j.stdout) as ClusterView;
    assert.equal(view.converged, false);
    assert.deepEqual(view.nodes.map((n) => [n.node, n.reachable, n.current, n.error?.code ?? null]), [
      ['n1', true, false, null],
      ['n2', true, false, null],
      ['n3', true, true, null],
      ['n4', false, false, 'GLOW_E_CLUSTER_UNREACHABLE'],
      ['n5', false, false, 'GLOW_E_CLUSTER_UNREACHABLE'],
    ]);
    assert.deepEqual(view.nodes[0]!.instances, { running: 1, planned: 1 });
    assert.doesNotMatch(j.stdout, /abc123/, 'what a sink said is not in the public status');
  });

  test('a repository that does not load still names its nodes, and its errors', async () => {
    const port = await freePort();
    const dir = repoDir({ ...files(port, 1), 'apps/web.yaml': 'image: web\nimage: web\n' });
    const r = await glow(['status', '--cluster', dir, '--timeout', '300ms']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /the repository has \d+ error\(s\); no node applies this revision/);
    assert.match(r.stdout, /GLOW_E_YAML_DUPLICATE_KEY/);
    assert.match(r.stdout, /^n1: unreachable: http:\/\/127\.0\.0\.2:\d+\/status/m);
  });

  test('the metrics endpoint: GET /status and /metrics, nothing else, no other method', async () => {
    const port = await freePort();
    await node('127.0.0.1', port, () => status('n1', 'abc'));
    const get = async (path: string, method = 'GET') => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
      return { status: res.status, body: await res.text() };
    };
    const st = await get('/status');
    assert.equal(st.status, 200);
    assert.equal((JSON.parse(st.body) as AgentStatus).node, 'n1');
    assert.equal((await get('/metrics')).status, 200);
    assert.equal((await get('/plan')).status, 404);
    assert.equal((await get('/status', 'POST')).status, 405);
  });
});
