/**
 * Every error code Glow reports, one table per area: the one registry. A `GlowError` can only be made with a code
 * of these tables (the type says so), docs/errors.md documents each one with its fix, and a test keeps the two in
 * step both ways (test/base/errors.test.ts).
 *
 * A code is stable: tools and operators match on it. The sentence beside it says, in short, what it means.
 */

/** The config repository: every one is reported as `file:line:col CODE sentence` (src/config/). */
export const CONFIG_CODES = {
  GLOW_E_REPO_MISSING: 'the repository directory does not exist or is not a directory',
  GLOW_E_REPO_EMPTY: 'the repository holds no nodes, apps, externals, deployments or exposures',
  GLOW_E_FILE_UNREADABLE: 'a file could not be read',
  GLOW_E_FILE_UNEXPECTED: 'a file or directory is where Glow expects none',
  GLOW_E_FILE_TOO_LARGE: 'a file is larger than Glow accepts',
  GLOW_E_FILE_NOT_UTF8: 'a YAML file holds bytes that are not UTF-8',
  GLOW_E_FILE_EMPTY: 'a YAML file holds no document',
  GLOW_E_FILE_OUTSIDE: 'a symbolic link leads out of the repository',
  GLOW_E_YAML_SYNTAX: 'the YAML cannot be parsed',
  GLOW_E_YAML_DUPLICATE_KEY: 'a mapping names the same key twice',
  GLOW_E_YAML_ALIAS: 'YAML aliases expand to too much data',
  GLOW_E_NOT_MAPPING: 'the top level of a file is not a mapping',
  GLOW_E_KEY_UNKNOWN: 'a key that Glow does not know',
  GLOW_E_KEY_MISSING: 'a required key is absent',
  GLOW_E_TYPE: 'a value has the wrong type',
  GLOW_E_VALUE_INVALID: 'a value is not one of those allowed or not in the expected form',
  GLOW_E_NAME_INVALID: 'a name is not a lower-case DNS label',
  GLOW_E_NAME_CONFLICT: 'an app and an external have the same name',
  GLOW_E_PORT_RANGE: 'a port is outside 1–65535',
  GLOW_E_REF_UNKNOWN: 'a reference names an app, external or node that does not exist',
  GLOW_E_PORT_UNKNOWN: 'a reference names a port that the service does not provide',
  GLOW_E_PROTOCOL_MISMATCH: 'two things that must speak the same protocol do not',
  GLOW_E_RUNTIME_INVALID: 'an app cannot be run: no image, or a runtime without what it needs',
  GLOW_E_INSTANCE_DUPLICATE: 'two deployments are the same instance',
  GLOW_E_PORT_CONFLICT: 'two instances on one node would bind the same port',
  GLOW_E_LOCAL_PORT_CONFLICT: 'one local port on a node is mapped to two different services',
  GLOW_E_LOCAL_PORT_TAKEN: 'a local port is a port that an instance or exposure on the node binds',
  GLOW_E_EXPOSURE_CONFLICT: 'two exposures on one node use the same port',
  GLOW_E_SOURCE_MISSING: 'a file named by a config source or a certificate does not exist in the repository',
  GLOW_E_SOURCE_OUTSIDE: 'a config source or certificate lies outside files/ or outside the repository',
  GLOW_E_SOURCE_DIRECTORY: 'a config source or certificate is a directory',
  GLOW_E_CONFIG_PATH_INVALID: 'a config path is not an absolute path where an app may read a file',
  GLOW_E_CONFIG_PATH_CONFLICT: 'two config files of one app go to the same path',
  GLOW_E_FALLBACK_LOOP: 'fallbacks form a loop',
  GLOW_E_FALLBACK_CONFLICT: 'one service is given two different fallbacks',
  GLOW_E_TLS_CERT: 'an exposure\'s certificate file holds no PEM certificate',
  GLOW_E_TLS_KEY: 'an exposure\'s key file holds no unencrypted PEM private key',
  GLOW_E_TLS_MISMATCH: 'an exposure\'s key does not belong to its certificate',
  GLOW_E_TLS_HOST: 'an exposure\'s certificate does not cover one of its hosts',
  GLOW_E_SINK_TYPE: 'a log sink of a type Glow does not know',
  GLOW_E_SINK_URL: 'a log sink URL that its type cannot send to',
  GLOW_E_SINK_TLS: 'the TLS settings or files of a log sink are wrong or cannot be read',
  GLOW_E_SINK_DUPLICATE: 'two log sinks have the same name',
} as const;

