/**
 * glowd: the pass (src/shell/pass.ts) with the systemd runtime (src/systemd/runtime.ts). On start, on every change
 * of the repository (debounced) and on a periodic tick, it loads the whole repository, plans this node, renders
 * its units, observes what runs, reconciles, and carries the steps out. The decisions are made by the pure core
 * (config → plan → units → reconcile).
 *
 * A repository with errors is not applied: the last good snapshot keeps being reconciled (so a unit that died
 * is still restarted) and the errors are reported in the log, in `glow status` and in the metrics.
 */
import { PROXY_UNIT } from '../base/names.js';
import type { NodePaths } from '../base/paths.js';
import type { Logger } from 'pino';
import { GlowError } from '../base/errors.js';
import type { Desired, ObservedNode, Step } from '../reconcile/node.js';
import type { NodePlan } from '../plan/node-plan.js';
import type { AgentMetrics } from '../shell/metrics.js';
import { Pass } from '../shell/pass.js';
import { readSyncStatus } from '../shell/status.js';
import type { AgentStatus } from '../shell/status.js';
import type { Systemd } from './dbus.js';
import { SystemdRuntime } from './runtime.js';
import type { LogSinks } from './runtime.js';
import { ensureProxyGroup } from './tls-files.js';

export type { LogSinks } from './runtime.js';

export interface AgentOptions {
  readonly repo: string;
  readonly node: string;
  readonly unitDir: string;
  readonly env: NodePaths;
  /** Quiet time after the last change before the repository is read (an rsync or checkout in progress). */
  readonly debounceMs: number;
  /** Re-plan this often even without changes. */
  readonly tickMs: number;
  /** How long a restarted instance may take to become healthy during a rolling restart. */
  readonly healthTimeoutMs: number;
}

export class Agent {
  readonly #opts: AgentOptions;
  readonly #log: Logger;
  readonly #logs: LogSinks | undefined;
  readonly #runtime: SystemdRuntime;
  readonly #pass: Pass<Desired, ObservedNode, Step>;
  /** Called after every pass (the CLI rebinds the metrics endpoint when glow.yaml moves it). */
  onPass: (() => void) | undefined;

  constructor(opts: AgentOptions, systemd: Systemd, log: Logger, metrics: AgentMetrics, logs?: LogSinks) {
    this.#opts = opts;
    this.#log = log;
    this.#logs = logs;
    const control = { run: (reason: string) => this.#pass.run(reason), again: () => this.#pass.again() };
    this.#runtime = new SystemdRuntime(opts, systemd, log, control, logs);
    this.#runtime.onPassed = () => this.onPass?.();
    this.#pass = new Pass(
      {
        repo: opts.repo,
        debounceMs: opts.debounceMs,
        tickMs: opts.tickMs,
        onError: (e) => this.#log.error({ err: e }, 'following the repository failed'),
        // A switch of the link (glow sync) is followed at once: its new tree is watched and read.
        onSwitch: (t) => this.#log.info({ repo: opts.repo, tree: t.dir ?? null, link: t.link }, t.dir ? 'following the repository' : 'the repository is missing'),
      },
      this.#runtime,
      metrics,
    );
  }

  /** Starts watching and runs the first pass; resolves when the first pass is done. */
  async start(): Promise<void> {
    // The proxy's unit names the group that may read delivered keys (src/systemd/tls-files.ts).
    try {
      ensureProxyGroup();
    } catch (e) {
      this.#log.error({ code: (e as GlowError).code }, (e as Error).message);
    }
    await this.#pass.start();
  }

  async stop(): Promise<void> {
    this.#runtime.stop();
    await this.#pass.stop();
  }

  status(): AgentStatus {
    const proxy = this.#runtime.states.get(PROXY_UNIT);
    const status = this.#pass.status({
      node: this.#opts.node,
      proxy: proxy ? { activeState: proxy.activeState, since: proxy.stateChangeUs ? new Date(proxy.stateChangeUs / 1000).toISOString() : undefined } : undefined,
      sinks: this.#logs?.status() ?? [],
    });
    const plan = this.plan;
    const sync = readSyncStatus(this.#opts.repo);
    return { ...status, ...(plan ? { instancesPlanned: plan.instances.length } : {}), ...(sync ? { sync } : {}) };
  }

  /** The plan applied, for `glow plan --node` against the live node. */
  get plan(): NodePlan | undefined {
    return this.#pass.applied?.plan.plan;
  }
}
