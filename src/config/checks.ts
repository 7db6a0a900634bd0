/**
 * Checks of the repository as a whole: references between files, instance numbers, fallbacks, config sources and
 * certificates (what would collide on one node is src/config/node-checks.ts). Each check reads the normalised
 * entities and reports positioned errors; none of them stops the others, so one pass reports everything.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { posix } from 'node:path';
import type { ConfigError } from './errors.js';
import { serviceKey } from './model.js';
import type { App, Deployment, Exposure, External, Instance, Node, Protocol, ProxyPolicy, ServiceRef } from './model.js';
import type { ExposureDraft } from './normalize.js';
import type { RepoEntry } from './source.js';
import { closest } from './suggest.js';
import type { Path, YamlFile } from './yaml.js';

/** Everything the cross checks read. Names include files that failed validation, so one bad file does not
 * cascade into "unknown app" errors everywhere it is named. */
export interface Repo {
  readonly yaml: ReadonlyMap<string, YamlFile>;
  readonly entries: ReadonlyMap<string, RepoEntry>;
  readonly appNames: ReadonlySet<string>;
  readonly externalNames: ReadonlySet<string>;
  readonly nodeNames: ReadonlySet<string>;
  readonly apps: ReadonlyMap<string, App>;
  readonly externals: ReadonlyMap<string, External>;
  readonly nodes: ReadonlyMap<string, Node>;
}

/** The port family a protocol binds: http is tcp. */
export const fam = (p: Protocol): 'udp' | 'tcp' => (p === 'udp' ? 'udp' : 'tcp');

function didYouMean(word: string, names: Iterable<string>): string {
  const near = closest(word, names);
  return near ? `; did you mean \`${near}\`?` : '';
}

/** The protocol of `ref` if it exists; otherwise pushes an error and returns undefined. `skip` when the target's
 * own file is invalid (its errors are reported there). */
function resolveService(
  repo: Repo,
  ref: ServiceRef,
  err: (code: 'GLOW_E_REF_UNKNOWN' | 'GLOW_E_PORT_UNKNOWN', sentence: string) => void,
): Protocol | 'skip' | undefined {
  // A name that is both an app and an external is reported once, as GLOW_E_NAME_CONFLICT; which one a reference
  // means is unknown, so references to it are not judged.
  if (repo.appNames.has(ref.name) && repo.externalNames.has(ref.name)) return 'skip';
  const app = repo.apps.get(ref.name);
  const ext = repo.externals.get(ref.name);
  if (app) {
    const p = app.provides.find((q) => q.port === ref.port);
    if (p) return p.protocol;
    const list = app.provides.map((q) => q.port).join(', ');
    err('GLOW_E_PORT_UNKNOWN', `app \`${ref.name}\` does not provide port ${ref.port}; it provides ${list || 'no ports'}`);
    return undefined;
  }
  if (ext) {
    const p = ext.ports.find((q) => q.port === ref.port);
    if (p) return p.protocol;
    const list = ext.ports.map((q) => q.port).join(', ');
    err('GLOW_E_PORT_UNKNOWN', `external \`${ref.name}\` has no endpoints for port ${ref.port}; it has ${list}`);
    return undefined;
  }
  if (repo.appNames.has(ref.name) || repo.externalNames.has(ref.name)) return 'skip';
  err(
    'GLOW_E_REF_UNKNOWN',
    `\`${ref.name}\` is neither an app nor an external${didYouMean(ref.name, [...repo.appNames, ...repo.externalNames])}`,
  );
  return undefined;
}

/** Where in an app's YAML a part of requires[i] is, for the short and the long form. */
export function requirePath(file: Pick<YamlFile, 'value'>, i: number, part: 'service' | 'port' | 'fallback', j?: number): Path {
  const raw = (file.value as { requires?: unknown[] }).requires?.[i];
  if (typeof raw === 'string') return ['requires', i];
  if (part === 'fallback' && j !== undefined && Array.isArray((raw as { fallback?: unknown }).fallback)) {
    return ['requires', i, 'fallback', j];
  }
  if (part === 'port' && (raw as { port?: unknown }).port === undefined) return ['requires', i, 'service'];
  return ['requires', i, part];
}

