/**
 * The cluster as users run it: three real systemd nodes (test/harness) on one bridge, each with its own glowd
 * (default repository /var/lib/glow/repo, its 30 s tick) and its own `glow sync` from a git repository that a
 * `git daemon` inside node1 serves on the nodes' private network (git://10.77.0.11/…, never a file path). The
 * test commits on the host and runs `glow sync` in every node, as the timer would.
 *
 * The service `web` runs on node2 and node3 (an exec artifact: test/systemd/fixture.ts); `client` on node1 requires
 * it on 127.0.0.1:18080, so node1's proxy balances a bounded load (test/cluster/scripts.ts LOAD) over node2 and
 * node3. Under that load, every failed request is counted, fault by fault:
 *
 *   switches          commits that change something else, synced everywhere: 0 failed; every node applies the
 *                     commit within 2 s of its sync (the switch is followed, not the tick); measured
 *   kill -9           web's instance on node2: 0 failed
 *   delete, re-add    web's deployment on node2, and back: 0 failed; traffic leaves node2 and comes back
 *   partition         node2's link down at the bridge, then up: a handful at most during it (counted), 0 after
 *                     healing; `glow status --cluster` says node2 is unreachable, then behind (its sync failed)
 *   invalid commit    pushed and synced: every node keeps its last good revision, 0 failed, and
 *                     `glow status --cluster` names the errors; a fixed commit converges again
 *
 * `glow status --cluster` is 0 when converged and 1, naming the node, otherwise, within its 2 s per node. The
 * figures are reported with t.diagnostic (`node --test` prints them).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ClusterView } from '../../src/shell/cluster-view.js';
import type { AgentStatus } from '../../src/shell/status.js';
import { bootNode, createHub, stopAll } from '../harness/systemd-node.js';
import type { Hub, SystemdNode } from '../harness/systemd-node.js';
import { commit, git, gitEnv } from '../sync/helpers.js';
import { GLOW, NODE, Repo, ROOT } from '../systemd/fixture.js';
import { GET, LOAD, WAIT_APPLIED } from './scripts.js';

after(stopAll);

const NAMES = ['node1', 'node2', 'node3'] as const;
const PORT = 18080;
const GIT_PORT = 9418;

const WEB = `image: web
version: "1.0"
runtime: exec
command: [bin/server, "8080"]
provides: [8080/http]
health: { http: /, interval: 500ms, timeout: 400ms, rise: 1, fall: 2 }
`;
// A switch changes the client's env: a rolling restart, which waits for the client's health as the proxy judges it
// (rise checks, interval apart); the client checks itself every 250ms, so a switch is applied well within 2 s.
const CLIENT = (extra: string) => `image: web
version: "1.0"
runtime: exec
command: [bin/server]
requires: ["web:8080 -> ${PORT}"]
env: { EXTRA: "${extra}" }
health: { interval: 250ms }
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function output(p: ChildProcess): { text: () => string } {
  let out = '';
  p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { text: () => out };
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000, every = 200): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`gave up waiting (${ms} ms): ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(every);
  }
}

/** The load's lines, parsed as they come: failures with their times, answers by node per tick. */
class Load {
  readonly proc: ChildProcess;
  #buf = '';
  readonly fails: { start: number; end: number; why: string }[] = [];
  readonly ticks: { at: number; ok: number; failed: number; by: Record<string, number> }[] = [];
  summary: { ok: number; failed: number; byNode: Record<string, number> } | undefined;

  constructor(proc: ChildProcess) {
    this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        const [kind, a, b, ...rest] = line.split(' ');
        if (kind === 'fail') this.fails.push({ start: Number(a), end: Number(b), why: rest.join(' ') });
        else if (kind === 'tick') this.ticks.push({ at: Number(a), ok: Number(b), failed: Number(rest[0]), by: JSON.parse(rest.slice(1).join(' ')) as Record<string, number> });
        else if (kind === 'summary') this.summary = JSON.parse([a, b, ...rest].join(' ')) as Load['summary'];
      }
    });
  }

  get ok(): number {
    return this.ticks.at(-1)?.ok ?? 0;
  }

  /** Requests that started in [from, to) and failed. */
  failedIn(from: number, to = Infinity): { start: number; end: number; why: string }[] {
    return this.fails.filter((f) => f.start >= from && f.start < to);
  }

  /** Answers by node in the ticks of [from, to). */
  byNodeIn(from: number, to = Infinity): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.ticks) if (t.at >= from && t.at < to) for (const [n, c] of Object.entries(t.by)) out[n] = (out[n] ?? 0) + c;
    return out;
  }
}

