/**
 * The health of one upstream, as a pure state machine with the clock passed in: what active checks say (rise/fall
 * thresholds) and what real traffic says (passive ejection after consecutive failures, for a time that grows
 * with each ejection). The cap on the share of a group that may be ejected is the group's decision
 * (`mayEject`), because the same upstream never belongs to two groups but a group knows its size.
 *
 * Active-check state:
 * - `unknown`: an upstream with an active check starts here, not yet checked. It is not picked while another
 *   upstream of its group is usable (src/proxy/balancer.ts). Its first passing check makes it `up` — and so does
 *   real traffic that succeeded on it (it got some because nothing else was usable: a proxy that just started) —
 *   `fall` failing checks in a row make it `down`.
 * - `up` / `down`: down after `fall` failures in a row, up again after `rise` successes.
 * An upstream without an active check (type `none`) starts `up`: only traffic can speak for it.
 *
 * Passive failures count only once the upstream has answered (a passing check, or real traffic that succeeded):
 * an instance refused before its node has even started it is the active check's to judge, and does not grow
 * its ejection. A passive ejection ends when its time is out, or earlier at the check's rise: `rise` passing checks
 * in a row that started after the ejection did.
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

export type CheckState = 'unknown' | 'up' | 'down';

/** What one active check result changed: `reinstated` is an ejection ended by passing checks. */
export type HealthTransition = 'up' | 'down' | 'reinstated' | null;

export class UpstreamHealth {
  /** What active checks say. */
  state: CheckState;
  /** Consecutive check results against the current state (successes while down, failures while up or unknown). */
  private streak = 0;
  /** Passing checks in a row since the current ejection began (its rise ends it). */
  private passedSinceEjection = 0;
  private failures = 0;
  private ejectedAt = 0;
  private ejectedUntil = 0;
  /** A check passed or real traffic succeeded at least once: passive failures count from then on. */
  answered: boolean;
  /** How many ejections in a row without a quiet period: the multiplier of the ejection time. */
  ejections = 0;
  /** Every ejection since this upstream was created (for /status). */
  ejectionsTotal = 0;
  lastCheckError: string | null = null;

  /** `checked`: the upstream has an active check (it starts `unknown`); without one it starts `up`. */
  constructor(
    private readonly policy: EjectionPolicy = DEFAULT_EJECTION,
    checked = false,
  ) {
    this.state = checked ? 'unknown' : 'up';
    this.answered = !checked;
  }

  /** Healthy by active checks (or without any). */
  get healthy(): boolean {
    return this.state === 'up';
  }

  /** Not yet checked: it waits for its first check while the rest of its group serves. */
  get unknown(): boolean {
    return this.state === 'unknown';
  }

  /**
   * One active check result; returns the transition it caused, if any. `startedAt` is when the check began (a
   * check begun before an ejection does not count towards ending it), `now` when it ended.
   */
  check(ok: boolean, rise: number, fall: number, error: string | null = null, startedAt = 0, now = 0): HealthTransition {
    this.lastCheckError = ok ? null : error;
    if (ok) this.answered = true;
    const reinstated = this.#countTowardsReinstating(ok, rise, startedAt, now);
    if (this.state === 'unknown') {
      if (ok) {
        this.state = 'up';
        this.streak = 0;
        return 'up';
      }
      if (++this.streak >= fall) {
        this.state = 'down';
        this.streak = 0;
        return 'down';
      }
      return null;
    }
    if (ok === this.healthy) {
      this.streak = 0;
      return reinstated ? 'reinstated' : null;
    }
    this.streak += 1;
    if (this.healthy && this.streak >= fall) {
      this.state = 'down';
      this.streak = 0;
      return 'down';
    }
    if (!this.healthy && this.streak >= rise) {
      this.state = 'up';
      this.streak = 0;
      // The upstream has proven itself again: its failures so far are forgotten, its ejection is over.
      this.failures = 0;
      this.ejectedUntil = Math.min(this.ejectedUntil, now);
      return 'up';
    }
    return null;
  }

  #countTowardsReinstating(ok: boolean, rise: number, startedAt: number, now: number): boolean {
    if (this.ejectedUntil <= now) return false;
    if (!ok) {
      this.passedSinceEjection = 0;
      return false;
    }
    if (startedAt < this.ejectedAt) return false;
    if (++this.passedSinceEjection < rise) return false;
    // Ended now (not forgotten: the quiet period that forgets past ejections counts from here).
    this.ejectedUntil = now;
    this.passedSinceEjection = 0;
    this.failures = 0;
    return this.state === 'up';
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }

  ejectedUntilMs(): number {
    return this.ejectedUntil;
  }

  usable(now: number): boolean {
    return this.state === 'up' && this.ejectedUntil <= now;
  }

  /** Real traffic succeeded (a connect, a response). Returns true when that made an unknown upstream up. */
  success(now: number): boolean {
    this.failures = 0;
    this.answered = true;
    const fresh = this.state === 'unknown';
    if (fresh) {
      this.state = 'up';
      this.streak = 0;
    }
    // A quiet period as long as the longest ejection forgets past ejections.
    if (this.ejections > 0 && this.ejectedUntil + this.policy.maxEjectionMs <= now) this.ejections = 0;
    return fresh;
  }

  /**
   * Real traffic failed. Returns the ejection time in ms when this failure ejected the upstream, else 0.
   * `mayEject` is asked only when the threshold is reached (the group's cap). Failures before the upstream ever
   * answered do not count.
   */
  failure(now: number, mayEject: () => boolean): number {
    if (!this.answered) return 0;
    this.failures += 1;
    if (this.failures < this.policy.consecutiveFailures || this.ejectedUntil > now) return 0;
    if (!mayEject()) return 0;
    this.ejections += 1;
    this.ejectionsTotal += 1;
    this.failures = 0;
    const ms = Math.min(this.policy.baseEjectionMs * this.ejections, this.policy.maxEjectionMs);
    this.ejectedAt = now;
    this.ejectedUntil = now + ms;
    this.passedSinceEjection = 0;
    return ms;
  }

  /** The cap of a group of `size` upstreams of which `ejected` are ejected now. */
  static mayEject(size: number, ejected: number, policy: EjectionPolicy = DEFAULT_EJECTION): boolean {
    return ejected < Math.max(1, Math.floor(size * policy.maxEjectedShare));
  }
}