/** The proxy settings a listener gets, unset fields from glow.yaml `proxy`, as a string to compare. */
export function policyKey(r: ProxyPolicy, defaults: ProxyPolicy): string {
  return JSON.stringify([r.balance ?? defaults.balance, r.connectTimeoutMs ?? defaults.connectTimeoutMs, r.idleTimeoutMs ?? defaults.idleTimeoutMs, r.responseTimeoutMs ?? defaults.responseTimeoutMs, r.retries ?? defaults.retries]);
}

/**
 * Every `requires` entry names an existing service and port; a fallback speaks the service's protocol; one app
 * does not map two services (or one service with two proxy settings) to one local port, deployed or not.
 */
export function checkRequires(repo: Repo, errors: ConfigError[], proxyDefaults: ProxyPolicy = {}): void {
  for (const app of repo.apps.values()) {
    const file = repo.yaml.get(app.file)!;
    const locals = new Map<string, { i: number; target: string; policy: string }>();
    app.requires.forEach((r, i) => {
      const proto = resolveService(repo, r.service, (code, s) =>
        errors.push(file.error(code, requirePath(file, i, 'service'), s)),
      );
      if (proto && proto !== 'skip') {
        const k = `${fam(proto)}/${r.local}`;
        const target = serviceKey(r.service);
        const policy = policyKey(r, proxyDefaults);
        const prev = locals.get(k);
        if (!prev) locals.set(k, { i, target, policy });
        else if (prev.target !== target) {
          errors.push(file.error('GLOW_E_LOCAL_PORT_CONFLICT', requirePath(file, i, 'port'), `local port ${r.local} leads to \`${target}\` here but to \`${prev.target}\` in requires[${prev.i}]; use another local port`));
        } else if (prev.policy !== policy) {
          errors.push(file.error('GLOW_E_LOCAL_PORT_CONFLICT', requirePath(file, i, 'port'), `\`${target}\` is required on local port ${r.local} twice, with different proxy settings (balance, timeouts, retries); keep one entry`));
        }
      }
      r.fallback.forEach((f, j) => {
        const at = requirePath(file, i, 'fallback', j);
        const fp = resolveService(repo, f, (code, s) => errors.push(file.error(code, at, `fallback: ${s}`)));
        if (proto && proto !== 'skip' && fp && fp !== 'skip' && fam(fp) !== fam(proto)) {
          errors.push(
            file.error('GLOW_E_PROTOCOL_MISMATCH', at, `fallback \`${serviceKey(f)}\` is ${fp} but \`${serviceKey(r.service)}\` is ${proto}; a fallback must speak the same protocol`),
          );
        }
      });
    });
  }
}

/**
 * Fallbacks are a property of the service: `search:9200` falls back to the same chain wherever it is required,
 * and a fallback's own fallback is followed. Two different chains for one service, or a chain that comes back to
 * where it started, are errors.
 */