describe('a cluster of three nodes under load', { timeout: 420_000 }, () => {
  let hub: Hub;
  const nodes: Record<string, SystemdNode> = {};
  let n1: SystemdNode;
  let repo: Repo;
  let env: NodeJS.ProcessEnv;
  let bare: string;
  let load: Load;
  const glowdLogs: Record<string, { text: () => string }> = {};
  const figures: Record<string, unknown> = {};
  const source = () => `git://${n1.address}:${GIT_PORT}/config.git`;
  const statusUrl = (n: SystemdNode) => `http://${n.address}:9464/status`;

  /** Commits `files` on the host and pushes them to the repository git daemon serves. */
  const push = (files: Record<string, string | null>, message: string): string => {
    const id = commit(env, repo.dir, files, message);
    git(env, repo.dir, 'push', '--quiet', bare, 'main');
    return id;
  };

  const sync = async (n: SystemdNode, timeout = '20s') => {
    const t0 = Date.now();
    const r = await n.exec([NODE, GLOW, 'sync', '--source', source(), '--ref', 'main', '--timeout', timeout], { timeoutMs: 60_000 });
    return { ...r, node: n.name, start: t0, end: Date.now() };
  };

  /** `glow sync` in the given nodes at once; waits (a watcher in node1) until each shows the commit applied. */
  const syncAll = async (id: string, which: SystemdNode[] = NAMES.map((n) => nodes[n]!)) => {
    const waiter = n1.spawn([NODE, '-e', WAIT_APPLIED, id, '20000', ...which.map(statusUrl)]);
    const out = output(waiter);
    await until('the watcher started', async () => out.text().includes('ready'), 10_000, 20);
    const runs = await Promise.all(which.map((n) => sync(n)));
    for (const r of runs) assert.equal(r.code, 0, `glow sync on ${r.node}: ${r.stdout}${r.stderr}`);
    await until('the watcher ended', async () => waiter.exitCode !== null, 30_000, 50);
    const seen = JSON.parse(out.text().split('\n').find((l) => l.startsWith('{'))!) as Record<string, { node: string; seenAt: number; startedAt: number; endedAt: number; publishedAt: number | null }>;
    return which.map((n) => {
      const s = seen[statusUrl(n)];
      const run = runs.find((r) => r.node === n.name)!;
      assert.ok(s, `${n.name} did not show commit ${id} applied within 20 s of its sync; glowd:\n${glowdLogs[n.name]!.text().slice(-3000)}`);
      // By the node's own clock, from the switch of the link (glow sync's publishedAt, just before it renames the
      // link): `read` to the start of the pass that read the new tree, `applied` to the end of that pass. `seen`:
      // from the end of the `glow sync` command to the poll (every 50 ms) that saw the pass done.
      const pub = s.publishedAt ?? NaN;
      return { node: n.name, sync: run.end - run.start, read: s.startedAt - pub, applied: s.endedAt - pub, seen: s.seenAt - run.end };
    });
  };

  const clusterStatus = async (json = false) => {
    const t0 = Date.now();
    const r = await n1.exec([NODE, GLOW, 'status', '--cluster', ...(json ? ['--json'] : [])], { timeoutMs: 20_000 });
    return { ...r, ms: Date.now() - t0 };
  };

  const nodeStatus = async (n: SystemdNode): Promise<AgentStatus> => JSON.parse((await n1.execOk([NODE, '-e', GET, statusUrl(n)], { timeoutMs: 10_000 })).stdout) as AgentStatus;

  /** node1's proxy: the upstreams of web:8080 on its listener, by node. */
  const upstreams = async () => {
    const st = await nodeStatus(n1);
    const out: Record<string, { healthy: boolean; ejected: boolean }> = {};
    for (const f of st.proxy?.frontends ?? []) for (const r of f.routes) for (const g of r.groups) for (const u of g.upstreams) if (g.service === 'web:8080') out[u.node ?? u.address] = { healthy: u.healthy, ejected: u.ejected };
    return out;
  };
  const bothHealthy = async () => {
    const u = await upstreams();
    return u.node2?.healthy && !u.node2.ejected && u.node3?.healthy && !u.node3.ejected;
  };

  before(async () => {
    repo = new Repo('glow-cluster-');
    repo.artifact('web', '1.0');
    env = gitEnv(repo.root);
    bare = join(repo.root, 'git', 'config.git');
    mkdirSync(bare, { recursive: true });
    git(env, bare, 'init', '--quiet', '--bare', '--initial-branch=main');
    git(env, repo.root, 'init', '--quiet', '--initial-branch=main', repo.dir);

    hub = await createHub('cluster');
    const booted = await Promise.all(NAMES.map((name) => bootNode({ name, hub, binds: [repo.root] })));
    booted.forEach((n) => (nodes[n.name] = n));
    n1 = nodes.node1!;
    const files: Record<string, string> = {
      'glow.yaml': `artifacts: ${repo.artifacts}\nstop_grace: 2s\nmetrics: { listen: "0.0.0.0:9464" }\n`,
      'apps/web.yaml': WEB,
      'apps/client.yaml': CLIENT('0'),
      'deployments/client-1.yaml': 'app: client\nnode: node1\ninstance: 1\n',
      'deployments/web-1.yaml': 'app: web\nnode: node2\ninstance: 1\n',
      'deployments/web-2.yaml': 'app: web\nnode: node3\ninstance: 2\n',
    };
    for (const n of booted) files[`nodes/${n.name}.yaml`] = `address: ${n.address}\n`;
    const first = push(files, 'the cluster');

    // git daemon inside node1, on the private network only.
    const daemon = n1.spawn(['git', 'daemon', '--reuseaddr', '--export-all', `--base-path=${join(repo.root, 'git')}`, `--listen=${n1.address}`, `--port=${GIT_PORT}`, join(repo.root, 'git')]);
    const daemonOut = output(daemon);
    await until(`git daemon answers on ${source()}`, async () => (await nodes.node3!.exec(['git', 'ls-remote', source()], { timeoutMs: 5000 })).code === 0, 15_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${daemonOut.text()}`);
    });

    // Each node: its first sync, then glowd on the default repository with the default 30 s tick.
    for (const r of await Promise.all(booted.map((n) => sync(n)))) assert.equal(r.code, 0, `first glow sync on ${r.node}: ${r.stderr}`);
    for (const n of booted) {
      const p = n.spawn([NODE, join(ROOT, 'dist/src/cli/glowd.js'), '--node', n.name, '--tick', '30s', '--health-timeout', '20s']);
      glowdLogs[n.name] = output(p);
    }
    await until('every node applied the first commit with its instances active', async () => {
      const sts = await Promise.all(booted.map(nodeStatus));
      return sts.every((s) => s.appliedFrom?.commit === first && s.instances.filter((i) => i.desired && i.activeState === 'active').length === s.instancesPlanned) && (await bothHealthy());
    }, 90_000, 500).catch((e: Error) => {
      throw new Error(`${e.message}\n${booted.map((n) => `--- ${n.name}\n${glowdLogs[n.name]!.text().slice(-2500)}`).join('\n')}`);
    });
    load = new Load(n1.spawn([NODE, '-e', LOAD, String(PORT), '300000']));
    await until('the load is answered', async () => load.ok > 50, 20_000);
  });

  after(async () => {
    if (n1 && load && load.summary === undefined) {
      await n1.writeFile('/tmp/stop-load', 'stop').catch(() => undefined);
      await until('the load ended', async () => load.summary !== undefined, 5000, 100).catch(() => undefined);
    }
    // Figures on stderr too, whatever passed.
    process.stderr.write(`cluster figures: ${JSON.stringify({ ...figures, load: load?.summary })}\n`);
    repo?.cleanup();
  });

  test('converged: glow status --cluster exits 0 and shows every node on the repository revision', async (t) => {
    const r = await clusterStatus();
    t.diagnostic(`glow status --cluster (${r.ms} ms):\n${r.stdout}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /converged: 3 node\(s\) on revision \w+/);
    const j = JSON.parse((await clusterStatus(true)).stdout) as ClusterView;
    assert.deepEqual(j.nodes.map((n) => [n.node, n.reachable, n.current, n.instances.running, n.instances.planned]), [
      ['node1', true, true, 1, 1],
      ['node2', true, true, 1, 1],
      ['node3', true, true, 1, 1],
    ]);
    assert.ok(j.nodes.every((n) => n.sync && 'lastResult' in n.sync && n.sync.lastResult !== 'failed'));
    // The metrics of node2: the commit applied and the sync state.
    const metrics = (await n1.execOk([NODE, '-e', GET, `http://${nodes.node2!.address}:9464/metrics`])).stdout;
    const st = await nodeStatus(nodes.node2!);
    assert.match(metrics, new RegExp(`^glow_config_revision_info\\{revision="${st.revision}",commit="${st.appliedFrom!.commit}",node="node2"\\} 1$`, 'm'));
    assert.match(metrics, /^glow_sync_errors\{node="node2"\} 0$/m);
    assert.match(metrics, /^glow_sync_last_success_timestamp_seconds\{node="node2"\} \d/m);
    assert.match(metrics, new RegExp(`^glow_sync_revision_info\\{revision="r-[^"]+",commit="${st.appliedFrom!.commit}",source="git://`, 'm'));
  });

  test('switches: every node applies a commit within 2 s of its sync, 0 failed requests', async (t) => {
    const rounds: { node: string; sync: number; read: number; applied: number; seen: number }[][] = [];
    const t0 = Date.now();
    for (let i = 1; i <= 4; i++) {
      const id = push({ 'apps/client.yaml': CLIENT(String(i)) }, `switch ${i}`);
      rounds.push(await syncAll(id));
    }
    await sleep(1000);
    const failed = load.failedIn(t0);
    const all = rounds.flat();
    const stat = (k: 'sync' | 'read' | 'applied' | 'seen') => ({ min: Math.min(...all.map((x) => x[k])), median: median(all.map((x) => x[k])), max: Math.max(...all.map((x) => x[k])) });
    figures.switch = { failed: failed.length, rounds: rounds.length, syncMs: stat('sync'), readMs: stat('read'), appliedMs: stat('applied'), seenAfterSyncMs: stat('seen') };
    t.diagnostic(`switches: ${JSON.stringify(rounds)}`);
    t.diagnostic(`switch figures: ${JSON.stringify(figures.switch)}`);
    assert.deepEqual(failed, []);
    for (const x of all) {
      // 2 s: the switch is followed (a 50 ms debounce), not the 30 s tick; generous for a loaded machine.
      assert.ok(x.applied < 2000, `${x.node}: the pass that applied the switched revision ended ${x.applied} ms after it was published`);
      assert.ok(x.seen < 2000, `${x.node}: its status showed the commit applied ${x.seen} ms after its glow sync ended`);
    }
  });

  test('kill -9 of web on node2: 0 failed requests', async (t) => {
    const node2 = nodes.node2!;
    const pid = Number((await node2.execOk(['systemctl', 'show', '-P', 'MainPID', 'glow-web@1.service'])).stdout.trim());
    assert.ok(pid > 0);
    const t0 = Date.now();
    await node2.execOk(['kill', '-KILL', String(pid)]);
    await until('web #1 runs again', async () => {
      const p = Number((await node2.execOk(['systemctl', 'show', '-P', 'MainPID', 'glow-web@1.service'])).stdout.trim());
      return p > 0 && p !== pid;
    }, 20_000);
    await until('both upstreams healthy again', bothHealthy, 20_000);
    await sleep(1000);
    const failed = load.failedIn(t0);
    figures.kill = { failed: failed.length, byNode: load.byNodeIn(t0) };
    t.diagnostic(`kill: ${JSON.stringify(figures.kill)}`);
    assert.deepEqual(failed, []);
  });

  test('web deleted on node2, then re-added: 0 failed requests, traffic leaves node2 and comes back', async (t) => {
    const t0 = Date.now();
    const del = push({ 'deployments/web-1.yaml': null }, 'web #1 goes');
    const r1 = await syncAll(del);
    await until('web #1 stopped on node2', async () => {
      const st = await nodeStatus(nodes.node2!);
      return !st.instances.some((i) => i.unit === 'glow-web@1.service' && i.activeState === 'active');
    }, 20_000);
    await sleep(1500);
    const t1 = Date.now();
    await sleep(1500);
    const onlyNode3 = load.byNodeIn(t1, Date.now());
    const add = push({ 'deployments/web-1.yaml': 'app: web\nnode: node2\ninstance: 1\n' }, 'web #1 is back');
    const t2 = Date.now();
    const r2 = await syncAll(add);
    await until('both upstreams healthy again', bothHealthy, 20_000);
    await until('node2 answers again', async () => (load.byNodeIn(Date.now() - 1000).node2 ?? 0) > 0, 10_000);
    await sleep(1000);
    figures.delete = { failed: load.failedIn(t0, t2).length, afterDelete: onlyNode3, sync: r1 };
    figures.readd = { failed: load.failedIn(t2).length, sync: r2 };
    t.diagnostic(`delete: ${JSON.stringify(figures.delete)}`);
    t.diagnostic(`re-add: ${JSON.stringify(figures.readd)}`);
    assert.deepEqual(load.failedIn(t0), []);
    assert.deepEqual(Object.keys(onlyNode3), ['node3'], 'after the deletion only node3 answers');
  });

  test('node2 partitioned, then healed: a handful at most during it, 0 after; glow status --cluster names it', async (t) => {
    const node2 = nodes.node2!;
    const t0 = Date.now();
    await hub.setLinkUp(node2.hubPort!, false);
    // A commit while node2 is away: node1 and node3 apply it, node2's sync cannot fetch.
    const id = push({ 'apps/client.yaml': CLIENT('partition') }, 'while node2 is away');
    const during = await syncAll(id, [n1, nodes.node3!]);
    const away = await sync(node2, '3s');
    assert.equal(away.code, 1, `glow sync on a partitioned node fails: ${away.stdout}${away.stderr}`);
    assert.match(away.stderr, /GLOW_E_SYNC_FETCH/);
    const cut = await clusterStatus();
    t.diagnostic(`glow status --cluster during the partition (${cut.ms} ms):\n${cut.stdout}`);
    assert.equal(cut.code, 1);
    assert.match(cut.stdout, /^node2: unreachable: http:\/\/10\.77\.0\.\d+:9464\/status: no answer within 2s/m);
    assert.match(cut.stdout, /not converged: node2 \(unreachable\)$/m);
    assert.ok(cut.ms < 6000, `glow status --cluster took ${cut.ms} ms with a node away (2 s per node, all at once)`);
    await until('node2 ejected or unhealthy on node1', async () => {
      const u = await upstreams();
      return u.node2 && (u.node2.ejected || !u.node2.healthy);
    }, 20_000);
    await sleep(3000);

    const tHeal = Date.now();
    await hub.setLinkUp(node2.hubPort!, true);
    await until('node2 healthy again on node1', bothHealthy, 30_000);
    const tHealthy = Date.now();
    const behind = await clusterStatus();
    t.diagnostic(`glow status --cluster after healing, before node2 synced (${behind.ms} ms):\n${behind.stdout}`);
    assert.equal(behind.code, 1);
    assert.match(behind.stdout, /^node2: behind: applied \w+, the repository is \w+/m);
    assert.match(behind.stdout, /^node2: glow sync failed: GLOW_E_SYNC_FETCH/m);
    assert.match(behind.stdout, /not converged: node2 \(behind\)$/m);
    const caught = await syncAll(id, [node2]);
    const ok = await clusterStatus();
    assert.equal(ok.code, 0, ok.stdout);
    await until('node2 answers again', async () => (load.byNodeIn(Date.now() - 1000).node2 ?? 0) > 0, 10_000);
    await sleep(4000);
    const duringFails = load.failedIn(t0, tHealthy);
    const afterFails = load.failedIn(tHealthy);
    figures.partition = {
      failedDuring: duringFails.length,
      failedAfter: afterFails.length,
      partitionedMs: tHeal - t0,
      healToHealthyMs: tHealthy - tHeal,
      why: [...new Set(duringFails.map((f) => f.why))],
      slowest: Math.max(0, ...duringFails.map((f) => f.end - f.start)),
      syncWhileAway: during,
      catchUp: caught,
    };
    t.diagnostic(`partition: ${JSON.stringify(figures.partition)}`);
    assert.ok(duringFails.length <= 10, `at most a handful failed during the partition: ${duringFails.length} (${JSON.stringify(duringFails.slice(0, 5))})`);
    assert.deepEqual(afterFails, [], 'none after healing');
  });

  test('an invalid commit: every node keeps its last good revision, 0 failed, glow status --cluster names the errors', async (t) => {
    const before = await nodeStatus(nodes.node2!);
    const t0 = Date.now();
    const bad = push({ 'apps/web.yaml': `${WEB}provides: [8080/http]\n` }, 'a duplicate key');
    const runs = await Promise.all(NAMES.map((n) => sync(nodes[n]!)));
    for (const r of runs) assert.equal(r.code, 0, `glow sync publishes what git has: ${r.stderr}`);
    await until('every node read the bad commit and refused it', async () => {
      const sts = await Promise.all(NAMES.map((n) => nodeStatus(nodes[n]!)));
      return sts.every((s) => s.loadedFrom?.commit === bad && s.configErrors.some((e) => e.code === 'GLOW_E_YAML_DUPLICATE_KEY') && s.revision === before.revision);
    }, 20_000);
    const view = await clusterStatus();
    t.diagnostic(`glow status --cluster with an invalid commit (${view.ms} ms):\n${view.stdout}`);
    assert.equal(view.code, 1);
    assert.match(view.stdout, /the repository has 1 error\(s\); no node applies this revision/);
    for (const n of NAMES) {
      assert.match(view.stdout, new RegExp(`^${n}: behind: applied \\w+, the repository is \\w+ \\(it read the repository's revision and refused it\\); 1 error\\(s\\) in the revision it read \\(GLOW_E_YAML_DUPLICATE_KEY\\)$`, 'm'));
    }
    assert.match(view.stdout, /^ {2}apps\/web\.yaml:\d+:\d+ GLOW_E_YAML_DUPLICATE_KEY /m);
    assert.match(view.stdout, /not converged: node1 \(behind\), node2 \(behind\), node3 \(behind\)$/m);
    await sleep(2000);
    const fixed = push({ 'apps/web.yaml': WEB }, 'the duplicate key removed');
    const r = await syncAll(fixed);
    const ok = await clusterStatus();
    assert.equal(ok.code, 0, ok.stdout);
    await sleep(1000);
    figures.invalid = { failed: load.failedIn(t0).length, fixSync: r };
    t.diagnostic(`invalid commit: ${JSON.stringify(figures.invalid)}`);
    assert.deepEqual(load.failedIn(t0), []);
  });

  test('the load, in all', async (t) => {
    await n1.writeFile('/tmp/stop-load', 'stop');
    await until('the load ended', async () => load.summary !== undefined, 10_000, 100);
    t.diagnostic(`load: ${JSON.stringify(load.summary)}; figures: ${JSON.stringify(figures)}`);
    assert.ok(load.summary!.ok > 1000, `${load.summary!.ok} answered`);
    assert.ok((load.summary!.byNode.node2 ?? 0) > 0 && (load.summary!.byNode.node3 ?? 0) > 0);
  });
});
