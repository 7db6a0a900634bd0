/**
 * Choosing an upstream for a new connection (or an HTTP request): pure, allocation-free apart from the result.
 *
 * The groups of a route are tried in order (the service, then its fallbacks). Within a group:
 * - candidates are the upstreams that active checks call healthy and that are not passively ejected, minus
 *   those this connection already tried;
 * - instances on this node (`local`) are preferred strictly: a remote one is chosen only when no local one is a
 *   candidate;
 * - least-conn takes the candidate with the fewest active connections, round-robin the next in turn; ties and
 *   turns start at a rotating offset so that equal upstreams share the load.
 * The first group with a candidate serves. Upstreams not yet checked (`unknown`: new, or re-added, waiting for their
 * first active check) are candidates only in a group where nothing is usable: a new instance gets traffic once
 * its check passes while the others serve, and a proxy that just started (everything unknown) serves at once.
 * Failing open (the panic threshold):
 * - the last group of the chain (no fallback left to prefer) is in panic when some but fewer than `panicShare`
 *   of its checked upstreams are usable: then every checked upstream of it that is not ejected is a candidate, so
 *   that a few survivors are not overloaded and health checks that are wrong do not turn into refusals;
 * - when no group has a candidate at all, every untried upstream of the chain is a candidate, in chain order,
 *   the ejected ones last. Connect failures then decide, and the connection is refused only when they all fail.
 */
import type { Balance } from '../config/model.js';

export interface BalancerTarget {
  readonly local: boolean;
  /** Connections (tcp) or requests in flight (http) now. */
  readonly active: number;
  /** Not yet checked by its active check (new): see the file comment. */
  readonly unknown: boolean;
  usable(now: number): boolean;
  isEjected(now: number): boolean;
}

export interface Rotation {
  next: number;
}

export interface Pick<T> {
  readonly upstream: T;
  /** Index of the group in the chain: 0 is the service itself, 1.. its fallbacks. */
  readonly group: number;
  /** True when chosen by failing open rather than by health. */
  readonly panic: boolean;
}

export interface PickOptions<T> {
  readonly balance: Balance;
  readonly now: number;
  /** Upstreams this connection already tried (and failed on). */
  readonly tried?: ReadonlySet<T> | null;
  /** The last group's panic threshold: a share in 0–1 (0 disables). */
  readonly panicShare?: number;
  /** Least-conn: on a tie, this one (the upstream an HTTP client's previous request used: its connection is warm). */
  readonly prefer?: T | null;
}

export const DEFAULT_PANIC_SHARE = 0.5;

export function pickUpstream<T extends BalancerTarget>(
  groups: readonly (readonly T[])[],
  rotations: readonly Rotation[],
  opts: PickOptions<T>,
): Pick<T> | null {
  const { now, balance } = opts;
  const tried = opts.tried ?? null;
  const panicShare = opts.panicShare ?? DEFAULT_PANIC_SHARE;
  const prefer = opts.prefer ?? null;
  const last = groups.length - 1;
  for (let g = 0; g <= last; g++) {
    const list = groups[g]!;
    if (list.length === 0) continue;
    let usable = 0;
    let checked = 0;
    for (const u of list) {
      if (u.usable(now)) usable += 1;
      if (!u.unknown) checked += 1;
    }
    if (g === last && usable > 0 && usable < panicShare * checked) {
      const u = choose(list, rotations[g]!, balance, (x) => !x.unknown && !x.isEjected(now) && (tried === null || !tried.has(x)), prefer);
      if (u) return { upstream: u, group: g, panic: !u.usable(now) };
    }
    if (usable === 0) {
      // Nothing here is known to be usable: the upstreams not yet checked are the best hope before a fallback.
      if (checked < list.length) {
        const u = choose(list, rotations[g]!, balance, (x) => x.unknown && !x.isEjected(now) && (tried === null || !tried.has(x)), prefer);
        if (u) return { upstream: u, group: g, panic: false };
      }
      continue;
    }
    const u = choose(list, rotations[g]!, balance, (x) => x.usable(now) && (tried === null || !tried.has(x)), prefer);
    if (u) return { upstream: u, group: g, panic: false };
  }
  // Nothing usable anywhere: fail open over the whole chain, ejected upstreams last.
  for (const pass of [false, true]) {
    for (let g = 0; g <= last; g++) {
      const list = groups[g]!;
      if (list.length === 0) continue;
      const u = choose(list, rotations[g]!, balance, (x) => x.isEjected(now) === pass && (tried === null || !tried.has(x)));
      if (u) return { upstream: u, group: g, panic: true };
    }
  }
  return null;
}

function choose<T extends BalancerTarget>(list: readonly T[], rot: Rotation, balance: Balance, accept: (u: T) => boolean, prefer: T | null = null): T | null {
  const n = list.length;
  let anyLocal = false;
  let any = false;
  for (let i = 0; i < n; i++) {
    const u = list[i]!;
    if (accept(u)) {
      any = true;
      if (u.local) {
        anyLocal = true;
        break;
      }
    }
  }
  if (!any) return null;
  const start = rot.next % n;
  rot.next = (rot.next + 1) % 1_000_000_007;
  let best: T | null = null;
  for (let k = 0; k < n; k++) {
    const u = list[(start + k) % n]!;
    if ((anyLocal && !u.local) || !accept(u)) continue;
    if (balance === 'round-robin') return u;
    if (best === null || u.active < best.active) best = u;
  }
  if (best !== null && prefer !== null && prefer !== best && prefer.active <= best.active && (!anyLocal || prefer.local) && list.includes(prefer) && accept(prefer)) {
    return prefer;
  }
  return best;
}
