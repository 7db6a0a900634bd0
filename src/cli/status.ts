/**
 * `glow status [--json]`: what glowd on this node applied and runs — revision, when, the commit it came from, last
 * errors, glow sync's last run, every instance with its systemd state and since when — read from the control socket
 * (root only).
 *
 * `glow status --cluster [DIR]`: every node of the repository DIR, asked at once over its metrics listener
 * (src/shell/cluster-view.ts); exit status 0 only when every node is reachable and runs DIR's revision without errors.
 */
import { AGENT_DEFAULTS } from '../base/paths.js';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import type { AgentStatus } from '../shell/status.js';
import { getUnix } from '../shell/control.js';
import type { DevBoxStatus } from '../box/devbox.js';
import { devboxPaths } from '../box/paths.js';
import { parseDuration } from '../config/notation.js';
import { clusterView, CLUSTER_TIMEOUT_MS, formatCluster, readClusterRepo } from '../shell/cluster-view.js';
import type { SyncStatus } from '../shell/status.js';
import { parseArgs, usageError } from './args.js';
import { formatExposures } from './format-exposures.js';
import { styleFor } from '../shell/style.js';
import type { Style } from '../shell/style.js';

const HELP = `Usage
  glow status [--json] [--socket PATH] [--cluster] [DIR]

Shows this node as glowd sees it: the revision applied and when (with the commit glow sync published it from), the
errors of the repository (a revision with errors is not applied) and of the last reconcile, glow sync's last run,
the proxy, every instance with its state and since when, and every log sink with its state, lag and last error.
Run as root (or as the user of \`glow up\`).

Exit status: 0 when all is well; 1 on an error of the repository or of the last reconcile, a proxy listener that
is not bound (GLOW_E_PROXY_BIND), a sink that cannot start, a failed last run of glow sync, or when nothing
answers on the socket; 2 on a wrong command line. With --json: 0 whenever the socket answered (the errors are in
the JSON).

With --cluster, shows every node of the repository DIR (default ${AGENT_DEFAULTS.repo}) instead: each is asked
for its status on its metrics listener (its address in nodes/, the port of glow.yaml metrics.listen), all at once,
each for at most --timeout; one row per node: reachable, the revision applied and whether it is DIR's (= or ≠, as
\`glow check DIR\` computes it), errors, instances running/planned, upstreams ejected/total, glow sync's last run.
Exit status 0 only when every node is reachable and has applied DIR's revision without errors; else 1, and the
last line names the nodes.

Options
  --json          print the status (or the cluster's view) as JSON
  --socket PATH   glowd's control socket (default ${AGENT_DEFAULTS.socket}; where there is none, that of the
                  developer box of \`glow up\`: $XDG_RUNTIME_DIR/glow/up.sock)
  --cluster       every node of the repository DIR, over the network
  --timeout D     with --cluster: how long each node may take (default ${CLUSTER_TIMEOUT_MS / 1000}s)`;

const GLOWD_SOCKET = AGENT_DEFAULTS.socket;

export async function runStatus(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    json: { type: 'boolean', default: false },
    socket: { type: 'string' },
    cluster: { type: 'boolean', default: false },
    timeout: { type: 'string' },
  });
  if (cli.flags.cluster) return runCluster(cli.input[0] ?? AGENT_DEFAULTS.repo, cli.flags.timeout, cli.flags.json);
  if (cli.input.length) {
    const extra = cli.input.map((a) => JSON.stringify(a)).join(' ');
    throw usageError('glow status', `takes no arguments; left over: ${extra} (a repository DIR is for --cluster: glow status --cluster DIR)`);
  }
  if (cli.flags.timeout !== undefined) throw usageError('glow status', '--timeout is for --cluster');
  const devbox = devboxPaths(process.env, homedir()).socket;
  const socket = cli.flags.socket ?? (!existsSync(GLOWD_SOCKET) && existsSync(devbox) ? devbox : GLOWD_SOCKET);
  const r = await getUnix(socket, '/status');
  if (cli.flags.json) {
    process.stdout.write(r.body);
    return 0;
  }
  const status = JSON.parse(r.body) as AgentStatus;
  process.stdout.write(`${formatStatus(status, styleFor(process.stdout), new Date())}\n`);
  const syncFailed = status.sync !== undefined && ('unreadable' in status.sync || status.sync.lastResult === 'failed');
  return status.configErrors.length || status.applyErrors.length || unbound(status).length || (status.sinks ?? []).some((k) => k.state === 'failed') || syncFailed ? 1 : 0;
}

