/**
 * The validated model of a config repository: what the loader yields and every later stage (the node plan, the
 * daemon, the proxy, the log forwarder) reads. Plain data, deeply frozen, no YAML and no file system in it.
 * Durations are milliseconds; ports are numbers; short notations are already expanded.
 */

export type Protocol = 'tcp' | 'udp' | 'http';
export type Runtime = 'podman' | 'exec';
export type Balance = 'least-conn' | 'round-robin';

/** `postgres:5432`: a port of an app or of an external. */
export interface ServiceRef {
  readonly name: string;
  readonly port: number;
}

export interface ProvidedPort {
  readonly port: number;
  readonly protocol: Protocol;
}

/** How the proxy treats one service; unset fields take the cluster defaults of glow.yaml `proxy`. */
export interface ProxyPolicy {
  readonly balance?: Balance;
  readonly connectTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** HTTP: the longest wait for a response once a request is sent (`response_timeout`). */
  readonly responseTimeoutMs?: number;
  readonly retries?: number;
}

/** One `requires` entry: a service reached on 127.0.0.1:`local`. */
export interface Requirement extends ProxyPolicy {
  readonly service: ServiceRef;
  readonly local: number;
  /** The fallbacks written on this entry, in order (usually none or one). */
  readonly fallback: readonly ServiceRef[];
}

export type OnChange = 'reload' | 'restart' | 'none';

export interface ConfigFile {
  /** Path inside the repository, normalised (`files/billing/billing.toml`). */
  readonly source: string;
  /** Absolute path where every instance reads it. */
  readonly path: string;
  readonly onChange: OnChange;
  /** The signal sent on `reload`: SIGHUP unless another one is named. */
  readonly signal: string;
  readonly mode: number;
}

export interface Health {
  /** An HTTP path to GET; absent means a TCP connect. */
  readonly http?: string;
  /** The port to check; absent means every provided port (TCP) or the first http/tcp port (HTTP). */
  readonly port?: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
}

export interface App {
  readonly name: string;
  readonly file: string;
  readonly image: string;
  readonly version: string;
  readonly runtime: Runtime;
  readonly command?: readonly string[];
  readonly digest?: string;
  readonly provides: readonly ProvidedPort[];
  readonly requires: readonly Requirement[];
  readonly tags: readonly string[];
  readonly config: readonly ConfigFile[];
  readonly env: Readonly<Record<string, string>>;
  readonly health?: Health;
  readonly stopTimeoutMs: number;
  readonly sandbox: Sandbox;
}

/**
 * systemd's sandboxing of an exec instance; the defaults are the strict ones, each can be relaxed. (Podman
 * instances are isolated by the container runtime instead.)
 */
