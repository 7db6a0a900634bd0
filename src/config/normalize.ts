/**
 * From a schema-valid YAML value to a model entity, one function per kind: short notations expanded, defaults
 * filled in, durations in milliseconds. Problems that the schema cannot see (a port out of range inside
 * `postgres:5432 -> 99999`, an exec app without a command) are reported with their positions.
 */
import type { ConfigError } from './errors.js';
import { DEFAULTS } from './model.js';
import type {
  App,
  ConfigFile,
  Deployment,
  Endpoint,
  Exposure,
  ExposureLimits,
  External,
  ExternalPort,
  FileRef,
  Health,
  Node,
  OnChange,
  Protocol,
  ProvidedPort,
  ProxyPolicy,
  Requirement,
  ServiceRef,
  Settings,
  Sink,
} from './model.js';
import { parseCidr, parseDuration, parseEndpoint, parsePort, parseProvidedPort, parseRequireShort, parseServiceRef, parseSize } from './notation.js';
import type { Parsed } from './notation.js';
import { normalizeSinks } from './sinks.js';
import type { RawSink } from './sinks.js';
import type { Path, YamlFile } from './yaml.js';

type Duration = string | number;
interface RawPolicy {
  balance?: 'least-conn' | 'round-robin';
  connect_timeout?: Duration;
  idle_timeout?: Duration;
  response_timeout?: Duration;
  retries?: number;
}
interface RawHealth {
  http?: string;
  port?: number;
  interval?: Duration;
  timeout?: Duration;
  rise?: number;
  fall?: number;
}
interface RawConfigFile {
  source: string;
  path: string;
  on_change?: string;
  mode?: string;
}
interface RawApp {
  image?: string;
  version: string;
  runtime?: 'podman' | 'exec';
  command?: string | string[];
  digest?: string;
  provides?: (string | number | { port: number; protocol?: Protocol })[];
  requires?: (string | (RawPolicy & { service: string; port?: number; fallback?: string | string[] }))[];
  tags?: string[];
  config?: RawConfigFile | RawConfigFile[];
  env?: Record<string, string | number | boolean>;
  health?: RawHealth;
  stop_timeout?: Duration;
  sandbox?: { user?: string; writable?: string[]; state?: boolean; protect_system?: 'strict' | 'full' | 'off'; private_tmp?: boolean; no_new_privileges?: boolean };
}
interface RawExternal {
  endpoints: Record<string, string[] | { protocol?: Protocol; addresses: string[] }>;
  health?: RawHealth;
  tags?: string[];
}
interface RawNode {
  address: string;
  bind?: string;
  tags?: string[];
}
interface RawDeployment {
  app: string;
  node: string;
  instance?: number;
}
interface RawExposure {
  service: string;
  port: number;
  nodes?: string[];
  tags?: string[];
  host?: string | string[];
  path?: string;
  tls?: { cert: string; key: string };
  access_log?: boolean;
  redirect_http?: boolean | number;
  limits?: { head?: string | number; body?: string | number };
  response_timeout?: Duration;
}
interface RawSettings {
  logs?: { sinks?: RawSink[] };
  metrics?: { listen?: string };
  artifacts?: string;
  proxy?: RawPolicy & { trusted_proxies?: string[] };
  stop_grace?: Duration;
}

/** Collects errors while normalising one file. */
class Normalizer {
  constructor(
    readonly file: YamlFile,
    readonly errors: ConfigError[],
  ) {}

  get raw(): unknown {
    return this.file.value;
  }

  take<T>(parsed: Parsed<T>, path: Path, part: 'key' | 'value' = 'value'): T | undefined {
    if (parsed.ok) return parsed.value;
    this.errors.push(this.file.error(parsed.range ? 'GLOW_E_PORT_RANGE' : 'GLOW_E_VALUE_INVALID', path, parsed.why, part));
    return undefined;
  }
}

