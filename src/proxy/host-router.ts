/**
 * Which route of a shared port serves a request: by Host, then by path prefix. Pure.
 *
 * Host levels, most specific first: an exact name (`www.example.com`), then wildcards (`*.example.com` matches
 * any name that ends in `.example.com`, at any depth; the longest suffix wins), then the routes without `host`
 * (the port's catch-all). Within the first level that names the host, the route with the longest matching path
 * prefix serves; when none of them matches the path, the next level is tried. A path prefix `/api` matches `/api`,
 * `/api/…` and `/api?…`, never `/apix`; paths are compared as sent (no percent-decoding). Nothing matching: null
 * (the proxy answers 404).
 *
 * Hosts are compared in lower case without a port and without a trailing dot; a Host value that is not a host
 * name, an IPv4 address or a bracketed IPv6 address is refused (`normalizeHost` returns null → 400).
 */

export interface Routable {
  readonly spec: { readonly hosts: readonly string[]; readonly path?: string | undefined };
}

export class HostRouter<T extends Routable> {
  /** The one route of a port without host or path routing (a loopback listener): no lookup at all. */
  readonly only: T | null;
  private readonly exact = new Map<string, T[]>();
  private readonly wild: { suffix: string; routes: T[] }[] = [];
  private readonly any: T[] = [];

  constructor(readonly routes: readonly T[]) {
    const first = routes[0];
    this.only = routes.length === 1 && first && first.spec.hosts.length === 0 && !first.spec.path ? first : null;
    const wild = new Map<string, T[]>();
    for (const r of routes) {
      if (r.spec.hosts.length === 0) this.any.push(r);
      for (const h of r.spec.hosts) {
        if (h.startsWith('*.')) push(wild, h.slice(1), r);
        else push(this.exact, h, r);
      }
    }
    for (const [suffix, list] of wild) this.wild.push({ suffix, routes: list });
    this.wild.sort((a, b) => b.suffix.length - a.suffix.length);
    const byPath = (a: T, b: T) => (b.spec.path?.length ?? 0) - (a.spec.path?.length ?? 0);
    for (const list of this.exact.values()) list.sort(byPath);
    for (const w of this.wild) w.routes.sort(byPath);
    this.any.sort(byPath);
  }

  /** The route for a normalised host (null: none sent) and a path (without the query). */
  match(host: string | null, path: string): T | null {
    if (this.only) return this.only;
    if (host !== null) {
      const exact = this.exact.get(host);
      if (exact) {
        const r = byPath(exact, path);
        if (r) return r;
      }
      for (const w of this.wild) {
        if (host.length > w.suffix.length && host.endsWith(w.suffix)) {
          const r = byPath(w.routes, path);
          if (r) return r;
        }
      }
    }
    return byPath(this.any, path);
  }

  /** The routes of the most specific host level that names `host` (for SNI: paths do not matter there). */
  forHost(host: string | null): readonly T[] {
    if (host !== null) {
      const exact = this.exact.get(host);
      if (exact) return exact;
      for (const w of this.wild) if (host.length > w.suffix.length && host.endsWith(w.suffix)) return w.routes;
    }
    return this.any;
  }
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function byPath<T extends Routable>(routes: readonly T[], path: string): T | null {
  for (const r of routes) if (pathMatches(r.spec.path, path)) return r;
  return null;
}

export function pathMatches(prefix: string | undefined, path: string): boolean {
  if (!prefix || prefix === '/') return true;
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (!path.startsWith(p)) return false;
  if (path.length === p.length) return true;
  const next = path.charCodeAt(p.length);
  return next === 47 /* / */ || next === 63; /* ? */
}

/**
 * A Host header value (or an SNI name, or the authority of an absolute-form target) as routes name hosts:
 * lower case, without the port, without a trailing dot. Null when it is not a plausible host: the proxy refuses
 * the request rather than route or redirect on garbage.
 */
export function normalizeHost(value: string): string | null {
  if (value.length === 0 || value.length > 255) return null;
  if (value.charCodeAt(0) === 91 /* [ */) {
    const end = value.indexOf(']');
    if (end < 0) return null;
    const rest = value.slice(end + 1);
    if (rest !== '' && !/^:[0-9]{1,5}$/.test(rest)) return null;
    const inner = value.slice(1, end).toLowerCase();
    return /^[0-9a-f:.]+$/.test(inner) ? `[${inner}]` : null;
  }
  let host = value;
  const colon = value.indexOf(':');
  if (colon >= 0) {
    if (!/^[0-9]{1,5}$/.test(value.slice(colon + 1))) return null;
    host = value.slice(0, colon);
  }
  host = host.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  return /^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$/.test(host) ? host : null;
}

/** The host (from an absolute-form target, else null) and the path without the query of a request target. */
export function splitTarget(target: string): { host: string | null; path: string } {
  let path = target;
  let host: string | null = null;
  if (target.charCodeAt(0) !== 47 /* / */) {
    const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)(.*)$/.exec(target);
    if (m) {
      host = m[1]!.replace(/^[^@]*@/, '');
      path = m[2] === '' ? '/' : m[2]!;
    } else return { host: null, path: target === '*' ? '*' : '/' };
  }
  const q = path.indexOf('?');
  return { host, path: q >= 0 ? path.slice(0, q) : path };
}