export interface Sandbox {
  /** Run as this existing user instead of a dynamic one. */
  readonly user?: string;
  /** Paths the instance may write despite the read-only system. */
  readonly writable: readonly string[];
  /** A persistent state directory (systemd's StateDirectory=glow-<app>, in $STATE_DIRECTORY). */
  readonly state: boolean;
  readonly protectSystem: 'strict' | 'full' | 'off';
  readonly privateTmp: boolean;
  readonly noNewPrivileges: boolean;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface ExternalPort {
  readonly port: number;
  readonly protocol: Protocol;
  readonly addresses: readonly Endpoint[];
}

export interface External {
  readonly name: string;
  readonly file: string;
  readonly ports: readonly ExternalPort[];
  readonly health?: Health;
  readonly tags: readonly string[];
}

export interface Node {
  readonly name: string;
  readonly file: string;
  readonly address: string;
  readonly bind?: string;
  readonly tags: readonly string[];
}

/** A deployment file as written: the instance number may be left out. */
export interface Deployment {
  readonly file: string;
  readonly app: string;
  readonly node: string;
  readonly instance?: number;
}

/** One deployment with its instance number given: one instance of an app on a node. */
export interface Instance {
  readonly app: string;
  readonly node: string;
  readonly instance: number;
  readonly file: string;
}

/** A file an exposure reads: from the repository, or an absolute path on the node. */
export type FileRef = { readonly repo: string } | { readonly node: string };

export interface Exposure {
  readonly name: string;
  readonly file: string;
  readonly service: ServiceRef;
  readonly port: number;
  readonly protocol: Protocol;
  /** The nodes that serve it (from `nodes:` or resolved from `tags:`), sorted. */
  readonly nodes: readonly string[];
  readonly hosts: readonly string[];
  readonly path?: string;
  readonly tls?: { readonly cert: FileRef; readonly key: FileRef };
  /** `redirect_http`: this plain port answers every request for the exposure's hosts with a 308 to https. */
  readonly redirectHttp?: number;
  readonly accessLog: boolean;
  readonly limits: ExposureLimits;
  /** `response_timeout`: this exposure's own (an http exposure), else glow.yaml `proxy`'s. */
  readonly responseTimeoutMs?: number;
}

/** Request size limits of an exposure (431 for a head, 413 for a body over them); bodyBytes 0: none. */
export interface ExposureLimits {
  readonly headBytes: number;
  readonly bodyBytes: number;
}

export type SinkType = 'syslog' | 'loki' | 'http' | 'file';

/** TLS files of a sink: a repository path (its bytes are in Snapshot.files) or an absolute path on the node. */
export interface SinkTls {
  readonly ca?: FileRef;
  readonly cert?: FileRef;
  readonly key?: FileRef;
}

/** A log sink of glow.yaml (`logs.sinks`); see src/config/sinks.ts and src/logs/. */
export interface Sink {
  /** Its identity across edits: the cursor file and the metrics label (`name:`, or derived from type and url/path). */
  readonly name: string;
  readonly type: SinkType;
  readonly url?: string;
  /** file: the path template (`{app}`, `{instance}`, `{node}`). */
  readonly path?: string;
  readonly tls?: SinkTls;
  /** A batch is sent when it holds this many records, or when its first record has waited batchWaitMs. */
  readonly batchSize: number;
  readonly batchWaitMs: number;
}

export interface Settings {
  readonly sinks: readonly Sink[];
  readonly metricsListen: string;
  readonly artifacts?: string;
  readonly proxy: Required<ProxyPolicy>;
  /** `proxy.trusted_proxies`: clients whose X-Forwarded-* headers exposures keep (CIDRs as written). */
  readonly trustedProxies: readonly string[];
  readonly stopGraceMs: number;
}

/** A validated repository. `revision` is a hash of every file read; equal content, equal revision. */
export interface Snapshot {
  readonly revision: string;
  readonly settings: Settings;
  readonly nodes: ReadonlyMap<string, Node>;
  readonly apps: ReadonlyMap<string, App>;
  readonly externals: ReadonlyMap<string, External>;
  /** Every instance, sorted by app then instance number. */
  readonly instances: readonly Instance[];
  readonly exposures: ReadonlyMap<string, Exposure>;
  /** The fallback chain of every service that has one, keyed `name:port`. */
  readonly fallbacks: ReadonlyMap<string, readonly ServiceRef[]>;
  /** The content of every repository file that an app or exposure names (config sources, certificates). */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

export const DEFAULTS = {
  metricsListen: '0.0.0.0:9464',
  proxy: { balance: 'least-conn', connectTimeoutMs: 1000, idleTimeoutMs: 3_600_000, responseTimeoutMs: 30_000, retries: 2 } as Required<ProxyPolicy>,
  stopGraceMs: 5000,
  stopTimeoutMs: 10_000,
  sandbox: { writable: [], state: false, protectSystem: 'strict', privateTmp: true, noNewPrivileges: true } as Sandbox,
  health: { intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 },
  configMode: 0o644,
  exposureLimits: { headBytes: 64 * 1024, bodyBytes: 100 * 1024 * 1024 } as ExposureLimits,
  sink: { batchSize: 1000, batchWaitMs: 250 },
} as const;

export function serviceKey(ref: ServiceRef): string {
  return `${ref.name}:${ref.port}`;
}
