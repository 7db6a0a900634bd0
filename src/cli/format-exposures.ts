/**
 * The exposures section of `glow status`: each exposure the proxy serves, with its port (and TLS), hosts and path,
 * the certificate it serves and when that expires, its redirect_http port, and how many of its upstreams take
 * traffic. Read from the proxy's /status (the frontends glowd passes on).
 */
import type { FrontendStatus, RouteStatus } from '../proxy/proxy.js';
import type { Style } from '../shell/style.js';

export function formatExposures(frontends: readonly FrontendStatus[], style: Style, now: Date): string[] {
  const byName = new Map<string, { port: string; route: RouteStatus; redirects: string[] }>();
  for (const f of frontends) {
    if (f.draining) continue;
    const port = f.key.slice(f.key.lastIndexOf(':') + 1);
    for (const r of f.routes) {
      if (r.kind !== 'exposure') continue;
      let e = byName.get(r.name);
      if (r.redirectTo !== undefined) {
        if (!e) byName.set(r.name, (e = { port: '', route: r, redirects: [] }));
        e.redirects.push(port);
        continue;
      }
      const shown = `${f.key.startsWith('udp') ? 'udp' : r.protocol} ${port}${f.tls ? '/tls' : ''}${f.bound ? '' : style.red(` (not bound: ${f.error ?? 'unknown'})`)}`;
      if (e) Object.assign(e, { port: shown, route: r });
      else byName.set(r.name, { port: shown, route: r, redirects: [] });
    }
  }
  if (byName.size === 0) return [];
  const out = ['', style.bold(`exposures (${byName.size})`)];
  for (const [name, { port, route: r, redirects }] of [...byName].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const hosts = r.hosts?.length ? r.hosts.join(', ') : 'any host';
    const all = r.groups.flatMap((g) => g.upstreams);
    const up = all.filter((u) => u.healthy && !u.ejected).length;
    const health = up === all.length && all.length > 0 ? style.green(`${up}/${all.length} upstreams healthy`) : style.red(`${up}/${all.length} upstreams healthy`);
    const where = r.protocol === 'http' || r.hosts?.length ? `  ${hosts}${r.path ? ` ${r.path}` : ''}` : '';
    out.push(`  ${name.padEnd(16)} ${port.padEnd(12)}${where}  → ${r.service}  ${health}${redirects.length ? `  (http ${redirects.join(', ')} redirects here)` : ''}`);
    const t = r.tls;
    if (t) {
      const left = t.notAfter ? Math.floor((Date.parse(t.notAfter) - now.getTime()) / 86_400_000) : 0;
      const expiry = t.notAfter ? `expires ${t.notAfter} (${left < 0 ? style.red(`expired ${-left}d ago`) : left < 14 ? style.red(`in ${left}d`) : `in ${left}d`})` : style.red('not loaded');
      out.push(`    certificate ${t.cert}${t.subject ? ` (${t.subject})` : ''} ${expiry}`);
      if (t.error) out.push(`    ${style.red(`GLOW_E_PROXY_TLS ${t.error}`)}${t.loaded ? ' — the previous certificate still serves' : ''}`);
    }
  }
  return out;
}