export function checkFallbacks(repo: Repo, errors: ConfigError[]): ReadonlyMap<string, readonly ServiceRef[]> {
  const chains = new Map<string, { chain: readonly ServiceRef[]; app: App; i: number }>();
  for (const app of repo.apps.values()) {
    const file = repo.yaml.get(app.file)!;
    app.requires.forEach((r, i) => {
      if (r.fallback.length === 0) return;
      const key = serviceKey(r.service);
      const seen = chains.get(key);
      const text = (c: readonly ServiceRef[]) => c.map(serviceKey).join(', ');
      if (seen && text(seen.chain) !== text(r.fallback)) {
        errors.push(
          file.error(
            'GLOW_E_FALLBACK_CONFLICT',
            requirePath(file, i, 'fallback'),
            `\`${key}\` falls back to \`${text(r.fallback)}\` here but to \`${text(seen.chain)}\` in ${seen.app.file}; a service has one fallback everywhere`,
          ),
        );
        return;
      }
      if (!seen) chains.set(key, { chain: r.fallback, app, i });
    });
  }
  // Follow every chain; a service met twice on one path is a loop.
  const reported = new Set<string>();
  for (const [start, { app, i }] of chains) {
    const stack: string[] = [start];
    const visit = (key: string): string[] | undefined => {
      for (const next of chains.get(key)?.chain ?? []) {
        const k = serviceKey(next);
        if (stack.includes(k)) return [...stack.slice(stack.indexOf(k)), k];
        stack.push(k);
        const loop = visit(k);
        stack.pop();
        if (loop) return loop;
      }
      return undefined;
    };
    const loop = visit(start);
    if (!loop) continue;
    const id = [...loop.slice(0, -1)].sort().join(' ');
    if (reported.has(id)) continue;
    reported.add(id);
    const file = repo.yaml.get(app.file)!;
    errors.push(
      file.error('GLOW_E_FALLBACK_LOOP', requirePath(file, i, 'fallback'), `fallbacks form a loop: ${loop.map((k) => `\`${k}\``).join(' → ')}; one of them must not fall back`),
    );
  }
  const out = new Map<string, readonly ServiceRef[]>();
  for (const [k, v] of chains) out.set(k, v.chain);
  return out;
}

/**
 * Resolves deployments into instances: the app and node must exist, explicit numbers must be unique per app,
 * and missing numbers get the lowest free one, deployments taken in file-name order.
 */
export function assignInstances(repo: Repo, deployments: readonly Deployment[], errors: ConfigError[]): Instance[] {
  const sorted = [...deployments].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const valid: Deployment[] = [];
  for (const d of sorted) {
    const file = repo.yaml.get(d.file)!;
    let ok = true;
    if (!repo.appNames.has(d.app)) {
      ok = false;
      const sentence = repo.externalNames.has(d.app)
        ? `\`${d.app}\` is an external; only apps are deployed`
        : `there is no app \`${d.app}\`${didYouMean(d.app, repo.appNames)}`;
      errors.push(file.error('GLOW_E_REF_UNKNOWN', ['app'], sentence));
    } else if (!repo.apps.has(d.app)) {
      ok = false; // the app's own file is invalid and reported there
    }
    if (!repo.nodeNames.has(d.node)) {
      ok = false;
      errors.push(file.error('GLOW_E_REF_UNKNOWN', ['node'], `there is no node \`${d.node}\` (no nodes/${d.node}.yaml)${didYouMean(d.node, repo.nodeNames)}`));
    }
    if (ok) valid.push(d);
  }
  const taken = new Map<string, Map<number, Deployment>>();
  const numbers = (app: string) => {
    let m = taken.get(app);
    if (!m) taken.set(app, (m = new Map()));
    return m;
  };
  const out: Instance[] = [];
  for (const d of valid) {
    if (d.instance === undefined) continue;
    const prev = numbers(d.app).get(d.instance);
    if (prev) {
      errors.push(
        repo.yaml.get(d.file)!.error('GLOW_E_INSTANCE_DUPLICATE', ['instance'], `${d.app} #${d.instance} is already deployed by ${prev.file}; give this one another number or delete one file`),
      );
      continue;
    }
    numbers(d.app).set(d.instance, d);
    out.push({ app: d.app, node: d.node, instance: d.instance, file: d.file });
  }
  const next = new Map<string, number>();
  for (const d of valid) {
    if (d.instance !== undefined) continue;
    const used = numbers(d.app);
    let n = next.get(d.app) ?? 1;
    while (used.has(n)) n++;
    used.set(n, d);
    next.set(d.app, n + 1);
    out.push({ app: d.app, node: d.node, instance: n, file: d.file });
  }
  return out.sort((a, b) => (a.app < b.app ? -1 : a.app > b.app ? 1 : a.instance - b.instance));
}

