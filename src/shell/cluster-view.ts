/**
 * One view of the cluster without a central server (`glow status --cluster [DIR]`, src/cli/status.ts): the
 * repository DIR says which nodes there are (`nodes/<name>.yaml` `address`) and where they answer (the port of
 * glow.yaml `metrics.listen`); every node serves its own status, read-only, as `GET /status` on that listener
 * (src/shell/metrics-server.ts), without what could be secret (`publicStatus`). Every node is asked at once, each
 * bounded by a short timeout, and each row says whether the node is reachable, which revision it applied and whether
 * it is DIR's (as `glow check DIR` computes it), its errors, its instances running of those planned, and the
 * upstreams its proxy has ejected.
 *
 * DIR that does not load is still read for its nodes (each `nodes/*.yaml` and glow.yaml on their own), so that a
 * broken commit can be seen on every node: each keeps its last good revision and reports the errors.
 */
import { redactUrls } from '../base/redact.js';
import { request } from 'node:http';
import { realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { GlowCode } from '../base/codes.js';
import { GlowError } from '../base/errors.js';
import { loadRepository } from '../config/load.js';
import { DEFAULTS } from '../config/model.js';
import { readRepo } from '../config/source.js';
import type { RepoSource } from '../config/source.js';
import { readRevisionMeta } from '../sync/publish.js';
import type { AgentStatus, SyncStatus } from './status.js';

/** How long one node may take to answer, connection and body together. */
export const CLUSTER_TIMEOUT_MS = 2000;
/** The largest status a node may answer with. */
const MAX_STATUS_BYTES = 8 * 1024 * 1024;

/** What a node serves as `GET /status` on its metrics listener: its status, minus what a sink said (it may echo what it was sent). */
export function publicStatus(st: AgentStatus): AgentStatus {
  // And no URL's credentials in any message (a sink URL, an artifact URL, a sync source as the operator wrote it).
  const clean = <T extends { readonly message: string }>(e: T): T => ({ ...e, message: redactUrls(e.message) });
  return {
    ...st,
    configErrors: st.configErrors.map(clean),
    applyErrors: st.applyErrors.map(clean),
    sinks: (st.sinks ?? []).map((k) => ({ ...k, lastError: k.lastError ? { ...k.lastError, message: '(see glow status on the node)' } : undefined })),
  };
}

export interface ClusterNode {
  readonly name: string;
  readonly address: string;
  readonly url: string;
}

/** The repository the cluster is compared with, and the nodes it names. */
export interface ClusterRepo {
  readonly dir: string;
  /** The tree read (the link's target, resolved once). */
  readonly tree: string | undefined;
  readonly revision: string;
  /** The commit glow sync published the tree from, when it did. */
  readonly commit: string | undefined;
  /** DIR's own errors (`glow check DIR`): no node can apply this revision while there are any. */
  readonly errors: readonly { readonly code: string; readonly message: string; readonly file?: string; readonly line?: number; readonly col?: number }[];
  readonly port: number;
  readonly nodes: readonly ClusterNode[];
}

export interface NodeRow {
  readonly node: string;
  readonly address: string;
  readonly url: string;
  readonly reachable: boolean;
  /** Why it cannot be asked: GLOW_E_CLUSTER_UNREACHABLE with the reason. */
  readonly error?: { readonly code: GlowCode; readonly message: string };
  /** The revision it applied and whether it is the repository's. */
  readonly revision?: string;
  readonly current: boolean;
  readonly commit?: string;
  readonly loadedRevision?: string;
  readonly configErrors: readonly { readonly code: string; readonly message: string; readonly file?: string; readonly line?: number; readonly col?: number }[];
  readonly applyErrors: readonly { readonly code: string; readonly message: string; readonly unit?: string }[];
  readonly instances: { readonly running: number; readonly planned: number | undefined };
  readonly upstreams: { readonly total: number; readonly ejected: number };
  readonly sync?: { readonly lastResult: string; readonly revision: string | null; readonly commit: string | null; readonly lastSuccessAt: string | null; readonly lastError: { readonly code: string; readonly message: string; readonly at: string } | null } | { readonly unreadable: { readonly code: string; readonly message: string } };
  /** Why this node is not converged; empty when it is. */
  readonly problems: readonly string[];
}

export interface ClusterView {
  readonly repository: ClusterRepo;
  readonly nodes: readonly NodeRow[];
  /** Every node reachable, on the repository's revision, without errors. */
  readonly converged: boolean;
  readonly checkedAt: string;
}

const urlHost = (address: string): string => (address.includes(':') && !address.startsWith('[') ? `[${address}]` : address);

function portOf(listen: string): number {
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : Number(DEFAULTS.metricsListen.split(':')[1]);
}

/** Each `nodes/*.yaml` and glow.yaml on their own, for a repository that does not load as a whole. */
function lenientNodes(source: RepoSource): { nodes: { name: string; address: string }[]; listen: string } {
  const text = (path: string) => {
    const e = source.entries.find((x) => x.path === path);
    return e?.bytes ? Buffer.from(e.bytes).toString('utf8') : undefined;
  };
  const doc = (path: string): Record<string, unknown> | undefined => {
    const t = text(path);
    if (t === undefined) return undefined;
    try {
      const v = parseYaml(t, { maxAliasCount: 10 }) as unknown;
      return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const nodes: { name: string; address: string }[] = [];
  for (const e of source.entries) {
    const m = /^nodes\/([^/]+)\.ya?ml$/.exec(e.path);
    if (!m) continue;
    const address = doc(e.path)?.address;
    if (typeof address === 'string' && address) nodes.push({ name: m[1]!, address });
  }
  const metrics = (doc('glow.yaml') ?? doc('glow.yml'))?.metrics;
  const listen = metrics && typeof metrics === 'object' && typeof (metrics as { listen?: unknown }).listen === 'string' ? (metrics as { listen: string }).listen : DEFAULTS.metricsListen;
  return { nodes: nodes.sort((a, b) => (a.name < b.name ? -1 : 1)), listen };
}

/** Reads DIR (a link resolved once, as glowd does) for its revision, its errors and its nodes. */
export function readClusterRepo(dir: string): ClusterRepo {
  let tree: string | undefined;
  try {
    tree = realpathSync(dir);
  } catch {
    tree = undefined;
  }
  const source: RepoSource = tree === undefined ? { root: dir, exists: false, entries: [] } : { ...readRepo(tree), root: dir };
  const result = loadRepository(source);
  const commit = tree === undefined ? undefined : readRevisionMeta(tree)?.id;
  let nodes: { name: string; address: string }[];
  let listen: string;
  if (result.ok) {
    nodes = [...result.snapshot.nodes.values()].map((n) => ({ name: n.name, address: n.address })).sort((a, b) => (a.name < b.name ? -1 : 1));
    listen = result.snapshot.settings.metricsListen;
  } else {
    ({ nodes, listen } = lenientNodes(source));
  }
  const port = portOf(listen);
  return {
    dir,
    tree,
    revision: result.ok ? result.snapshot.revision : result.revision,
    commit,
    errors: result.ok ? [] : result.errors.map((e) => ({ code: e.code, message: e.message, file: e.file, line: e.line, col: e.col })),
    port,
    nodes: nodes.map((n) => ({ ...n, url: `http://${urlHost(n.address)}:${port}/status` })),
  };
}

/** GET a node's status, bounded by `timeoutMs` in all (connecting, waiting, reading). */
export function fetchStatus(url: string, timeoutMs = CLUSTER_TIMEOUT_MS): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const fail = (why: string, cause?: unknown) => reject(new GlowError('GLOW_E_CLUSTER_UNREACHABLE', `${url}: ${why}`, cause ? { cause } : undefined));
    let settled = false;
    const req = request(url, { method: 'GET', headers: { accept: 'application/json' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_STATUS_BYTES) req.destroy(new Error(`the answer is larger than ${MAX_STATUS_BYTES} bytes`));
        else chunks.push(d);
      });
      res.on('error', (e) => done(() => fail(e.message, e)));
      res.on('end', () =>
        done(() => {
          if (res.statusCode !== 200) return fail(`answered ${res.statusCode} (a glowd without GET /status, or not glowd)`);
          try {
            const st = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AgentStatus;
            if (!st || typeof st !== 'object' || typeof st.node !== 'string') return fail('answered JSON that is not a node status');
            resolve(st);
          } catch (e) {
            fail(`answered something that is not JSON (${(e as Error).message})`);
          }
        }),
      );
    });
    const done = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      done(() => fail(`no answer within ${timeoutMs / 1000}s`));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => done(() => fail(e.code && !e.message.includes(e.code) ? `${e.code} ${e.message}` : e.message, e)));
    req.end();
  });
}

