/**
 * Log sinks of glow.yaml (`logs.sinks`): from schema-valid YAML to the model's Sink, with what the schema cannot
 * see — a URL that is not one the sink type speaks, TLS options on a sink without TLS, a certificate file that is
 * missing or not PEM, two sinks with one name. Pure: the repository's files come in as entries; the one thing left
 * for the node is an absolute TLS path, which glowd reads when it starts the sink.
 *
 * A sink's `name` is its identity across edits of glow.yaml: its journal cursor (`<state>/logs/<name>.cursor`)
 * and its metrics label. Without `name:` it is derived from the type and the URL (without credentials, query or
 * fragment) or path, so changing the URL of an unnamed sink starts it afresh; name it to keep its place.
 */
import { redactUrl } from '../base/redact.js';
import type { ConfigError } from './errors.js';
import type { FileRef, Sink, SinkTls, SinkType } from './model.js';
import { DEFAULTS } from './model.js';
import { parseDuration } from './notation.js';
import type { RepoEntry } from './source.js';
import type { Path, YamlFile } from './yaml.js';

export interface RawSink {
  name?: string;
  type: SinkType;
  url?: string;
  path?: string;
  tls?: { ca?: string; cert?: string; key?: string };
  batch_size?: number;
  batch_wait?: string | number;
}

/** Where a network sink sends, parsed from its URL. */
export interface SinkEndpoint {
  readonly scheme: 'udp' | 'tcp' | 'tls' | 'http' | 'https';
  /** Host name or address, without IPv6 brackets. */
  readonly host: string;
  readonly port: number;
  /** http(s): the path and query to POST to. */
  readonly path: string;
  /** http(s): `user:password` of the URL, sent as Basic authorization. */
  readonly auth?: string;
}

const SYSLOG_PORTS = { udp: 514, tcp: 514, tls: 6514 } as const;
export const LOKI_PUSH_PATH = '/loki/api/v1/push';
/** Placeholders a file sink's path may hold. */
export const PATH_PLACEHOLDERS = ['app', 'instance', 'node'] as const;

export type ParsedUrl = { ok: true; value: SinkEndpoint } | { ok: false; why: string };