/** The node's proxy (src/proxy/): its log, its `/status` and its exit message. */
export const PROXY_CODES = {
  GLOW_E_PROXY_ROUTES_UNREADABLE: 'the routes file could not be read',
  GLOW_E_PROXY_ROUTES_INVALID: 'the routes file is not JSON of the shape glowd writes (version 1)',
  GLOW_E_PROXY_BIND: 'a listener could not bind its address',
  GLOW_E_PROXY_ADMIN: 'the admin socket could not be opened',
  GLOW_E_PROXY_HTTP_HEAD: 'an HTTP request or response head is malformed or too large (answered 400, 431 or 502)',
  GLOW_E_PROXY_TLS: "an exposure's certificate or key on the node cannot be read or used; the previous pair, if any, serves",
  GLOW_E_PROXY_GROUP: 'the group that may read delivered TLS keys does not exist and cannot be created',
  GLOW_E_PROXY_DATA_PATH: 'GLOW_PROXY_DATA_PATH asks for a data path this proxy cannot run (native without the built addon, or an unknown value)',
} as const;

/** exec artifacts: fetched, verified and unpacked once (src/shell/artifacts/). */
export const ARTIFACT_CODES = {
  GLOW_E_ARTIFACT_SOURCE: 'an exec app is to run but glow.yaml names no `artifacts`',
  GLOW_E_ARTIFACT_FETCH:
    'an artifact could not be downloaded or read: an HTTP status other than 200, a connection error, a timeout, a read error',
  GLOW_E_ARTIFACT_MISSING: 'the artifact directory holds neither <image>/<version>.tar.gz nor <image>/<version>/',
  GLOW_E_ARTIFACT_DIGEST: "an artifact's sha256 is not the app's `digest`, or the digest cannot be checked (unpacked directory source)",
  GLOW_E_ARTIFACT_UNPACK:
    'an artifact could not be unpacked: not a tar.gz, a damaged or unsupported archive, an entry or link leading out of it, too many entries, or no room',
  GLOW_E_ARTIFACT_NAME:
    'an image or version cannot name an artifact: it would lead out of the artifact store, or shares its directory with another image',
  GLOW_E_ARTIFACT_LAYOUT:
    "a tarball holds its build directory instead of its content: the app's command is not at its root but inside its one top-level directory",
} as const;

/** Log forwarding (src/logs/): in `glow status`, the log and the metrics of each sink. */
export const LOG_CODES = {
  GLOW_E_LOG_SEND: 'a batch could not be delivered (connection refused, timeout, 5xx, 429…); it is retried',
  GLOW_E_LOG_REJECTED: 'the sink refused a batch for good (a 4xx other than 408/429); it is reported and skipped',
  GLOW_E_LOG_SINK_START: "the sink cannot start (its file's directory cannot be made…); it is retried",
  GLOW_E_LOG_JOURNAL: 'journalctl failed or ended; it is restarted from the last record read',
  GLOW_E_LOG_CURSOR: 'the stored journal cursor cannot be read, written or used',
  GLOW_E_LOGS_USAGE: '`glow logs` was given an argument it cannot use',
  GLOW_E_LOGS_APP_UNKNOWN: '`glow logs APP` under `glow up`: the box has no lines of APP and runs none of it (no such app, no deployment, or --except)',
} as const;

/** The node agent on systemd (src/systemd/): in its log and in `glow status`. */
export const AGENT_CODES = {
  GLOW_E_NODE_UNKNOWN: 'the repository has no node of this name (glowd --node, glow plan --node)',
  GLOW_E_SYSTEMD_CONNECT: "systemd's D-Bus cannot be reached",
  GLOW_E_SYSTEMD_JOB: 'systemd refused or failed a job (start, stop, restart, reload) of a unit',
  GLOW_E_ROLLOUT_UNHEALTHY: 'an instance did not become healthy after a rolling restart; the roll-out stopped there',
  GLOW_E_SIGNAL_UNKNOWN: 'an `on_change` signal that this system does not know',
  GLOW_E_COMMAND: 'a command glowd runs (podman kill, systemd-sysusers) failed',
  GLOW_E_APPLY: 'a step of a pass failed for a reason of the system (a file that cannot be written, …); the errno is kept',
} as const;

