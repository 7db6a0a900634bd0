/**
 * `glow status [--json]`: what glowd on this node applied and runs — revision, when, last errors, every instance
 * with its systemd state and since when — read from the control socket (root only).
 */
import type { AgentStatus } from '../agent/agent.js';
import { getUnix } from '../agent/control.js';
import { parseArgs } from './args.js';
import { styleFor } from './format.js';
import type { Style } from './format.js';

const HELP = `Usage
  glow status [--json] [--socket PATH]

Shows this node as glowd sees it: the revision applied and when, the errors of the repository (a revision with
errors is not applied) and of the last reconcile, the proxy, and every instance with its state and since when.
Run as root.

Options
  --json          print the status as JSON
  --socket PATH   glowd's control socket (default /run/glow/glowd.sock)`;

export async function runStatus(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    json: { type: 'boolean', default: false },
    socket: { type: 'string', default: '/run/glow/glowd.sock' },
  });
  const r = await getUnix(cli.flags.socket, '/status');
  if (cli.flags.json) {
    process.stdout.write(r.body);
    return 0;
  }
  const status = JSON.parse(r.body) as AgentStatus;
  process.stdout.write(`${formatStatus(status, styleFor(process.stdout), new Date())}\n`);
  return status.configErrors.length || status.applyErrors.length ? 1 : 0;
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
  if (st.configErrors.length) {
    out.push('', style.red(`the repository has ${st.configErrors.length} error(s)${st.loadedRevision ? ` in revision ${st.loadedRevision}` : ''}; it is not applied:`));
    for (const e of st.configErrors) out.push(`  ${e.file ? `${e.file}:${e.line}:${e.col} ` : ''}${e.code} ${e.message}`);
  }
  if (st.applyErrors.length) {
    out.push('', style.red(`the last reconcile had ${st.applyErrors.length} error(s):`));
    for (const e of st.applyErrors) out.push(`  ${e.code}${e.unit ? ` ${e.unit}` : ''} ${e.message}`);
  }
  out.push('', `proxy: ${st.proxy ? `${st.proxy.activeState} since ${ago(st.proxy.since, now)}` : 'not running'}`);
  for (const f of st.proxy?.frontends ?? []) {
    const state = f.draining ? ' (draining)' : f.bound ? '' : style.red(` (not bound: ${f.error ?? 'unknown'})`);
    out.push(`  ${f.key}${state}  ${f.connections} connection${f.connections === 1 ? '' : 's'}`);
    for (const r of f.routes) {
      out.push(`    ${r.kind} ${r.name} → ${r.service} (${r.protocol})`);
      r.groups.forEach((g, i) => {
        out.push(`      ${i === 0 ? '' : 'fallback '}${g.service} (${g.check})`);
        for (const u of g.upstreams) {
          const health = u.ejected ? style.red(`ejected for ${Math.ceil(u.ejectedForMs / 1000)}s`) : u.healthy ? style.green('healthy') : style.red(`unhealthy${u.lastCheckError ? ` (${u.lastCheckError})` : ''}`);
          const where = u.node ? ` ${u.node}${u.local ? ', local' : ''}` : '';
          out.push(`        ${u.address}${where}  ${health}  ${u.active} active, ${u.ejections} ejection${u.ejections === 1 ? '' : 's'}`);
        }
      });
    }
  }
  out.push('', style.bold(`instances (${st.instances.length})`));
  for (const i of st.instances) {
    const state = i.activeState === 'active' ? style.green(`${i.activeState} (${i.subState})`) : i.activeState === 'failed' ? style.red(`${i.activeState} (${i.subState})`) : `${i.activeState} (${i.subState})`;
    const extra = i.desired ? '' : i.stopAt ? `  no longer deployed: stops at ${i.stopAt}` : '  no longer deployed';
    out.push(`  ${`${i.app} #${i.instance}`.padEnd(20)} ${(i.version ?? '-').padEnd(10)} ${state}  since ${ago(i.since, now)}${i.mainPid ? `  pid ${i.mainPid}` : ''}${extra}`);
  }
  return out.join('\n');
}