/** Parses the URL of a syslog, loki or http sink; the reason in one sentence when it is not one. */
export function parseSinkUrl(type: SinkType, url: string): ParsedUrl {
  const fail = (why: string): ParsedUrl => ({ ok: false, why });
  if (type === 'file') return fail('a file sink writes to `path`, not to a `url`');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail(`\`${redactUrl(url)}\` is not a URL; write it like ${type === 'syslog' ? '`tcp://logs.internal:514`' : '`http://collector.internal/ingest`'}`);
  }
  const scheme = u.protocol.slice(0, -1);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (type === 'syslog') {
    if (scheme !== 'udp' && scheme !== 'tcp' && scheme !== 'tls') return fail(`a syslog sink speaks \`udp://\`, \`tcp://\` or \`tls://\`, not \`${scheme}://\``);
    if (!host) return fail(`\`${redactUrl(url)}\` names no host`);
    if (u.username || u.password) return fail('a syslog URL carries no user or password');
    if ((u.pathname && u.pathname !== '/') || u.search || u.hash) return fail(`a syslog URL is \`${scheme}://host:port\`, without a path`);
    const port = u.port ? Number(u.port) : SYSLOG_PORTS[scheme];
    return { ok: true, value: { scheme, host, port, path: '' } };
  }
  if (scheme !== 'http' && scheme !== 'https') return fail(`${type === 'http' ? 'an' : 'a'} ${type} sink speaks \`http://\` or \`https://\`, not \`${scheme}://\``);
  if (!host) return fail(`\`${redactUrl(url)}\` names no host`);
  if (u.hash) return fail('a sink URL has no `#fragment`');
  const port = u.port ? Number(u.port) : scheme === 'https' ? 443 : 80;
  let path = `${u.pathname}${u.search}`;
  if (type === 'loki' && (u.pathname === '' || u.pathname === '/')) path = `${LOKI_PUSH_PATH}${u.search}`;
  const auth = u.username ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` : undefined;
  return { ok: true, value: { scheme, host, port, path, ...(auth !== undefined ? { auth } : {}) } };
}

/**
 * The default name of a sink: its type and where it sends, as a file-name-safe slug (`syslog-logs.internal-514`,
 * `file-var-log-glow-app.log`). Credentials, query and fragment are left out; long ones are cut and given a hash.
 */
export function defaultSinkName(type: SinkType, target: string): string {
  let where = target;
  if (type !== 'file') {
    try {
      const u = new URL(target);
      where = `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname === '/' ? '' : u.pathname}`;
    } catch {
      // an invalid URL is reported elsewhere; the name only has to be stable
    }
  }
  let slug = `${type}-${where}`
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  if (slug.length > 80) slug = `${slug.slice(0, 71)}-${fnv1a(slug)}`;
  return slug;
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const fileRef = (p: string): FileRef => (p.startsWith('/') ? { node: p } : { repo: p });

/** The sinks of glow.yaml, each checked on its own and against the others. */
export function normalizeSinks(file: YamlFile | undefined, raws: readonly RawSink[], errors: ConfigError[]): Sink[] {
  const sinks: Sink[] = [];
  const named = new Map<string, number>();
  raws.forEach((s, i) => {
    const at: Path = ['logs', 'sinks', i];
    const err = (code: Parameters<YamlFile['error']>[0], path: Path, message: string, part?: 'key' | 'value') => {
      if (file) errors.push(file.error(code, path, message, part));
    };
    const before = errors.length;
    const needs = s.type === 'file' ? 'path' : 'url';
    const other = s.type === 'file' ? 'url' : 'path';
    if (s[needs] === undefined) err('GLOW_E_KEY_MISSING', at, `a \`${s.type}\` sink needs \`${needs}\``);
    if (s[other] !== undefined) {
      err('GLOW_E_SINK_URL', [...at, other], s.type === 'file' ? 'a file sink writes to `path`, not to a `url`' : `${s.type === 'http' ? 'an' : 'a'} ${s.type} sink sends to a \`url\`; \`path\` is for file sinks`, 'key');
    }
    let endpoint: SinkEndpoint | undefined;
    if (s.type !== 'file' && s.url !== undefined) {
      const parsed = parseSinkUrl(s.type, s.url);
      if (parsed.ok) endpoint = parsed.value;
      else err('GLOW_E_SINK_URL', [...at, 'url'], parsed.why);
    }
    if (s.type === 'file' && s.path !== undefined) {
      const unknown = [...s.path.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).filter((p) => !(PATH_PLACEHOLDERS as readonly string[]).includes(p));
      if (!s.path.startsWith('/')) err('GLOW_E_VALUE_INVALID', [...at, 'path'], `\`${s.path}\` is not an absolute path; write it like \`/var/log/glow/{app}.log\``);
      else if (s.path.split('/').includes('..')) err('GLOW_E_VALUE_INVALID', [...at, 'path'], `\`${s.path}\` uses \`..\`; write the directory out`);
      else if (s.path.endsWith('/')) err('GLOW_E_VALUE_INVALID', [...at, 'path'], `\`${s.path}\` is a directory; name a file such as \`${s.path}{app}.log\``);
      else if (unknown.length) err('GLOW_E_VALUE_INVALID', [...at, 'path'], `\`{${unknown[0]}}\` is not a placeholder; a path may hold ${PATH_PLACEHOLDERS.map((p) => `\`{${p}}\``).join(', ')}`);
    }
    if (s.tls) {
      const secure = endpoint?.scheme === 'tls' || endpoint?.scheme === 'https';
      if (endpoint && !secure) {
        err('GLOW_E_SINK_TLS', [...at, 'tls'], `\`tls\` is for \`tls://\` and \`https://\` sinks; this one sends over \`${endpoint.scheme}://\``, 'key');
      } else if (s.type === 'file') {
        err('GLOW_E_SINK_TLS', [...at, 'tls'], 'a file sink has no `tls`', 'key');
      }
      if ((s.tls.cert === undefined) !== (s.tls.key === undefined)) {
        const has = s.tls.cert !== undefined ? 'cert' : 'key';
        err('GLOW_E_SINK_TLS', [...at, 'tls', has], `a client certificate needs both \`cert\` and \`key\`; this sink names only \`${has}\``, 'key');
      }
    }
    const name = s.name ?? defaultSinkName(s.type, (s.type === 'file' ? s.path : s.url) ?? '');
    const prev = named.get(name);
    if (errors.length > before) return; // a sink with errors claims no name
    if (prev !== undefined) {
      err('GLOW_E_SINK_DUPLICATE', s.name !== undefined ? [...at, 'name'] : at, `two sinks are named \`${name}\` (this one and logs.sinks[${prev}]); each sink needs its own name${s.name === undefined ? ', given by `name:` or derived from its type and URL or path' : ''}`);
    } else {
      named.set(name, i);
    }
    if (errors.length > before) return;
    const tls: { -readonly [K in keyof SinkTls]: SinkTls[K] } = {};
    if (s.tls?.ca !== undefined) tls.ca = fileRef(s.tls.ca);
    if (s.tls?.cert !== undefined) tls.cert = fileRef(s.tls.cert);
    if (s.tls?.key !== undefined) tls.key = fileRef(s.tls.key);
    sinks.push({
      name,
      type: s.type,
      ...(s.url !== undefined ? { url: s.url } : {}),
      ...(s.path !== undefined ? { path: s.path } : {}),
      ...(s.tls ? { tls } : {}),
      batchSize: s.batch_size ?? DEFAULTS.sink.batchSize,
      batchWaitMs: s.batch_wait !== undefined ? parseDuration(s.batch_wait) : DEFAULTS.sink.batchWaitMs,
    });
  });
  return sinks;
}