/** The developer box (src/box/, `glow up`, `glow dev`). */
export const BOX_CODES = {
  GLOW_E_DEVBOX_RUNNING: 'another `glow up` of this user runs already',
  GLOW_E_DEVBOX_METRICS: 'the metrics endpoint of the box cannot listen where it should',
  GLOW_E_DEVBOX_PATH: 'a config file cannot be written at its path on this machine',
  GLOW_E_DEVBOX_APP_UNKNOWN: '`glow dev APP` or `glow up --except APP` names an app the repository lacks',
} as const;

/** The control sockets of glowd and `glow up` (`glow status`, `glow plan` on a node). */
export const CONTROL_CODES = {
  GLOW_E_CONTROL_UNREACHABLE: 'nothing answers on the control socket: glowd (or glow up) does not run here',
  GLOW_E_CONTROL_DENIED: 'the control socket may be used by root only',
  GLOW_E_CONTROL_TIMEOUT: 'the control socket did not answer in time',
  GLOW_E_CLUSTER_UNREACHABLE:
    '(`glow status --cluster`) a node did not answer GET /status on its metrics listener in time, refused the connection, or answered something that is not its status',
} as const;

/** The command line itself. */
export const CLI_CODES = {
  GLOW_E_USAGE: 'a command was given a flag or argument it does not take, or a flag without its value',
  GLOW_E_INTERNAL: 'an error Glow did not expect: a bug (the stack trace says where; please report it)',
} as const;

/** `glow sync` (src/sync/): on its stderr, in its exit status 1, and in its state file (`sync/state.json`). */
export const SYNC_CODES = {
  GLOW_E_SYNC_USAGE: 'a flag or a key of sync.env is missing, unknown or has a value `glow sync` cannot use',
  GLOW_E_SYNC_REPO_NOT_LINK: 'the repository path is a directory or a file, not the symbolic link `glow sync` switches',
  GLOW_E_SYNC_BUSY: 'another `glow sync` of this repository still held the lock when the wait ended',
  GLOW_E_SYNC_FETCH: 'git could not fetch the ref from the source (unreachable, refused, no such ref, timeout)',
  GLOW_E_SYNC_SOURCE: 'the directory source cannot be snapshotted (missing, unreadable, a special file, changing throughout)',
  GLOW_E_SYNC_VERIFY: 'the commit is not signed by an allowed signer; it is not published',
  GLOW_E_SYNC_WRITE: 'the new revision, the link or the state could not be written (disk full, permissions, git archive)',
  GLOW_E_SYNC_STATE: 'the state file of `glow sync` cannot be read or is not of the shape it writes',
} as const;

export const CODES = {
  ...CONFIG_CODES,
  ...PROXY_CODES,
  ...ARTIFACT_CODES,
  ...LOG_CODES,
  ...AGENT_CODES,
  ...BOX_CODES,
  ...CONTROL_CODES,
  ...CLI_CODES,
  ...SYNC_CODES,
} as const;

/** The areas, for docs/errors.md's sections. */
export const AREAS = {
  config: CONFIG_CODES,
  proxy: PROXY_CODES,
  artifacts: ARTIFACT_CODES,
  logs: LOG_CODES,
  agent: AGENT_CODES,
  box: BOX_CODES,
  control: CONTROL_CODES,
  cli: CLI_CODES,
  sync: SYNC_CODES,
} as const;

export type ConfigCode = keyof typeof CONFIG_CODES;
export type ProxyCode = keyof typeof PROXY_CODES;
export type ArtifactCode = keyof typeof ARTIFACT_CODES;
export type LogCode = keyof typeof LOG_CODES;
export type SyncCode = keyof typeof SYNC_CODES;
export type GlowCode = keyof typeof CODES;

export function isGlowCode(code: unknown): code is GlowCode {
  return typeof code === 'string' && Object.hasOwn(CODES, code);
}