/** Resolves an exposure's nodes and protocol and checks its references. */
export function resolveExposures(repo: Repo, drafts: readonly ExposureDraft[], errors: ConfigError[]): Exposure[] {
  const out: Exposure[] = [];
  for (const d of drafts) {
    const file = repo.yaml.get(d.file)!;
    const before = errors.length;
    const protocol = resolveService(repo, d.service, (code, s) => errors.push(file.error(code, ['service'], s)));
    const nodes = new Set<string>();
    d.nodeNames.forEach((n, i) => {
      if (repo.nodeNames.has(n)) nodes.add(n);
      else errors.push(file.error('GLOW_E_REF_UNKNOWN', ['nodes', i], `there is no node \`${n}\`${didYouMean(n, repo.nodeNames)}`));
    });
    d.nodeTags.forEach((t, i) => {
      const tagged = [...repo.nodes.values()].filter((n) => n.tags.includes(t));
      if (tagged.length === 0) {
        const known = new Set([...repo.nodes.values()].flatMap((n) => n.tags));
        errors.push(file.error('GLOW_E_REF_UNKNOWN', ['tags', i], `no node has the tag \`${t}\`, so nothing would serve this exposure${didYouMean(t, known)}`));
      }
      for (const n of tagged) nodes.add(n.name);
    });
    if (protocol && protocol !== 'skip' && protocol !== 'http' && (d.hosts.length > 0 || d.path !== undefined)) {
      const key = d.hosts.length > 0 ? 'host' : 'path';
      errors.push(
        file.error('GLOW_E_PROTOCOL_MISMATCH', [key], `\`${key}\` routes HTTP requests, but \`${serviceKey(d.service)}\` is ${protocol}; declare the port \`/http\` or remove \`${key}\``, 'key'),
      );
    }
    if (protocol === 'udp' && d.tls) {
      errors.push(file.error('GLOW_E_PROTOCOL_MISMATCH', ['tls'], `TLS cannot be terminated for \`${serviceKey(d.service)}\`, which is udp`, 'key'));
    }
    if (d.tls) {
      const found: { cert?: Uint8Array; key?: Uint8Array } = {};
      for (const part of ['cert', 'key'] as const) {
        const ref = d.tls[part];
        if (!('repo' in ref)) continue;
        const norm = checkRepoFile(repo, file, ['tls', part], ref.repo, 'certificate file', errors);
        if (norm) found[part] = repo.entries.get(norm)!.bytes!;
      }
      checkCertificate(file, d, found.cert, found.key, errors);
    }
    if (d.redirectHttp !== undefined) {
      const why =
        protocol && protocol !== 'skip' && protocol !== 'http'
          ? `\`redirect_http\` redirects HTTP requests, but \`${serviceKey(d.service)}\` is ${protocol}; declare the port \`/http\` or remove \`redirect_http\``
          : !d.tls
            ? '`redirect_http` sends plain HTTP to HTTPS, but this exposure does not terminate TLS; add `tls` or remove `redirect_http`'
            : d.redirectHttp === d.port
              ? `\`redirect_http\` names port ${d.port}, the exposure's own port; plain HTTP needs a port of its own (usually 80: \`redirect_http: true\`)`
              : undefined;
      if (why) errors.push(file.error(d.redirectHttp === d.port ? 'GLOW_E_VALUE_INVALID' : 'GLOW_E_PROTOCOL_MISMATCH', ['redirect_http'], why, d.redirectHttp === d.port ? 'value' : 'key'));
    }
    if (protocol && protocol !== 'skip' && protocol !== 'http' && (file.value as { limits?: unknown }).limits !== undefined) {
      errors.push(file.error('GLOW_E_PROTOCOL_MISMATCH', ['limits'], `\`limits\` bounds HTTP requests, but \`${serviceKey(d.service)}\` is ${protocol}; declare the port \`/http\` or remove \`limits\``, 'key'));
    }
    if (errors.length > before || !protocol || protocol === 'skip') continue;
    const { nodeNames: _n, nodeTags: _t, ...rest } = d;
    out.push({ ...rest, protocol, nodes: [...nodes].sort() });
  }
  return out;
}

/**
 * A certificate and key from the repository: PEM that node:crypto parses, an unencrypted private key, the key of
 * that certificate, and a certificate that covers every host the exposure names (what a browser would check).
 * Absolute paths are files on the node: the proxy checks them when it loads them (docs/proxy.md).
 */
