/**
 * Errors as data. Every failure Glow reports has a stable `code`; configuration errors also carry the
 * `file:line:col` they point at and one plain sentence. Validation collects them instead of throwing, so that a
 * repository with five mistakes is reported in one pass.
 *
 * The table below is the source of truth for the codes; docs/errors.md documents each one with a fix, and a test
 * keeps the two in step.
 */

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

export type ConfigCode = keyof typeof CONFIG_CODES;

/** One base class for every error Glow throws; `code` is stable and documented. */
export class GlowError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GlowError';
    this.code = code;
  }
}

export interface Position {
  line: number; // 1-based
  col: number; // 1-based
}

/** A problem in the config repository: where, what (stable code) and one sentence for a tired operator. */
export class ConfigError extends GlowError {
  declare readonly code: ConfigCode;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The source line the error points at, for an excerpt; absent for binary or unreadable files. */
  readonly source: string | undefined;

  constructor(code: ConfigCode, file: string, at: Position, message: string, source?: string) {
    super(code, message);
    this.name = 'ConfigError';
    this.file = file;
    this.line = at.line;
    this.col = at.col;
    this.source = source;
  }

  /** `file:line:col CODE sentence`, the form every tool prints. */
  override toString(): string {
    return `${this.file}:${this.line}:${this.col} ${this.code} ${this.message}`;
  }

  toJSON(): { file: string; line: number; col: number; code: ConfigCode; message: string } {
    return { file: this.file, line: this.line, col: this.col, code: this.code, message: this.message };
  }
}

/** Errors sorted the way they read best: by file, then line, then column, then code. */
export function sortErrors(errors: readonly ConfigError[]): ConfigError[] {
  return [...errors].sort(
    (a, b) =>
      (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) ||
      a.line - b.line ||
      a.col - b.col ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}