async function runCluster(dir: string, timeout: string | undefined, asJson: boolean): Promise<number> {
  let timeoutMs = CLUSTER_TIMEOUT_MS;
  if (timeout !== undefined) {
    try {
      timeoutMs = parseDuration(timeout);
    } catch {
      throw usageError('glow status', `--timeout ${timeout} is not a duration like 2s or 500ms`);
    }
    if (!(timeoutMs > 0 && timeoutMs <= 60_000)) throw usageError('glow status', `--timeout ${timeout}: between 1ms and 60s`);
  }
  const view = await clusterView(readClusterRepo(dir), timeoutMs);
  if (asJson) process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
  else process.stdout.write(`${formatCluster(view, styleFor(process.stdout))}\n`);
  return view.converged ? 0 : 1;
}

function formatSync(s: SyncStatus, style: Style, now: Date): string[] {
  if ('unreadable' in s) return ['', style.red(`glow sync: its state ${s.file} cannot be read: ${s.unreadable.code} ${s.unreadable.message}`)];
  const out = [''];
  const result = s.lastResult === 'failed' ? style.red('failed') : s.lastResult;
  out.push(`glow sync: ${s.source ?? '(no source)'}${s.ref ? ` ${s.ref}` : ''}; last run ${result} ${ago(s.lastAttemptAt, now)}`);
  out.push(`  current ${s.revision ?? '(none)'}${s.commit ? ` (${s.kind === 'dir' ? 'content' : 'commit'} ${s.commit})` : ''}, published ${ago(s.publishedAt ?? undefined, now)}`);
  out.push(`  last success ${ago(s.lastSuccessAt ?? undefined, now)}`);
  if (s.lastError) out.push(`  ${s.lastResult === 'failed' ? style.red('last error') : 'last error'} ${ago(s.lastError.at, now)}: ${s.lastError.code} ${s.lastError.message}`);
  return out;
}

/** The proxy's frontends that should listen and do not (GLOW_E_PROXY_BIND): errors too. */
function unbound(st: AgentStatus) {
  return (st.proxy?.frontends ?? []).filter((f) => !f.bound && !f.draining);
}

function ago(iso: string | undefined, now: Date): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  const span = s < 90 ? `${s}s` : s < 5400 ? `${Math.round(s / 60)}m` : s < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
  return `${iso} (${span} ago)`;
}

