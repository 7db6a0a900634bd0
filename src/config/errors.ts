/**
 * Errors as data. Every failure Glow reports has a stable `code`; configuration errors also carry the
 * `file:line:col` they point at and one plain sentence. Validation collects them instead of throwing, so that a
 * repository with five mistakes is reported in one pass.
 *
 * The codes are CONFIG_CODES of the one registry (src/base/codes.ts); docs/errors.md documents each one with a fix,
 * and a test keeps the two in step.
 */
import type { ConfigCode } from '../base/codes.js';
import { GlowError } from '../base/errors.js';

export type { ConfigCode } from '../base/codes.js';

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
