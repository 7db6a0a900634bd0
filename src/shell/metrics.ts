/**
 * glowd's own metrics (prom-client, a registry of its own): the revision applied and when (with the commit glow
 * sync published it from), configuration errors, reconcile passes and their duration, every instance's state, and
 * the last run of `glow sync` (read from its state file at each scrape). Served, with the proxy's, on the node's
 * one metrics endpoint.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InstanceStatus, SyncStatus } from './status.js';

const STATES = ['active', 'activating', 'deactivating', 'inactive', 'failed', 'reloading'] as const;

export class AgentMetrics {
  readonly registry = new Registry();
  readonly configErrors: Gauge;
  readonly #revision: Gauge;
  readonly #appliedAt: Gauge;
  readonly #passes: Counter;
  readonly #duration: Histogram;
  readonly #instanceState: Gauge;

  constructor(node: string) {
    this.registry.setDefaultLabels({ node });
    const registers = [this.registry];
    this.configErrors = new Gauge({ name: 'glow_config_errors', help: 'Errors in the config repository as last read (0: the latest revision is applied).', registers });
    this.#revision = new Gauge({
      name: 'glow_config_revision_info',
      help: 'The revision of the config repository applied on this node (value 1); `commit`: the commit (or sha256: content hash) glow sync published it from, when it did.',
      labelNames: ['revision', 'commit'],
      registers,
    });
    this.#appliedAt = new Gauge({ name: 'glow_config_applied_timestamp_seconds', help: 'When the applied revision was first applied, in seconds since the epoch.', registers });
    this.#passes = new Counter({ name: 'glow_reconcile_total', help: 'Reconcile passes of glowd, by result (ok, error: a step failed, skipped: nothing good to apply).', labelNames: ['result'], registers });
    this.#duration = new Histogram({
      name: 'glow_reconcile_duration_seconds',
      help: 'Time of one reconcile pass, from reading the repository to the last step.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.#instanceState = new Gauge({ name: 'glow_instance_state', help: 'State of each instance on this node as systemd reports it (1 for the current state).', labelNames: ['app', 'instance', 'state'], registers });
  }

  observeReconcile(result: 'ok' | 'error' | 'skipped', startNs: bigint): void {
    this.#passes.inc({ result });
    this.#duration.observe(Number(process.hrtime.bigint() - startNs) / 1e9);
  }

  setApplied(revision: string, appliedAt: Date, instances: readonly InstanceStatus[], commit?: string): void {
    this.#revision.reset();
    this.#revision.set(commit ? { revision, commit } : { revision }, 1);
    this.#appliedAt.set(appliedAt.getTime() / 1000);
    this.#instanceState.reset();
    for (const i of instances) {
      for (const state of STATES) this.#instanceState.set({ app: i.app, instance: String(i.instance), state }, i.activeState === state ? 1 : 0);
    }
  }
}

const seconds = (iso: string | null | undefined): number | undefined => {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? t / 1000 : undefined;
};

/**
 * The last run of `glow sync`, read by `read()` at every scrape (its state file: src/sync/state.ts). Nothing is
 * reported before glow sync ever ran on the node; a state file that cannot be read counts as an error.
 */
export function registerSyncMetrics(registry: Registry, read: () => SyncStatus | undefined): void {
  const registers = [registry];
  let snap: SyncStatus | undefined;
  let at = 0;
  // One read per scrape: every gauge's collect() asks, the first one of a scrape reads.
  const current = (): SyncStatus | undefined => {
    const now = Date.now();
    if (now - at > 100) {
      snap = read();
      at = now;
    }
    return snap;
  };
  const state = () => {
    const s = current();
    return s && !('unreadable' in s) ? s : undefined;
  };
  const timestamp = (name: string, help: string, pick: (s: NonNullable<ReturnType<typeof state>>) => string | null | undefined) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.reset();
        const s = state();
        const v = s ? seconds(pick(s)) : undefined;
        if (v !== undefined) this.set(v);
      },
    });
  timestamp('glow_sync_last_success_timestamp_seconds', 'When the last run of glow sync that ended well (published or nothing new) ended, in seconds since the epoch.', (s) => s.lastSuccessAt);
  timestamp('glow_sync_last_attempt_timestamp_seconds', 'When the last run of glow sync ended, well or not, in seconds since the epoch.', (s) => s.lastAttemptAt);
  timestamp('glow_sync_published_timestamp_seconds', 'When glow sync published the current revision, in seconds since the epoch.', (s) => s.publishedAt);
  timestamp('glow_sync_last_error_timestamp_seconds', 'When the last failed run of glow sync failed (kept after later successes), in seconds since the epoch.', (s) => s.lastError?.at);
  new Gauge({
    name: 'glow_sync_errors',
    help: '1 when the last run of glow sync failed, or its state file cannot be read; 0 when it ended well.',
    labelNames: ['code'],
    registers,
    collect() {
      this.reset();
      const s = current();
      if (!s) return;
      if ('unreadable' in s) this.set({ code: s.unreadable.code }, 1);
      else if (s.lastResult === 'failed') this.set({ code: s.lastError?.code ?? 'unknown' }, 1);
      else this.set(0);
    },
  });
  new Gauge({
    name: 'glow_sync_revision_info',
    help: 'The revision glow sync made current (value 1), with its commit (or sha256: content hash) and its source.',
    labelNames: ['revision', 'commit', 'source'],
    registers,
    collect() {
      this.reset();
      const s = state();
      if (s?.revision) this.set({ revision: s.revision, commit: s.commit ?? '', source: s.source ?? '' }, 1);
    },
  });
}