function upstreamsOf(st: AgentStatus): { total: number; ejected: number } {
  let total = 0;
  let ejected = 0;
  for (const f of st.proxy?.frontends ?? []) {
    for (const r of f.routes ?? []) {
      for (const g of r.groups ?? []) {
        for (const u of g.upstreams ?? []) {
          total++;
          if (u.ejected) ejected++;
        }
      }
    }
  }
  return { total, ejected };
}

function syncOf(s: SyncStatus | undefined): NodeRow['sync'] {
  if (!s) return undefined;
  if ('unreadable' in s) return { unreadable: s.unreadable };
  return { lastResult: s.lastResult, revision: s.revision, commit: s.commit, lastSuccessAt: s.lastSuccessAt, lastError: s.lastError };
}

/** A node's row from its status (or from why it could not be asked). */
export function rowOf(repo: ClusterRepo, n: ClusterNode, got: { status: AgentStatus } | { error: GlowError }): NodeRow {
  const base = { node: n.name, address: n.address, url: n.url };
  if ('error' in got) {
    return { ...base, reachable: false, error: { code: got.error.code, message: got.error.message }, current: false, configErrors: [], applyErrors: [], instances: { running: 0, planned: undefined }, upstreams: { total: 0, ejected: 0 }, problems: [`unreachable: ${got.error.message}`] };
  }
  const st = got.status;
  const problems: string[] = [];
  if (st.node !== n.name) problems.push(`answers as node ${st.node}`);
  const current = st.revision !== undefined && st.revision === repo.revision;
  if (!current) {
    const read = st.loadedRevision === repo.revision ? ' (it read the repository\'s revision and refused it)' : st.loadedRevision && st.loadedRevision !== st.revision ? ` (last read ${st.loadedRevision})` : '';
    problems.push(`behind: applied ${st.revision ?? '(none)'}, the repository is ${repo.revision}${read}`);
  }
  if (st.configErrors.length) problems.push(`${st.configErrors.length} error(s) in the revision it read (${[...new Set(st.configErrors.map((e) => e.code))].join(', ')})`);
  if (st.applyErrors.length) problems.push(`${st.applyErrors.length} error(s) of its last reconcile (${[...new Set(st.applyErrors.map((e) => e.code))].join(', ')})`);
  const desired = st.instances.filter((i) => i.desired);
  const sync = syncOf(st.sync);
  return {
    ...base,
    reachable: true,
    ...(st.revision ? { revision: st.revision } : {}),
    current,
    ...(st.appliedFrom?.commit ? { commit: st.appliedFrom.commit } : {}),
    ...(st.loadedRevision ? { loadedRevision: st.loadedRevision } : {}),
    configErrors: st.configErrors.map((e) => ({ code: e.code, message: e.message, ...(e.file ? { file: e.file, line: e.line, col: e.col } : {}) })),
    applyErrors: st.applyErrors.map((e) => ({ code: e.code, message: e.message, ...(e.unit ? { unit: e.unit } : {}) })),
    instances: { running: desired.filter((i) => i.activeState === 'active').length, planned: st.instancesPlanned ?? desired.length },
    upstreams: upstreamsOf(st),
    ...(sync ? { sync } : {}),
    problems,
  };
}

