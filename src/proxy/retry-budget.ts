/**
 * The retry budget of one route (Linkerd's shape): over a sliding window, retries may add at most `ratio` of the
 * requests plus a small floor per second, so that a sick service is not hit by a retry storm. Pure; the clock is
 * passed in, in milliseconds.
 */

export interface RetryBudgetOptions {
  /** Extra load allowed: 0.2 = at most 20% more requests than clients sent. */
  readonly ratio: number;
  /** Retries always allowed per second of window, so that a quiet route can still retry. */
  readonly minPerSecond: number;
  readonly windowMs: number;
}

export const DEFAULT_RETRY_BUDGET: RetryBudgetOptions = { ratio: 0.2, minPerSecond: 10, windowMs: 10_000 };

const BUCKETS = 10;

export class RetryBudget {
  private readonly bucketMs: number;
  private readonly stamps = new Float64Array(BUCKETS).fill(-1);
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);

  constructor(private readonly opts: RetryBudgetOptions = DEFAULT_RETRY_BUDGET) {
    this.bucketMs = opts.windowMs / BUCKETS;
  }

  private bucket(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    const i = epoch % BUCKETS;
    if (this.stamps[i] !== epoch) {
      this.stamps[i] = epoch;
      this.requests[i] = 0;
      this.retries[i] = 0;
    }
    return i;
  }

  /** A client request (not a retry) was sent. */
  request(now: number): void {
    this.requests[this.bucket(now)]! += 1;
  }

  /** Takes one retry from the budget if there is one left. */
  tryRetry(now: number): boolean {
    const current = this.bucket(now);
    const oldest = Math.floor(now / this.bucketMs) - BUCKETS + 1;
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.stamps[i]! < oldest) continue;
      requests += this.requests[i]!;
      retries += this.retries[i]!;
    }
    const allowed = this.opts.ratio * requests + (this.opts.minPerSecond * this.opts.windowMs) / 1000;
    if (retries + 1 > allowed) return false;
    this.retries[current]! += 1;
    return true;
  }
}
