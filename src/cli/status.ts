/**
 * `glow status [--json]`: what glowd on this node applied and runs — revision, when, last errors, every instance
 * with its systemd state and since when — read from the control socket (root only).
 */
import { AGENT_DEFAULTS } from '../base/paths.js';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import type { AgentStatus } from '../shell/status.js';
import { getUnix } from '../shell/control.js';
import type { DevBoxStatus } from '../box/devbox.js';
import { devboxPaths } from '../box/paths.js';
import { parseArgs } from './args.js';
import { formatExposures } from './format-exposures.js';
import { styleFor } from '../shell/style.js';
import type { Style } from '../shell/style.js';

const HELP = `Usage
  glow status [--json] [--socket PATH]

Shows this node as glowd sees it: the revision applied and when, the errors of the repository (a revision with
errors is not applied) and of the last reconcile, the proxy, every instance with its state and since when, and
every log sink with its state, lag and last error. Run as root (or as the user of \`glow up\`).

Exit status: 0 when all is well; 1 on an error of the repository or of the last reconcile, a proxy listener that
is not bound (GLOW_E_PROXY_BIND), a sink that cannot start, or when nothing answers on the socket; 2 on a wrong
command line. With --json: 0 whenever the socket answered (the errors are in the JSON).

Options
  --json          print the status as JSON
  --socket PATH   glowd's control socket (default ${AGENT_DEFAULTS.socket}; where there is none, that of the
                  developer box of \`glow up\`: $XDG_RUNTIME_DIR/glow/up.sock)`;

const GLOWD_SOCKET = AGENT_DEFAULTS.socket;

export async function runStatus(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    json: { type: 'boolean', default: false },
    socket: { type: 'string' },
  });
  const devbox = devboxPaths(process.env, homedir()).socket;
  const socket = cli.flags.socket ?? (!existsSync(GLOWD_SOCKET) && existsSync(devbox) ? devbox : GLOWD_SOCKET);
  const r = await getUnix(socket, '/status');
  if (cli.flags.json) {
    process.stdout.write(r.body);
    return 0;
  }
  const status = JSON.parse(r.body) as AgentStatus;
  process.stdout.write(`${formatStatus(status, styleFor(process.stdout), new Date())}\n`);
  return status.configErrors.length || status.applyErrors.length || unbound(status).length || (status.sinks ?? []).some((k) => k.state === 'failed') ? 1 : 0;
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
  out.push('', `proxy: ${st.proxy ? `${st.proxy.activeState} since ${ago(st.proxy.since, now)}` : 'not running'}`);
  for (const f of st.proxy?.frontends ?? []) {
    const state = f.draining ? ' (draining)' : f.bound ? '' : style.red(` (not bound: ${f.error ?? 'unknown'})`);
    out.push(`  ${f.key}${state}  ${f.connections} connection${f.connections === 1 ? '' : 's'}`);
    for (const r of f.routes) {
      out.push(`    ${r.kind} ${r.name} → ${r.service}  protocol ${r.protocol}`);
      r.groups.forEach((g, i) => {
        out.push(`      ${i === 0 ? '' : 'fallback '}${g.service}  health ${g.check === 'none' ? 'none (passive only)' : g.check === 'tcp' ? 'tcp connect' : g.check}`);
        for (const u of g.upstreams) {
          const health = u.ejected ? style.red(`ejected for ${Math.ceil(u.ejectedForMs / 1000)}s`) : u.healthy ? style.green('healthy') : style.red(`unhealthy${u.lastCheckError ? ` (${u.lastCheckError})` : ''}`);
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
