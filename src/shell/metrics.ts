/**
 * glowd's own metrics (prom-client, a registry of its own): the revision applied and when, configuration errors,
 * reconcile passes and their duration, and every instance's state. Served, with the proxy's, on the node's one
 * metrics endpoint.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InstanceStatus } from './status.js';

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
    this.#revision = new Gauge({ name: 'glow_config_revision_info', help: 'The revision of the config repository applied on this node (value 1).', labelNames: ['revision'], registers });
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

  setApplied(revision: string, appliedAt: Date, instances: readonly InstanceStatus[]): void {
    this.#revision.reset();
    this.#revision.set({ revision }, 1);
    this.#appliedAt.set(appliedAt.getTime() / 1000);
    this.#instanceState.reset();
    for (const i of instances) {
      for (const state of STATES) this.#instanceState.set({ app: i.app, instance: String(i.instance), state }, i.activeState === state ? 1 : 0);
    }
  }
}