/**
 * The TLS files of the sinks that live in the repository: under files/, present, readable, PEM. Returns their
 * paths (the snapshot carries their bytes to glowd). Absolute paths are the node's; glowd reads them.
 */
export function checkSinkFiles(file: YamlFile | undefined, entries: ReadonlyMap<string, RepoEntry>, errors: ConfigError[]): Set<string> {
  const used = new Set<string>();
  const raws = ((file?.value as { logs?: { sinks?: RawSink[] } } | undefined)?.logs?.sinks ?? []) as RawSink[];
  raws.forEach((s, i) => {
    for (const part of ['ca', 'cert', 'key'] as const) {
      const p = s.tls?.[part];
      if (p === undefined || p.startsWith('/')) continue;
      const at: Path = ['logs', 'sinks', i, 'tls', part];
      const why = repoPemProblem(p, entries);
      if (why) errors.push(file!.error('GLOW_E_SINK_TLS', at, why));
      else used.add(p);
    }
  });
  return used;
}

function repoPemProblem(p: string, entries: ReadonlyMap<string, RepoEntry>): string | undefined {
  if (p.split('/').includes('..') || p.startsWith('./')) return `\`${p}\` must be written as a path under files/, without \`.\` or \`..\``;
  if (!p.startsWith('files/')) return `\`${p}\` is not under files/; a TLS file is a repository path such as \`files/tls/ca.pem\` or an absolute path on the node`;
  const entry = entries.get(p);
  if (!entry) return `there is no file \`${p}\` in the repository`;
  switch (entry.kind) {
    case 'dir':
      return `\`${p}\` is a directory; name the PEM file`;
    case 'outside':
      return `\`${p}\` is a symbolic link that leads out of the repository; copy the file in`;
    case 'unreadable':
      return `\`${p}\` cannot be read${entry.error ? `: ${entry.error}` : ''}`;
    case 'other':
      return `\`${p}\` is not a regular file`;
    default:
      if (!entry.bytes) return `\`${p}\` is ${entry.size} bytes, larger than Glow reads`;
      if (!Buffer.from(entry.bytes).includes('-----BEGIN ')) return `\`${p}\` holds no PEM data (no \`-----BEGIN\` line)`;
      return undefined;
  }
}