/** Asks every node of the repository at once, each within `timeoutMs`. */
export async function clusterView(repo: ClusterRepo, timeoutMs = CLUSTER_TIMEOUT_MS, fetch = fetchStatus): Promise<ClusterView> {
  const nodes = await Promise.all(
    repo.nodes.map(async (n) => {
      try {
        return rowOf(repo, n, { status: await fetch(n.url, timeoutMs) });
      } catch (e) {
        const err = e instanceof GlowError ? e : new GlowError('GLOW_E_CLUSTER_UNREACHABLE', `${n.url}: ${(e as Error).message}`);
        return rowOf(repo, n, { error: err });
      }
    }),
  );
  return { repository: repo, nodes, converged: repo.nodes.length > 0 && nodes.every((r) => r.problems.length === 0), checkedAt: new Date().toISOString() };
}

const short = (s: string | undefined | null, n = 12) => (s ? (s.startsWith('sha256:') ? `sha256:${s.slice(7, 7 + n)}` : s.slice(0, n)) : '-');

/** The view as text: a header, one row per node, the problems of each node, and a last line that says it all. */
export function formatCluster(v: ClusterView, style: { bold(s: string): string; red(s: string): string; green(s: string): string }): string {
  const r = v.repository;
  const out: string[] = [];
  out.push(`${style.bold('repository')} ${r.dir}${r.tree && basename(r.tree) !== basename(r.dir) ? ` (${basename(r.tree)})` : ''}  revision ${r.revision}${r.commit ? `  commit ${short(r.commit)}` : ''}  ${r.nodes.length} node(s), port ${r.port}`);
  if (r.errors.length) {
    out.push(style.red(`the repository has ${r.errors.length} error(s); no node applies this revision:`));
    for (const e of r.errors.slice(0, 10)) out.push(`  ${e.file ? `${e.file}:${e.line}:${e.col} ` : ''}${e.code} ${e.message}`);
    if (r.errors.length > 10) out.push(`  … and ${r.errors.length - 10} more (glow check ${r.dir})`);
  }
  out.push('');
  const head = ['NODE', 'ADDRESS', 'REACHABLE', 'REVISION', 'COMMIT', 'ERRORS', 'INSTANCES', 'EJECTED', 'SYNC'];
  const rows = v.nodes.map((n) => [
    n.node,
    n.address,
    n.reachable ? 'yes' : 'no',
    n.reachable ? `${n.revision ?? '(none)'} ${n.current ? '=' : '≠'}` : '-',
    n.reachable ? short(n.commit) : '-',
    n.reachable ? String(n.configErrors.length + n.applyErrors.length) : '-',
    n.reachable ? `${n.instances.running}/${n.instances.planned ?? '?'}` : '-',
    n.reachable ? `${n.upstreams.ejected}/${n.upstreams.total}` : '-',
    !n.sync ? '-' : 'unreadable' in n.sync ? `unreadable ${n.sync.unreadable.code}` : n.sync.lastResult === 'failed' ? `failed ${n.sync.lastError?.code ?? ''}` : `ok ${short(n.sync.commit)}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => [...row[i]!].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length))).join('  ');
  out.push(style.bold(line(head)));
  v.nodes.forEach((n, i) => out.push(n.problems.length ? style.red(line(rows[i]!)) : line(rows[i]!)));
  const bad = v.nodes.filter((n) => n.problems.length);
  if (bad.length) out.push('');
  for (const n of bad) {
    out.push(`${n.node}: ${n.problems.join('; ')}`);
    for (const e of n.configErrors.slice(0, 5)) out.push(`  ${e.file ? `${e.file}:${e.line}:${e.col} ` : ''}${e.code} ${e.message}`);
    for (const e of n.applyErrors.slice(0, 5)) out.push(`  ${e.code}${e.unit ? ` ${e.unit}` : ''} ${e.message}`);
  }
  for (const n of v.nodes) {
    if (n.sync && !('unreadable' in n.sync) && n.sync.lastResult === 'failed' && n.sync.lastError) out.push(`${n.node}: glow sync failed: ${n.sync.lastError.code} ${n.sync.lastError.message}`);
  }
  out.push('');
  if (v.nodes.length === 0) out.push(style.red(`not converged: the repository names no node`));
  else if (v.converged) out.push(style.green(`converged: ${v.nodes.length} node(s) on revision ${r.revision}`));
  else out.push(style.red(`not converged: ${bad.map((n) => `${n.node} (${n.reachable ? (n.current ? 'errors' : 'behind') : 'unreachable'})`).join(', ')}`));
  return out.join('\n');
}
