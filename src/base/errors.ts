/**
 * Errors as data: one base class for every error Glow throws, with a registered, stable `code`
 * (src/base/codes.ts), structured fields and `cause`. An error that is not Glow's own (an errno of the file
 * system, a library's) is mapped to a Glow code with asGlowError(), keeping its errno as a field, so that what
 * `glow status` shows is always a Glow code.
 */
import type { GlowCode } from './codes.js';
import { isGlowCode } from './codes.js';

export class GlowError extends Error {
  readonly code: GlowCode;
  /** The system's error code underneath (`EACCES`, `ENOENT`), when there is one. */
  readonly errno: string | undefined;

  constructor(code: GlowCode, message: string, options?: { cause?: unknown; errno?: string }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'GlowError';
    this.code = code;
    this.errno = options?.errno ?? errnoOf(options?.cause);
  }
}

/** The errno of a Node error (`EACCES`), if it has one. */
export function errnoOf(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Any thrown value as a GlowError: Glow's own as it is, anything else under `code` with its errno kept. */
export function asGlowError(e: unknown, code: GlowCode): GlowError {
  if (e instanceof GlowError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const own = (e as { code?: unknown } | undefined)?.code;
  if (isGlowCode(own)) return new GlowError(own, message, { cause: e });
  return new GlowError(code, message, { cause: e });
}
