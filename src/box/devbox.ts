/**
 * The dev box: the pass of glowd (src/shell/pass.ts) with child processes in place of systemd (the runtime of
 * src/box/runtime.ts). On start, on every change of the repository and on a tick it loads the whole repository,
 * plans the box (src/plan/box-plan.ts), compares the plan with what runs (src/reconcile/box.ts) and carries out the
 * difference: artifacts, config files at their real paths, the routes of the in-process proxy (src/proxy), and the
 * instances (src/box/supervisor.ts).
 *
 * As on a node, a repository with errors — or, here, with conflicts that only sharing one machine brings — is not
 * applied: the box keeps running the last good plan and says why.
 *
 * The same class serves `glow dev APP`: the plan is then one app's environment and nothing is started (its app is
 * "outside Glow"), so it holds only the app's listeners and config files.
 */
import { userInfo } from 'node:os';
import { relative, sep } from 'node:path';
import { Counter } from 'prom-client';
import { parseInstanceKey } from '../base/names.js';
import type { Snapshot } from '../config/model.js';
import { closest } from '../config/suggest.js';
import type { DevPlan, FoldedApp } from '../plan/box-plan.js';
import { DEV_NODE } from '../plan/box-plan.js';
import type { NodePlan, PlannedInstance } from '../plan/node-plan.js';
import { nativeUnavailable } from '../proxy/native-relay.js';
import { Proxy } from '../proxy/proxy.js';
import type { BoxStep } from '../reconcile/box.js';
import type { Launch } from '../render/launch.js';
import { AgentMetrics } from '../shell/metrics.js';
import { Pass } from '../shell/pass.js';
import type { AgentStatus } from '../shell/status.js';
import type { Style } from '../shell/style.js';
import { LogRing } from './log-ring.js';
import { proxyLogger } from './proxy-log.js';
import { BoxRuntime } from './runtime.js';
import type { BoxObserved, DevBoxMode } from './runtime.js';
import { killLeftovers, Supervisor } from './supervisor.js';
import type { Backoff } from './supervisor.js';
import type { Terminal } from './terminal.js';

export type { DevBoxMode } from './runtime.js';

export interface DevBoxOptions {
  readonly repo: string;
  /** This repository's state directory (src/box/paths.ts). */
  readonly stateDir: string;
  readonly mode: DevBoxMode;
  /** Overrides glow.yaml's metrics endpoint (the plan's metricsListen). */
  readonly metricsListen?: string;
  readonly debounceMs: number;
  readonly tickMs: number;
  readonly podman: string;
  /** The developer's environment (PATH, HOME, … for the instances). */
  readonly session: Readonly<Record<string, string | undefined>>;
  readonly backoff?: Backoff;
  /** Frontends (`tcp 127.0.0.1:19000` → service) that another process serves already: left out of our routes. */
  readonly sharedFrontends?: () => Promise<ReadonlyMap<string, string>>;
  /** How long connections may drain when the box stops. */
  readonly drainMs?: number;
}

/** `glow status` of a dev box: glowd's shape, and what only a box has. */
export interface DevBoxStatus extends AgentStatus {
  readonly devbox: {
    readonly mode: DevBoxMode;
    readonly stateDir: string;
    readonly pid: number;
    readonly folded: readonly FoldedApp[];
    /** Apps of the plan that Glow does not run here. */
    readonly outside: readonly string[];
    readonly metricsListen: string | undefined;
  };
}

export class DevBox {
  readonly metrics: AgentMetrics;
  readonly proxy: Proxy;
  /** The instances' recent lines, for `glow logs APP` (src/box/log-ring.ts). */
  readonly logs = new LogRing();
  readonly #opts: DevBoxOptions;
  readonly #term: Terminal;
  readonly #supervisor: Supervisor;
  readonly #runtime: BoxRuntime;
  readonly #pass: Pass<DevPlan, BoxObserved, BoxStep>;
  readonly #restarts: Counter;
  readonly #startedAt = new Date();
  #stopping = false;
  /** Called after every pass that applied a new revision (the CLI prints its banner after the first one). */
  onApplied: ((first: boolean) => void) | undefined;