function checkCertificate(file: YamlFile, d: ExposureDraft, certBytes: Uint8Array | undefined, keyBytes: Uint8Array | undefined, errors: ConfigError[]): void {
  let cert: X509Certificate | undefined;
  let key: KeyObject | undefined;
  const certPath = 'repo' in d.tls!.cert ? d.tls!.cert.repo : '';
  const keyPath = 'repo' in d.tls!.key ? d.tls!.key.repo : '';
  if (certBytes) {
    try {
      if (!Buffer.from(certBytes).includes('-----BEGIN CERTIFICATE-----')) throw new Error('no `-----BEGIN CERTIFICATE-----` line');
      cert = new X509Certificate(certBytes);
    } catch (e) {
      errors.push(file.error('GLOW_E_TLS_CERT', ['tls', 'cert'], `\`${certPath}\` holds no PEM certificate (${plain(e)}); it must start with the server's certificate, followed by its intermediates`));
    }
  }
  if (keyBytes) {
    try {
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(Buffer.from(keyBytes).toString('latin1'))) throw new Error('no `-----BEGIN … PRIVATE KEY-----` line');
      key = createPrivateKey({ key: Buffer.from(keyBytes), format: 'pem' });
    } catch (e) {
      const encrypted = /passphrase|ENCRYPTED/i.test(`${(e as Error).message} ${Buffer.from(keyBytes).toString('latin1', 0, 200)}`);
      errors.push(
        file.error('GLOW_E_TLS_KEY', ['tls', 'key'], encrypted ? `\`${keyPath}\` is an encrypted private key; the proxy reads unencrypted keys (protect the file instead: it is delivered readable by the proxy only)` : `\`${keyPath}\` holds no PEM private key (${plain(e)})`),
      );
    }
  }
  if (cert && key) {
    if (!cert.checkPrivateKey(key)) {
      errors.push(file.error('GLOW_E_TLS_MISMATCH', ['tls', 'key'], `the key \`${keyPath}\` does not belong to the certificate \`${certPath}\` (${cert.subject.replace(/\n/g, ', ')}); name the key the certificate was issued for`));
      return;
    }
  }
  if (cert) {
    d.hosts.forEach((h, i) => {
      const probe = h.startsWith('*.') ? `glow-check${h.slice(1)}` : h;
      if (cert!.checkHost(probe) !== undefined) return;
      const names = (cert!.subjectAltName ?? cert!.subject).replace(/\n/g, ', ');
      const at: Path = Array.isArray((file.value as { host?: unknown }).host) ? ['host', i] : ['host'];
      errors.push(file.error('GLOW_E_TLS_HOST', at, `the certificate \`${certPath}\` does not cover \`${h}\` (it names ${names}); browsers would refuse it`));
    });
  }
}

function plain(e: unknown): string {
  return (e as Error).message.replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, '').trim();
}

/** A repository path named by a config source or a certificate: under files/, inside, a regular file. */
function checkRepoFile(repo: Repo, file: YamlFile, at: Path, source: string, what: string, errors: ConfigError[]): string | undefined {
  if (source.startsWith('/')) {
    errors.push(file.error('GLOW_E_SOURCE_OUTSIDE', at, `\`${source}\` is an absolute path; a ${what} is a path inside the repository, such as \`files/app/app.conf\``));
    return undefined;
  }
  const norm = posix.normalize(source);
  if (norm === '..' || norm.startsWith('../') || source.split('/').includes('..')) {
    errors.push(file.error('GLOW_E_SOURCE_OUTSIDE', at, `\`${source}\` uses \`..\`; a ${what} must stay inside the repository's files/ directory`));
    return undefined;
  }
  if (!norm.startsWith('files/')) {
    errors.push(file.error('GLOW_E_SOURCE_OUTSIDE', at, `\`${source}\` is not under files/; ${what}s live in the repository's files/ directory`));
    return undefined;
  }
  const entry = repo.entries.get(norm);
  const parts = norm.split('/');
  const linkOut = parts.map((_, k) => parts.slice(0, k).join('/')).find((d) => d && repo.entries.get(d)?.kind === 'outside');
  if (!entry && linkOut) {
    errors.push(file.error('GLOW_E_SOURCE_OUTSIDE', at, `\`${norm}\` is inside \`${linkOut}\`, a symbolic link that leads out of the repository; copy the files in`));
    return undefined;
  }
  if (!entry) {
    const known = [...repo.entries.values()].filter((e) => e.kind === 'file' && e.path.startsWith('files/')).map((e) => e.path);
    errors.push(file.error('GLOW_E_SOURCE_MISSING', at, `there is no file \`${norm}\` in the repository${didYouMean(norm, known)}`));
    return undefined;
  }
  switch (entry.kind) {
    case 'dir':
      errors.push(file.error('GLOW_E_SOURCE_DIRECTORY', at, `\`${norm}\` is a directory; name one file`));
      return undefined;
    case 'outside':
      errors.push(file.error('GLOW_E_SOURCE_OUTSIDE', at, `\`${norm}\` is a symbolic link that leads out of the repository; copy the file in`));
      return undefined;
    case 'file':
      if (entry.bytes) return norm;
      errors.push(file.error('GLOW_E_FILE_TOO_LARGE', at, `\`${norm}\` is ${entry.size} bytes; files named by apps may be at most 16 MiB`));
      return undefined;
    default:
      errors.push(file.error('GLOW_E_FILE_UNREADABLE', at, `\`${norm}\` cannot be read${entry.error ? `: ${entry.error}` : ''}`));
      return undefined;
  }
}

