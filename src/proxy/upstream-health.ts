/**
 * The health of one upstream, as a pure state machine with the clock passed in: what active checks say (rise/fall
 * thresholds) and what real traffic says (passive ejection after consecutive failures, for a time that grows
 * with each ejection). The cap on the share of a group that may be ejected is the group's decision
 * (`mayEject`), because the same upstream never belongs to two groups but a group knows its size.
 */

export interface EjectionPolicy {
  /** Consecutive failures of real traffic (connect failures, timeouts, resets before a response) that eject. */
  readonly consecutiveFailures: number;
  /** The first ejection lasts this long; the n-th lasts n times as long, up to `maxEjectionMs`. */
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  /** At most this share of a group is ejected at once (always at least one upstream may be). */
  readonly maxEjectedShare: number;
}

export const DEFAULT_EJECTION: EjectionPolicy = {
  consecutiveFailures: 3,
  baseEjectionMs: 5_000,
  maxEjectionMs: 300_000,
  maxEjectedShare: 0.5,
};

export type HealthTransition = 'up' | 'down' | null;

export class UpstreamHealth {
  /** What active checks say; starts healthy so that a new upstream takes traffic at once. */
  healthy = true;
  /** Consecutive check results against the current state (successes while down, failures while up). */
  private streak = 0;
  private failures = 0;
  private ejectedUntil = 0;
  /** How many ejections in a row without a quiet period: the multiplier of the ejection time. */
  ejections = 0;
  /** Every ejection since this upstream was created (for /status). */
  ejectionsTotal = 0;
  lastCheckError: string | null = null;

  constructor(private readonly policy: EjectionPolicy = DEFAULT_EJECTION) {}

  /** One active check result; returns the transition it caused, if any. */
  check(ok: boolean, rise: number, fall: number, error: string | null = null): HealthTransition {
    this.lastCheckError = ok ? null : error;
    if (ok === this.healthy) {
      this.streak = 0;
      return null;
    }
    this.streak += 1;
    if (this.healthy && this.streak >= fall) {
      this.healthy = false;
      this.streak = 0;
      return 'down';
    }
    if (!this.healthy && this.streak >= rise) {
      this.healthy = true;
      this.streak = 0;
      // A good check ends a passive ejection too: the upstream has proven itself again.
      this.failures = 0;
      return 'up';
    }
    return null;
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }

  ejectedUntilMs(): number {
    return this.ejectedUntil;
  }

  usable(now: number): boolean {
    return this.healthy && this.ejectedUntil <= now;
  }

  /** Real traffic succeeded (a connect, a response). */
  success(now: number): void {
    this.failures = 0;
    // A quiet period as long as the longest ejection forgets past ejections.
    if (this.ejections > 0 && this.ejectedUntil + this.policy.maxEjectionMs <= now) this.ejections = 0;
  }

  /**
   * Real traffic failed. Returns the ejection time in ms when this failure ejected the upstream, else 0.
   * `mayEject` is asked only when the threshold is reached (the group's cap).
   */
  failure(now: number, mayEject: () => boolean): number {
    this.failures += 1;
    if (this.failures < this.policy.consecutiveFailures || this.ejectedUntil > now) return 0;
    if (!mayEject()) return 0;
    this.ejections += 1;
    this.ejectionsTotal += 1;
    this.failures = 0;
    const ms = Math.min(this.policy.baseEjectionMs * this.ejections, this.policy.maxEjectionMs);
    this.ejectedUntil = now + ms;
    return ms;
  }

  /** The cap of a group of `size` upstreams of which `ejected` are ejected now. */
  static mayEject(size: number, ejected: number, policy: EjectionPolicy = DEFAULT_EJECTION): boolean {
    return ejected < Math.max(1, Math.floor(size * policy.maxEjectedShare));
  }
}