  constructor(opts: DevBoxOptions, terminal: Terminal, style: Style) {
    this.#opts = opts;
    this.#term = terminal;
    this.metrics = new AgentMetrics(this.#node());
    this.#restarts = new Counter({
      name: 'glow_instance_restarts_total',
      help: 'Restarts of instances after they exited or crashed (the dev box supervisor).',
      labelNames: ['app', 'instance'],
      registers: [this.metrics.registry],
    });
    this.proxy = new Proxy({ log: proxyLogger(terminal) });
    // Said once: the box works the same on either data path (docs/proxy.md, "Data paths").
    if (this.proxy.dataPath === 'portable') {
      terminal.note(`proxy: portable data path: ${nativeUnavailable() ?? 'GLOW_PROXY_DATA_PATH=portable'}; everything works the same, the proxy costs more CPU`);
    }
    this.#supervisor = new Supervisor({
      terminal,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      pidFile: `${opts.stateDir}/pids.json`,
      onChange: () => this.#pass.updateMetrics(),
      onLine: (spec, stream, message, pid) =>
        this.logs.push({ timestampUs: Date.now() * 1000, node: this.#node(), app: spec.app, instance: spec.instance, version: spec.version, pid, stream, message }),
      onCrash: (key) => {
        const ref = parseInstanceKey(key);
        if (ref) this.#restarts.inc({ app: ref.app, instance: String(ref.instance) });
      },
    });
    this.#runtime = new BoxRuntime(
      {
        repo: opts.repo,
        stateDir: opts.stateDir,
        mode: opts.mode,
        ...(opts.metricsListen ? { metricsListen: opts.metricsListen } : {}),
        podman: opts.podman,
        session: opts.session,
        ...(opts.sharedFrontends ? { sharedFrontends: opts.sharedFrontends } : {}),
        user: safeUser(),
      },
      terminal,
      style,
      this.#supervisor,
      this.proxy,
    );
    this.#runtime.onApplied = (first) => this.onApplied?.(first);
    this.#runtime.onRetry = (reason) => {
      if (!this.#stopping) void this.#pass.run(reason).catch((e: unknown) => this.#term.error((e as Error).message));
    };
    const stateRel = relative(opts.repo, opts.stateDir);
    const inRepo = stateRel !== '' && !stateRel.startsWith('..');
    this.#pass = new Pass(
      {
        repo: opts.repo,
        debounceMs: opts.debounceMs,
        tickMs: opts.tickMs,
        ...(inRepo ? { ignore: (p: string) => p === opts.stateDir || p.startsWith(opts.stateDir + sep) } : {}),
        onError: (e) => this.#term.error(`${(e as Error).message}`),
      },
      this.#runtime,
      this.metrics,
    );
  }

  async start(): Promise<void> {
    if (this.#opts.mode.kind === 'box') {
      const left = killLeftovers(`${this.#opts.stateDir}/pids.json`);
      if (left.length) this.#term.note(`stopped what a glow up killed with SIGKILL left running: ${left.join(', ')}`);
    }
    await this.#pass.start();
  }

  /** Stops following the repository, stops every instance (each within its stop timeout), then the proxy. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#pass.stop();
    this.#runtime.close(); // after the last pass, which may have started the runtime's watch again
    await this.#supervisor.stopAll();
    await this.proxy.stop(this.#opts.drainMs ?? 1000);
  }

  /** SIGKILL to every instance now. */
  kill(): void {
    this.#stopping = true;
    this.#runtime.close();
    this.#pass.halt();
    this.#supervisor.killAll();
  }

  get plan(): NodePlan | undefined {
    return this.#pass.applied?.plan.plan;
  }

  get snapshot(): Snapshot | undefined {
    return this.#pass.applied?.snapshot;
  }

  /** Listeners left to another process that serves them already (`glow dev` beside `glow up`). */
  get shared(): readonly string[] {
    return this.#runtime.shared;
  }

  /** Where the exec artifact of an instance is (unpacked in the state directory). */
  artifactDirOf(inst: PlannedInstance): string {
    return this.#runtime.artifactDirOf(inst);
  }

  launchOf(inst: PlannedInstance): Launch {
    return this.#runtime.launchOf(inst);
  }

  /** Why `glow logs APP` gets nothing of APP from this box (a sentence with the fix), or undefined when it has
   * lines of APP or runs it. */
  logsRefusal(app: string): string | undefined {
    if (this.logs.recent(app, undefined, 1).length) return undefined;
    if (this.#runtime.outside().has(app)) return `${app} runs outside Glow (glow up --except ${app}): its lines are where you run it`;
    const plan = this.plan;
    const snapshot = this.snapshot;
    if (!plan || !snapshot || plan.instances.some((i) => i.app === app)) return undefined;
    if (snapshot.apps.has(app)) return `${app} has no instance on the box (no deployment of it${this.#opts.mode.kind === 'box' && this.#opts.mode.node ? ` on node ${this.#opts.mode.node}` : ''}): nothing of it runs here`;
    if (snapshot.externals.has(app)) return `${app} is an external: it runs outside the box, which has no lines of it`;
    const near = closest(app, new Set([...snapshot.apps.keys(), ...plan.instances.map((i) => i.app)]));
    return `there is no app \`${app}\` (no apps/${app}.yaml)${near ? `; did you mean \`${near}\`?` : `; the box runs ${[...new Set(plan.instances.map((i) => i.app))].sort().join(', ') || 'nothing'}`}`;
  }

  #node(): string {
    return this.#opts.mode.kind === 'box' ? (this.#opts.mode.node ?? DEV_NODE) : DEV_NODE;
  }

  status(): DevBoxStatus {
    const dp = this.#pass.applied?.plan;
    return {
      ...this.#pass.status({
        node: dp?.plan.node ?? this.#node(),
        proxy: { activeState: this.#stopping ? 'deactivating' : 'active', since: this.#startedAt.toISOString(), frontends: this.proxy.status().frontends },
        sinks: [],
      }),
      devbox: {
        mode: this.#opts.mode,
        stateDir: this.#opts.stateDir,
        pid: process.pid,
        folded: dp?.folded ?? [],
        outside: [...this.#runtime.outside()].sort(),
        metricsListen: dp?.plan.metricsListen,
      },
    };
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'you';
  }
}