/** Directories a config file's directory may not be: glow mounts that directory, so it must be the app's own. */
const SYSTEM_DIRS = new Set([
  '/', '/bin', '/boot', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/opt', '/root',
  '/run', '/sbin', '/srv', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/local/bin', '/usr/sbin',
  '/usr/share', '/var', '/var/lib', '/var/log', '/var/tmp', '/var/cache', '/var/lib/glow',
]);
const FORBIDDEN_TREES = ['/proc', '/sys', '/dev', '/run/glow', '/var/lib/glow'];

/** Config files: the source exists inside files/, the path is absolute and in a directory the app can own. */
export function checkConfigFiles(repo: Repo, errors: ConfigError[]): Set<string> {
  const used = new Set<string>();
  for (const app of repo.apps.values()) {
    const file = repo.yaml.get(app.file)!;
    const many = Array.isArray((file.value as { config?: unknown }).config);
    const paths = new Map<string, number>();
    app.config.forEach((c, i) => {
      const at = (k: string): Path => (many ? ['config', i, k] : ['config', k]);
      const src = checkRepoFile(repo, file, at('source'), c.source, 'config source', errors);
      if (src) used.add(src);
      const p = c.path;
      const norm = posix.normalize(p);
      const dir = posix.dirname(norm);
      let why: string | undefined;
      if (p === '/') why = '`/` is the root directory; name the file the app reads, such as `/etc/' + app.name + '/' + app.name + '.conf`';
      else if (!p.startsWith('/')) why = `\`${p}\` is not an absolute path; write where the app reads it, such as \`/etc/${app.name}/${posix.basename(p) || 'app.conf'}\``;
      else if (norm !== p || p.endsWith('/')) why = `\`${p}\` is not a plain path to a file (no \`..\`, \`.\`, \`//\` or trailing \`/\`)`;
      else if (FORBIDDEN_TREES.some((t) => norm === t || norm.startsWith(`${t}/`))) why = `\`${p}\` lies under ${FORBIDDEN_TREES.find((t) => norm === t || norm.startsWith(`${t}/`))}, where apps may not be given files`;
      else if (SYSTEM_DIRS.has(dir)) why = `\`${p}\` is directly in ${dir}; glow mounts the file's directory over the app's view, so give it a directory of its own, such as \`${dir === '/' ? '' : dir}/${app.name}/${posix.basename(p)}\``;
      if (why) {
        errors.push(file.error('GLOW_E_CONFIG_PATH_INVALID', at('path'), why));
        return;
      }
      const prev = paths.get(norm);
      if (prev !== undefined) {
        errors.push(file.error('GLOW_E_CONFIG_PATH_CONFLICT', at('path'), `\`${p}\` is also the path of config[${prev}]; each config file needs its own path`));
        return;
      }
      paths.set(norm, i);
    });
    if (app.health?.port !== undefined && !app.provides.some((q) => q.port === app.health!.port)) {
      errors.push(file.error('GLOW_E_PORT_UNKNOWN', ['health', 'port'], `this app does not provide port ${app.health.port}, so it cannot be health-checked there`));
    }
    if (app.health?.http !== undefined) {
      const hp = app.health.port;
      if (hp === undefined && !app.provides.some((q) => q.protocol !== 'udp')) {
        errors.push(file.error('GLOW_E_PROTOCOL_MISMATCH', ['health', 'http'], 'an HTTP health check needs a tcp or http port to call; this app provides none'));
      } else if (hp !== undefined && app.provides.find((q) => q.port === hp)?.protocol === 'udp') {
        // (a health.port that the app does not provide is reported above)
        errors.push(file.error('GLOW_E_PROTOCOL_MISMATCH', ['health', 'port'], `\`health.port\` ${hp} is a udp port; an HTTP health check needs a tcp or http port`));
      }
    }
  }
  return used;
}

export function protocolOf(repo: Pick<Repo, 'apps' | 'externals'>, ref: ServiceRef): Protocol | undefined {
  return (
    repo.apps.get(ref.name)?.provides.find((p) => p.port === ref.port)?.protocol ??
    repo.externals.get(ref.name)?.ports.find((p) => p.port === ref.port)?.protocol
  );
}