export function formatStatus(st: AgentStatus, style: Style, now: Date): string {
  const out: string[] = [];
  out.push(`${style.bold(`node ${st.node}`)}  repository ${st.repo}`);
  out.push(`revision ${st.revision ?? '(none applied)'}, applied ${ago(st.appliedAt, now)}`);
  const from = st.appliedFrom;
  if (from?.commit) out.push(`  from ${from.commit.startsWith('sha256:') ? 'content' : 'commit'} ${from.commit}${from.syncRevision ? ` (glow sync ${from.syncRevision})` : ''}`);
  if (st.loadedFrom?.commit && st.loadedRevision !== st.revision) out.push(`  last read: revision ${st.loadedRevision} from ${st.loadedFrom.commit}${st.loadedFrom.syncRevision ? ` (${st.loadedFrom.syncRevision})` : ''}`);
  if (st.instancesPlanned !== undefined) out.push(`  ${st.instances.filter((i) => i.desired && i.activeState === 'active').length} of ${st.instancesPlanned} planned instance(s) active`);
  const box = (st as Partial<DevBoxStatus>).devbox;
  if (box) {
    out.push(`developer box: glow up (pid ${box.pid}), state in ${box.stateDir}`);
    for (const f of box.folded) out.push(`  ${f.app} #${f.kept.instance} runs for ${f.folded.map((x) => `#${x.instance} (${x.node})`).join(', ')} too`);
  }
  if (st.configErrors.length) {
    out.push('', style.red(`the repository has ${st.configErrors.length} error(s)${st.loadedRevision ? ` in revision ${st.loadedRevision}` : ''}; it is not applied:`));
    for (const e of st.configErrors) out.push(`  ${e.file ? `${e.file}:${e.line}:${e.col} ` : ''}${e.code} ${e.message}`);
  }
  if (st.applyErrors.length) {
    out.push('', style.red(`the last reconcile had ${st.applyErrors.length} error(s):`));
    for (const e of st.applyErrors) out.push(`  ${e.code}${e.unit ? ` ${e.unit}` : ''} ${e.message}`);
  }
  const notBound = unbound(st);
  if (notBound.length) {
    out.push('', style.red(`the proxy cannot listen on ${notBound.length} address${notBound.length === 1 ? '' : 'es'} (GLOW_E_PROXY_BIND; it keeps trying):`));
    for (const f of notBound) out.push(`  GLOW_E_PROXY_BIND ${f.key}${f.routes.length ? ` (${f.routes.map((r) => `${r.kind} ${r.name}`).join(', ')})` : ''}: ${f.error ?? 'unknown'}`);
  }
  if (st.sync) out.push(...formatSync(st.sync, style, now));
  out.push('', `proxy: ${st.proxy ? `${st.proxy.activeState} since ${ago(st.proxy.since, now)}` : 'not running'}`);
  for (const f of st.proxy?.frontends ?? []) {
    const state = f.draining ? ' (draining)' : f.bound ? '' : style.red(` (not bound: ${f.error ?? 'unknown'})`);
    out.push(`  ${f.key}${state}  ${f.connections} connection${f.connections === 1 ? '' : 's'}${f.native ? '  (native data path)' : ''}`);
    for (const r of f.routes) {
      out.push(`    ${r.kind} ${r.name} → ${r.service}  protocol ${r.protocol}`);
      r.groups.forEach((g, i) => {
        out.push(`      ${i === 0 ? '' : 'fallback '}${g.service}  health ${g.check === 'none' ? 'none (passive only)' : g.check === 'tcp' ? 'tcp connect' : g.check}`);
        for (const u of g.upstreams) {
          const health = u.ejected ? style.red(`ejected for ${Math.ceil(u.ejectedForMs / 1000)}s`) : u.state === 'unknown' ? 'not checked yet' : u.healthy ? style.green('healthy') : style.red(`unhealthy${u.lastCheckError ? ` (${u.lastCheckError})` : ''}`);
          const where = u.node ? ` ${u.node}${u.local ? ', local' : ''}` : '';
          out.push(`        ${u.address}${where}  ${health}  ${u.active} active, ${u.ejections} ejection${u.ejections === 1 ? '' : 's'}`);
        }
      });
    }
  }
  out.push(...formatExposures(st.proxy?.frontends ?? [], style, now));
  out.push('', style.bold(`instances (${st.instances.length})`));
  for (const i of st.instances) {
    const state = i.activeState === 'active' ? style.green(`${i.activeState} (${i.subState})`) : i.activeState === 'failed' ? style.red(`${i.activeState} (${i.subState})`) : `${i.activeState} (${i.subState})`;
    const extra = i.desired ? '' : i.stopAt ? `  no longer deployed: stops at ${i.stopAt}` : '  no longer deployed';
    const wants = i.blocked ? style.red(`  ${i.wanted ? `wants ${i.wanted}: ` : ''}blocked — ${i.blocked.code} ${i.blocked.message}`) : i.wanted ? `  wants ${i.wanted}` : '';
    out.push(`  ${`${i.app} #${i.instance}`.padEnd(20)} ${(i.version ?? '-').padEnd(10)} ${state}  since ${ago(i.since, now)}${i.mainPid ? `  pid ${i.mainPid}` : ''}${extra}${wants}`);
  }
  const sinks = st.sinks ?? [];
  if (sinks.length) out.push('', style.bold(`log sinks (${sinks.length})`));
  for (const k of sinks) {
    const state = k.state === 'running' ? style.green(k.state) : k.state === 'failed' || k.state === 'retrying' ? style.red(k.state) : k.state;
    out.push(`  ${k.name.padEnd(28)} ${k.type.padEnd(7)} ${state}  lag ${k.lagSeconds}s  ${k.forwarded} forwarded${k.rejected ? `, ${k.rejected} rejected` : ''}`);
    if (k.lastError) out.push(`    last error ${ago(k.lastError.at, now)}: ${k.lastError.code} ${k.lastError.message}`);
  }
  return out.join('\n');
}
