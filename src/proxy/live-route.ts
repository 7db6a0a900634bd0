/**
 * A route as the running proxy holds it: the spec from the routes file, its groups bound to the shared upstream
 * states, its metrics and its retry budget. A reload builds new LiveRoutes (the upstream states they share with
 * the old ones keep their health); connections that started on the old ones finish on them.
 */
import { pickUpstream, type Pick, type Rotation } from './balancer.js';
import { now } from './clock.js';
import type { ProxyMetrics, RouteStats, UpstreamTraffic } from './metrics.js';
import type { RetryBudget } from './retry-budget.js';
import type { RouteSpec } from './routes-file.js';
import type { GroupState, UpstreamRegistry, UpstreamState } from './upstream-registry.js';

export interface RoutePick {
  readonly upstream: UpstreamState;
  readonly group: GroupState;
  readonly panic: boolean;
}

export class LiveRoute {
  readonly groups: readonly GroupState[];
  readonly stats: RouteStats;
  private readonly lists: readonly (readonly UpstreamState[])[];
  private readonly rotations: readonly Rotation[];
  private readonly traffic = new Map<UpstreamState, UpstreamTraffic>();
  private released = false;

  constructor(
    readonly spec: RouteSpec,
    readonly registry: UpstreamRegistry,
    private readonly metrics: ProxyMetrics,
    readonly budget: RetryBudget,
    private readonly panicShare: number,
  ) {
    this.groups = spec.groups.map((g) => registry.acquire(g));
    this.lists = this.groups.map((g) => g.members);
    this.rotations = this.groups.map((g) => g.rotation);
    this.stats = metrics.route(spec.name, spec.service);
  }

  /** The upstream for a new connection or request, skipping those in `tried`; null when there is none left. */
  pick(tried: ReadonlySet<UpstreamState> | null, prefer: UpstreamState | null = null): RoutePick | null {
    const p: Pick<UpstreamState> | null = pickUpstream(this.lists, this.rotations, {
      balance: this.spec.policy.balance,
      now: now(),
      tried,
      panicShare: this.panicShare,
      prefer,
    });
    return p ? { upstream: p.upstream, group: this.groups[p.group]!, panic: p.panic } : null;
  }

  trafficOf(u: UpstreamState): UpstreamTraffic {
    let t = this.traffic.get(u);
    if (!t) this.traffic.set(u, (t = this.metrics.upstreamTraffic(this.spec.name, u.service, u.address, u.node)));
    return t;
  }

  observeHttp(method: string, status: number, seconds: number): void {
    this.metrics.observeHttp(this.stats, method, status, seconds);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const g of this.groups) this.registry.release(g);
  }
}
