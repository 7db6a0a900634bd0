/**
 * The live upstreams of the proxy, shared by every route that names them: one `UpstreamState` per service and
 * address (and health check), holding its health, its active connections (the least-conn count, across
 * listeners), its idle keep-alive connections (HTTP) and its active check loop. Routes hold `GroupState`s:
 * the ordered upstreams of one service for one route, with the group's round-robin turn and ejection cap.
 *
 * States are reference-counted by groups: a reload acquires the new groups before releasing the old ones, so an
 * upstream that stays keeps its health, ejections and checks; one that leaves stops its checks and closes its
 * idle connections (connections in use drain with their clients).
 */
import { PROXY_EVENTS } from './log-events.js';
import type { Logger } from 'pino';
import type { HealthCheck, Upstream, UpstreamGroup } from '../plan/node-plan.js';
import type { BalancerTarget, Rotation } from './balancer.js';
import { now } from './clock.js';
import { probe } from './health-probe.js';
import type { UpstreamView } from './metrics.js';
import { DEFAULT_EJECTION, type EjectionPolicy, UpstreamHealth } from './upstream-health.js';

/** An idle keep-alive connection parked on its upstream. */
export interface PooledConnection {
  destroy(): void;
}

/** A connection to an upstream attached to a client's request (src/proxy/upstream-pool.ts). */
export interface BusyConnection {
  /** Its upstream was ejected or found down by active checks. */
  lost(reason: string): void;
}

export class UpstreamState implements BalancerTarget, UpstreamView {
  active = 0;
  refs = 0;
  readonly health: UpstreamHealth;
  readonly address: string;
  readonly node: string;
  readonly idle: PooledConnection[] = [];
  /** Connections attached to a request now: told when the upstream is lost (see `UpstreamRegistry.lost`). */
  readonly busy = new Set<BusyConnection>();
  /** Set when the last group released it: checks stopped, idle connections closed. */
  retired = false;
  checkTimer: NodeJS.Timeout | null = null;
  lastCheckAt = 0;

  constructor(
    readonly key: string,
    readonly service: string,
    readonly upstream: Upstream,
    readonly check: HealthCheck,
    ejection: EjectionPolicy,
  ) {
    this.health = new UpstreamHealth(ejection, check.type !== 'none');
    this.address = `${upstream.host.includes(':') ? `[${upstream.host}]` : upstream.host}:${upstream.port}`;
    this.node = upstream.node ?? '';
  }

  get host(): string {
    return this.upstream.host;
  }
  get port(): number {
    return this.upstream.port;
  }
  get local(): boolean {
    return this.upstream.local;
  }
  get ejectionsTotal(): number {
    return this.health.ejectionsTotal;
  }
  get up(): boolean {
    return this.health.usable(now());
  }
  get unknown(): boolean {
    return this.health.unknown;
  }

  usable(t: number): boolean {
    return this.health.usable(t);
  }
  isEjected(t: number): boolean {
    return this.health.isEjected(t);
  }
}

export class GroupState {
  readonly rotation: Rotation = { next: Math.floor(Math.random() * 1024) };
  constructor(
    readonly spec: UpstreamGroup,
    readonly members: readonly UpstreamState[],
    private readonly ejection: EjectionPolicy,
  ) {}

  get service(): string {
    return this.spec.service;
  }

  /** The cap on ejections: may one more upstream of this group be ejected now? */
  mayEject(t: number): boolean {
    let ejected = 0;
    for (const m of this.members) if (m.health.isEjected(t)) ejected += 1;
    return UpstreamHealth.mayEject(this.members.length, ejected, this.ejection);
  }
}

export interface RegistryHooks {
  /** An upstream was ejected after failures of real traffic. */
  onEjected?(u: UpstreamState, ms: number): void;
  /** An upstream was ejected or found down: its idle connections are closed, its busy ones told. */
  onLost?(u: UpstreamState, reason: string): void;
  onRetired?(u: UpstreamState): void;
}

export class UpstreamRegistry {
  private readonly states = new Map<string, UpstreamState>();
  private closed = false;

  constructor(
    private readonly log: Logger,
    readonly ejection: EjectionPolicy = DEFAULT_EJECTION,
    private readonly hooks: RegistryHooks = {},
  ) {}

  upstreams(): Iterable<UpstreamState> {
    return this.states.values();
  }

