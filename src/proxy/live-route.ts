/**
 * A route as the running proxy holds it: the spec from the routes file, its groups bound to the shared upstream
 * states, its metrics and its retry budget. A reload builds new LiveRoutes (the upstream states they share with
 * the old ones keep their health); connections that started on the old ones finish on them.
 */
import { BlockList, isIPv4 } from 'node:net';
import { parseCidr } from '../config/notation.js';
import type { AccessLog } from './access-log.js';
import { pickUpstream, type Pick, type Rotation } from './balancer.js';
import type { CertEntry, CertStore } from './certificates.js';
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
  /** The certificate this route's hosts are served with (TLS exposures). */
  readonly cert: CertEntry | null;
  /** Where its access-log lines go; null when the route does not log. */
  readonly access: AccessLog | null;
  private readonly trusted: BlockList | null;

  constructor(
    readonly spec: RouteSpec,
    readonly registry: UpstreamRegistry,
    private readonly metrics: ProxyMetrics,
    readonly budget: RetryBudget,
    private readonly panicShare: number,
    private readonly certs: CertStore | null = null,
    access: AccessLog | null = null,
  ) {
    this.groups = spec.groups.map((g) => registry.acquire(g));
    this.lists = this.groups.map((g) => g.members);
    this.rotations = this.groups.map((g) => g.rotation);
    this.stats = metrics.route(spec.name, spec.service);
    this.cert = spec.tls && certs ? certs.acquire(spec.tls) : null;
    this.access = spec.accessLog ? access : null;
    this.trusted = trustList(spec.trustedProxies);
  }

  /** Whether a client (address as accepted) may set X-Forwarded-* headers that the upstream then believes. */
  trusts(address: string): boolean {
    if (!this.trusted || !address) return false;
    const a = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    return this.trusted.check(a, isIPv4(a) ? 'ipv4' : 'ipv6');
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
    if (this.cert) this.certs!.release(this.cert);
  }
}

function trustList(cidrs: readonly string[]): BlockList | null {
  if (cidrs.length === 0) return null;
  const list = new BlockList();
  for (const c of cidrs) {
    const p = parseCidr(c);
    if (p.ok) list.addSubnet(p.value.address, p.value.prefix, p.value.family);
  }
  return list;
}
