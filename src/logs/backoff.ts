/**
 * Retry delays and what an answer of a sink means, pure.
 *
 * Delays grow exponentially with "equal jitter": half of the capped exponential step, plus a random share of the
 * other half, so that nodes whose sink came back at the same moment do not retry in step, and no retry comes
 * sooner than half the step.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 250, maxMs: 15_000 };

/** The wait before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(step / 2 + random() * (step / 2));
}

/**
 * What an HTTP status means for a batch: `ok` (acknowledged), `split` (413: too large, send it in halves),
 * `retry` (408, 429, 5xx and anything unexpected: the sink may take it later), `reject` (any other 4xx: the sink
 * will never take this batch; it is reported and skipped, never retried forever).
 */
export type Verdict = 'ok' | 'split' | 'retry' | 'reject';

export function classifyStatus(status: number): Verdict {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 413) return 'split';
  if (status === 408 || status === 429) return 'retry';
  if (status >= 400 && status < 500) return 'reject';
  return 'retry';
}

/** A Retry-After header (seconds or an HTTP date) in milliseconds from now, capped; undefined when absent or bad. */
export function retryAfterMs(header: string | undefined, nowMs: number, capMs: number): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const h = header.trim();
  let ms: number;
  if (/^[0-9]+$/.test(h)) ms = Number(h) * 1000;
  else {
    const at = Date.parse(h);
    if (Number.isNaN(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.max(0, Math.min(capMs, ms));
}