  acquire(group: UpstreamGroup): GroupState {
    const members = group.upstreams.map((u) => this.acquireOne(group, u));
    return new GroupState(group, members, this.ejection);
  }

  release(group: GroupState): void {
    for (const s of group.members) {
      s.refs -= 1;
      if (s.refs > 0) continue;
      this.states.delete(s.key);
      this.retire(s);
    }
  }

  /** Real traffic failed on `u` (in `group`): count it, eject when the threshold and the cap allow. */
  failure(u: UpstreamState, group: GroupState, reason: string): void {
    const t = now();
    const ms = u.health.failure(t, () => group.mayEject(t));
    if (ms > 0) {
      this.log.warn({ event: PROXY_EVENTS.upstreamEjected, service: u.service, upstream: u.address, node: u.node || undefined, ejectedMs: ms, reason }, 'upstream ejected after consecutive failures');
      this.hooks.onEjected?.(u, ms);
      this.lost(u, `ejected: ${reason}`);
    }
  }

  /**
   * `u` was ejected or found down: its idle connections are closed (after a partition they lead nowhere), and
   * every request waiting on it for a response is told (src/proxy/http-session.ts fails it over or answers it).
   * Run after the current call stack, so that the failure that caused it finishes with its own connection first.
   */
  private lost(u: UpstreamState, reason: string): void {
    queueMicrotask(() => {
      if (u.usable(now())) return;
      for (const c of u.idle.splice(0)) c.destroy();
      for (const c of [...u.busy]) c.lost(reason);
      this.hooks.onLost?.(u, reason);
    });
  }
  success(u: UpstreamState): void {
    if (u.health.success(now())) this.log.info({ event: PROXY_EVENTS.upstreamUp, service: u.service, upstream: u.address, node: u.node || undefined, by: 'traffic' }, 'upstream up: traffic succeeded before its first check');
  }

  close(): void {
    this.closed = true;
    for (const s of this.states.values()) this.retire(s);
    this.states.clear();
  }

  private acquireOne(group: UpstreamGroup, u: Upstream): UpstreamState {
    const check = group.health;
    const key = `${group.service}|${u.host}|${u.port}|${u.node ?? ''}|${u.local}|${check.type}|${check.path ?? ''}|${check.port ?? ''}|${check.intervalMs}|${check.timeoutMs}|${check.rise}|${check.fall}`;
    let s = this.states.get(key);
    if (!s) {
      s = new UpstreamState(key, group.service, u, check, this.ejection);
      this.states.set(key, s);
      if (check.type !== 'none' && !this.closed) this.schedule(s, Math.random() * Math.min(check.intervalMs, 1000));
    }
    s.refs += 1;
    return s;
  }

  private retire(s: UpstreamState): void {
    s.retired = true;
    if (s.checkTimer) clearTimeout(s.checkTimer);
    s.checkTimer = null;
    for (const c of s.idle.splice(0)) c.destroy();
    this.hooks.onRetired?.(s);
  }

  private schedule(s: UpstreamState, delayMs: number): void {
    s.checkTimer = setTimeout(() => void this.runCheck(s), delayMs);
    s.checkTimer.unref();
  }

  private async runCheck(s: UpstreamState): Promise<void> {
    if (s.retired) return;
    const c = s.check;
    s.lastCheckAt = Date.now();
    const startedAt = now();
    const reason = await probe({ host: s.host, port: c.port ?? s.port, ...(c.type === 'http' ? { path: c.path ?? '/' } : {}), timeoutMs: c.timeoutMs });
    if (s.retired) return;
    const change = s.health.check(reason === null, c.rise, c.fall, reason, startedAt, now());
    const at = { service: s.service, upstream: s.address, node: s.node || undefined };
    if (change === 'down') {
      this.log.warn({ event: PROXY_EVENTS.upstreamDown, ...at, reason }, 'upstream down by active checks');
      this.lost(s, `down: ${reason}`);
    }
    if (change === 'up') this.log.info({ event: PROXY_EVENTS.upstreamUp, ...at }, 'upstream up by active checks');
    if (change === 'reinstated') this.log.info({ event: PROXY_EVENTS.upstreamReinstated, ...at, rise: c.rise }, 'ejection ended by passing active checks');
    this.schedule(s, c.intervalMs);
  }
}