function policy(raw: RawPolicy): ProxyPolicy {
  const out: { -readonly [K in keyof ProxyPolicy]: ProxyPolicy[K] } = {};
  if (raw.balance !== undefined) out.balance = raw.balance;
  if (raw.connect_timeout !== undefined) out.connectTimeoutMs = parseDuration(raw.connect_timeout);
  if (raw.idle_timeout !== undefined) out.idleTimeoutMs = parseDuration(raw.idle_timeout);
  if (raw.response_timeout !== undefined) out.responseTimeoutMs = parseDuration(raw.response_timeout);
  if (raw.retries !== undefined) out.retries = raw.retries;
  return out;
}

function health(raw: RawHealth | undefined): Health | undefined {
  if (!raw) return undefined;
  const d = DEFAULTS.health;
  return {
    ...(raw.http !== undefined ? { http: raw.http } : {}),
    ...(raw.port !== undefined ? { port: raw.port } : {}),
    intervalMs: raw.interval !== undefined ? parseDuration(raw.interval) : d.intervalMs,
    timeoutMs: raw.timeout !== undefined ? parseDuration(raw.timeout) : d.timeoutMs,
    rise: raw.rise ?? d.rise,
    fall: raw.fall ?? d.fall,
  };
}

export function normalizeApp(name: string, file: YamlFile, errors: ConfigError[]): App | undefined {
  const n = new Normalizer(file, errors);
  const raw = n.raw as RawApp;
  const before = errors.length;
  const runtime = raw.runtime ?? 'podman';
  if (raw.image === undefined) {
    errors.push(
      file.error(
        'GLOW_E_RUNTIME_INVALID',
        [],
        runtime === 'exec'
          ? 'this app names no `image`: for the exec runtime, `image` is the artifact name (<artifacts>/<image>/<version>.tar.gz)'
          : 'this app names no `image`: set `image` to an OCI image (runtime podman) or an artifact name with `runtime: exec`',
      ),
    );
  }
  const command = raw.command === undefined ? undefined : typeof raw.command === 'string' ? raw.command.split(/\s+/).filter(Boolean) : raw.command;
  if (runtime === 'exec' && command === undefined) {
    errors.push(
      file.error('GLOW_E_RUNTIME_INVALID', ['runtime'], 'an exec app needs `command`: the program to run, relative to the unpacked artifact (such as `["bin/billing"]`)'),
    );
  }
  const provides: ProvidedPort[] = [];
  (raw.provides ?? []).forEach((p, i) => {
    const v = n.take(parseProvidedPort(p), ['provides', i]);
    if (!v) return;
    const dup = provides.find((q) => q.port === v.port && (q.protocol === 'udp') === (v.protocol === 'udp'));
    if (dup) {
      errors.push(file.error('GLOW_E_PORT_CONFLICT', ['provides', i], `port ${v.port} is provided twice; list each port once`));
      return;
    }
    provides.push(v);
  });
  const requires: Requirement[] = [];
  (raw.requires ?? []).forEach((r, i) => {
    const at: Path = ['requires', i];
    if (typeof r === 'string') {
      const v = n.take(parseRequireShort(r), at);
      if (v) requires.push({ service: v.service, local: v.local, fallback: [] });
      return;
    }
    const service = n.take(parseServiceRef(r.service), [...at, 'service']);
    const fallbacks = r.fallback === undefined ? [] : typeof r.fallback === 'string' ? [r.fallback] : r.fallback;
    const fallback: ServiceRef[] = [];
    fallbacks.forEach((f, j) => {
      const v = n.take(parseServiceRef(f), typeof r.fallback === 'string' ? [...at, 'fallback'] : [...at, 'fallback', j]);
      if (v) fallback.push(v);
    });
    const { service: _s, port: _p, fallback: _f, ...rawPolicy } = r;
    if (service) requires.push({ service, local: r.port ?? service.port, fallback, ...policy(rawPolicy) });
  });
  const configs = raw.config === undefined ? [] : Array.isArray(raw.config) ? raw.config : [raw.config];
  const config: ConfigFile[] = configs.map((c) => {
    const change = c.on_change ?? 'restart';
    const onChange: OnChange = change.startsWith('SIG') ? 'reload' : (change as OnChange);
    return {
      source: c.source,
      path: c.path,
      onChange,
      signal: change.startsWith('SIG') ? change : 'SIGHUP',
      mode: c.mode !== undefined ? parseInt(c.mode, 8) : DEFAULTS.configMode,
    };
  });
  const h = health(raw.health);
  if (errors.length > before) return undefined;
  return {
    name,
    file: file.file,
    image: raw.image!,
    version: raw.version,
    runtime,
    ...(command ? { command } : {}),
    ...(raw.digest ? { digest: raw.digest } : {}),
    provides,
    requires,
    tags: raw.tags ?? [],
    config,
    // Numbers as written (`1.50`, not 1.5; `0x1F`, not 31): the app reads the text the operator wrote.
    env: Object.fromEntries(Object.entries(raw.env ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : (file.writtenNumber(['env', k]) ?? String(v))])),
    ...(h ? { health: h } : {}),
    stopTimeoutMs: raw.stop_timeout !== undefined ? parseDuration(raw.stop_timeout) : DEFAULTS.stopTimeoutMs,
    sandbox: {
      ...(raw.sandbox?.user !== undefined ? { user: raw.sandbox.user } : {}),
      writable: raw.sandbox?.writable ?? DEFAULTS.sandbox.writable,
      state: raw.sandbox?.state ?? DEFAULTS.sandbox.state,
      protectSystem: raw.sandbox?.protect_system ?? DEFAULTS.sandbox.protectSystem,
      privateTmp: raw.sandbox?.private_tmp ?? DEFAULTS.sandbox.privateTmp,
      noNewPrivileges: raw.sandbox?.no_new_privileges ?? DEFAULTS.sandbox.noNewPrivileges,
    },
  };
}

