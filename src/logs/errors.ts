/**
 * Errors of log forwarding, with stable codes (documented in docs/operations.md, "Logs"):
 *
 * - GLOW_E_LOG_SEND      a batch could not be delivered (connection refused, timeout, 5xx, 429…); retried
 * - GLOW_E_LOG_REJECTED  the sink refused a batch for good (a 4xx other than 408/429); reported and skipped
 * - GLOW_E_LOG_SINK_START the sink cannot start (its file's directory cannot be made…); retried
 * - GLOW_E_SINK_TLS      (a config code) a TLS file on the node cannot be read or used; retried
 * - GLOW_E_LOG_JOURNAL   journalctl failed or ended; restarted from the last record read
 * - GLOW_E_LOG_CURSOR    the stored cursor cannot be read, written or used
 */
import { GlowError } from '../base/errors.js';
import type { Verdict } from './backoff.js';

/** A failed delivery: `verdict` says what to do with the batch. */
export class SendError extends GlowError {
  readonly verdict: Exclude<Verdict, 'ok'>;
  /** The sink asked for this wait (Retry-After). */
  readonly retryAfterMs: number | undefined;

  constructor(verdict: Exclude<Verdict, 'ok'>, message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(verdict === 'retry' ? 'GLOW_E_LOG_SEND' : 'GLOW_E_LOG_REJECTED', message, options);
    this.name = 'SendError';
    this.verdict = verdict;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** Any error of a send as a SendError: unknown ones are retried. */
export function asSendError(e: unknown): SendError {
  if (e instanceof SendError) return e;
  const err = e as NodeJS.ErrnoException;
  return new SendError('retry', `${err?.code ? `${err.code}: ` : ''}${err?.message ?? String(e)}`, { cause: e });
}