export function normalizeExternal(name: string, file: YamlFile, errors: ConfigError[]): External | undefined {
  const n = new Normalizer(file, errors);
  const raw = n.raw as RawExternal;
  const before = errors.length;
  const ports: ExternalPort[] = [];
  for (const [key, spec] of Object.entries(raw.endpoints)) {
    const at: Path = ['endpoints', key];
    if (!/^[0-9]+$/.test(key)) {
      errors.push(file.error('GLOW_E_VALUE_INVALID', at, `endpoints are keyed by port number, such as \`5432:\`; \`${key}\` is not a port`, 'key'));
      continue;
    }
    const port = n.take(parsePort(key), at, 'key');
    const list = Array.isArray(spec) ? spec : spec.addresses;
    const listPath: Path = Array.isArray(spec) ? at : [...at, 'addresses'];
    const addresses: Endpoint[] = [];
    list.forEach((a, i) => {
      const e = n.take(parseEndpoint(a), [...listPath, i]);
      if (e) addresses.push(e);
    });
    if (port !== undefined) ports.push({ port, protocol: Array.isArray(spec) ? 'tcp' : (spec.protocol ?? 'tcp'), addresses });
  }
  const h = health(raw.health);
  if (errors.length > before) return undefined;
  return { name, file: file.file, ports: ports.sort((a, b) => a.port - b.port), ...(h ? { health: h } : {}), tags: raw.tags ?? [] };
}

export function normalizeNode(name: string, file: YamlFile): Node {
  const raw = file.value as RawNode;
  return { name, file: file.file, address: raw.address, ...(raw.bind ? { bind: raw.bind } : {}), tags: raw.tags ?? [] };
}

export function normalizeDeployment(file: YamlFile): Deployment {
  const raw = file.value as RawDeployment;
  return { file: file.file, app: raw.app, node: raw.node, ...(raw.instance !== undefined ? { instance: raw.instance } : {}) };
}

/** An exposure before its nodes and protocol are resolved against the rest of the repository. */
export type ExposureDraft = Omit<Exposure, 'nodes' | 'protocol'> & { readonly nodeNames: readonly string[]; readonly nodeTags: readonly string[] };

export function normalizeExposure(name: string, file: YamlFile, errors: ConfigError[]): ExposureDraft | undefined {
  const n = new Normalizer(file, errors);
  const raw = n.raw as RawExposure;
  const before = errors.length;
  const service = n.take(parseServiceRef(raw.service), ['service']);
  if (raw.nodes === undefined && raw.tags === undefined) {
    errors.push(file.error('GLOW_E_KEY_MISSING', [], 'this exposure needs `nodes` (a list of node names) or `tags` (nodes with any of these tags)'));
  }
  const fileRef = (p: string): FileRef => (p.startsWith('/') ? { node: p } : { repo: p });
  const limits = exposureLimits(raw.limits, file, errors);
  if (errors.length > before || !service) return undefined;
  return {
    name,
    file: file.file,
    service,
    port: raw.port,
    nodeNames: raw.nodes ?? [],
    nodeTags: raw.tags ?? [],
    hosts: raw.host === undefined ? [] : typeof raw.host === 'string' ? [raw.host] : raw.host,
    ...(raw.path !== undefined ? { path: raw.path } : {}),
    ...(raw.tls ? { tls: { cert: fileRef(raw.tls.cert), key: fileRef(raw.tls.key) } } : {}),
    ...(raw.redirect_http !== undefined && raw.redirect_http !== false ? { redirectHttp: raw.redirect_http === true ? 80 : raw.redirect_http } : {}),
    accessLog: raw.access_log ?? false,
    limits,
    ...(raw.response_timeout !== undefined ? { responseTimeoutMs: parseDuration(raw.response_timeout) } : {}),
  };
}

/** `limits: { head, body }` with the defaults; a head limit outside 1 KiB–1 MiB is refused. */
function exposureLimits(raw: RawExposure['limits'], file: YamlFile, errors: ConfigError[]): ExposureLimits {
  const d = DEFAULTS.exposureLimits;
  const headBytes = raw?.head !== undefined ? parseSize(raw.head) : d.headBytes;
  if (headBytes < 1024 || headBytes > 1024 * 1024) {
    errors.push(file.error('GLOW_E_VALUE_INVALID', ['limits', 'head'], `a head limit of ${headBytes} bytes is outside 1KiB–1MiB`));
  }
  const bodyBytes = raw?.body === undefined ? d.bodyBytes : raw.body === 'none' ? 0 : parseSize(raw.body);
  return { headBytes, bodyBytes };
}

/** `proxy.trusted_proxies`: each an address or a network. */
function trustedProxies(file: YamlFile | undefined, raws: readonly string[], errors: ConfigError[]): string[] {
  const out: string[] = [];
  raws.forEach((c, i) => {
    const parsed = parseCidr(c);
    if (parsed.ok) out.push(c.trim());
    else if (file) errors.push(file.error('GLOW_E_VALUE_INVALID', ['proxy', 'trusted_proxies', i], parsed.why));
  });
  return out;
}

export function normalizeSettings(file: YamlFile | undefined, errors: ConfigError[]): Settings {
  const raw = (file?.value ?? {}) as RawSettings;
  const sinks: Sink[] = [];
  sinks.push(...normalizeSinks(file, raw.logs?.sinks ?? [], errors));
  return {
    sinks,
    metricsListen: raw.metrics?.listen ?? DEFAULTS.metricsListen,
    ...(raw.artifacts !== undefined ? { artifacts: raw.artifacts } : {}),
    proxy: { ...DEFAULTS.proxy, ...policy(raw.proxy ?? {}) },
    trustedProxies: trustedProxies(file, raw.proxy?.trusted_proxies ?? [], errors),
    stopGraceMs: raw.stop_grace !== undefined ? parseDuration(raw.stop_grace) : DEFAULTS.stopGraceMs,
  };
}
