/**
 * glowd's loop: on start, on every change of the repository (debounced) and on a periodic tick, load the whole
 * repository, plan this node, render its units, observe what runs, reconcile, and carry the steps out. Only this
 * file (and the small modules it calls) touches the file system, systemd and timers; the decisions are made by the
 * pure core (config → plan → units → reconcile).
 *
 * A repository with errors is not applied: the last good snapshot keeps being reconciled (so a unit that died
 * is still restarted) and the errors are reported in the log, in `glow status` and in the metrics.
 */
import { containerName, instanceUnit, parseInstanceUnit, parseTemplate, PROXY_UNIT, templateName } from '../base/names.js';
import { routesFile } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ConfigError } from '../config/errors.js';
import { GlowError } from '../base/errors.js';
import { loadRepository } from '../config/load.js';
import type { Sink, Snapshot } from '../config/model.js';
import { readRepo } from '../config/source.js';
import type { SinkStatus } from '../logs/forwarder.js';
import { reconcile } from '../reconcile/node.js';
import type { Step } from '../reconcile/node.js';
import { renderRoutes } from '../render/routes.js';
import { renderUnits } from '../render/units.js';
import { planNode } from '../plan/node-plan.js';
import type { NodePlan, PlannedInstance } from '../plan/node-plan.js';
import { ensureArtifact } from '../shell/artifacts/ensure.js';
import { symlinkAtomic, writeFileAtomic } from '../shell/fs-atomic.js';
import { checkInstance } from '../shell/health.js';
import { ensureProxyGroup, removeTlsFile, writeTlsFile } from './tls-files.js';
import type { AgentMetrics } from '../shell/metrics.js';
import { observe, observeStates } from './observe.js';
import { RepoLoop } from '../shell/repo-loop.js';
import type { AgentStatus, InstanceStatus, ProblemReport } from '../shell/status.js';
import type { Systemd, UnitState } from './dbus.js';
import { SystemdError } from './dbus.js';

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

/** Log forwarding as the agent drives it: the applied snapshot's sinks on every pass (src/logs/manager.ts). */
export interface LogSinks {
  apply(sinks: readonly Sink[], files: ReadonlyMap<string, Uint8Array>): void;
  status(): SinkStatus[];
}

export class Agent {
  readonly #opts: AgentOptions;
  readonly #systemd: Systemd;
  readonly #log: Logger;
  readonly #metrics: AgentMetrics;
  readonly #logs: LogSinks | undefined;
  #snapshot: Snapshot | undefined;
  #plan: NodePlan | undefined;
  #appliedAt: Date | undefined;
  #loaded: { revision: string; at: Date } | undefined;
  #configErrors: ProblemReport[] = [];
  #applyErrors: ProblemReport[] = [];
  #states = new Map<string, UnitState>();
  /** Instances no longer deployed, and when they are to be stopped. */
  readonly #retireAt = new Map<string, number>();
  /** Apps whose rolling restart failed, with the template that failed: not retried until it changes. */
  readonly #failedRollouts = new Map<string, string>();
  readonly #loop: RepoLoop;
  #wake: NodeJS.Timeout | undefined;
  /** Called after every pass (the CLI rebinds the metrics endpoint when glow.yaml moves it). */
  onPass: (() => void) | undefined;

  constructor(opts: AgentOptions, systemd: Systemd, log: Logger, metrics: AgentMetrics, logs?: LogSinks) {
    this.#opts = opts;
    this.#systemd = systemd;
    this.#log = log;
    this.#metrics = metrics;
    this.#logs = logs;
    this.#loop = new RepoLoop(
      {
        repo: opts.repo,
        debounceMs: opts.debounceMs,
        tickMs: opts.tickMs,
        onError: (e) => this.#log.error({ err: e }, 'following the repository failed'),
      },
      async (reason) => {
        await this.#pass(reason);
        this.onPass?.();
      },
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
    await this.#loop.start();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#wake);
    await this.#loop.stop();
  }

  async #pass(reason: string): Promise<void> {
    const t0 = process.hrtime.bigint();
    const result = loadRepository(readRepo(this.#opts.repo));
    const now = new Date();
    if (result.ok) {
      this.#loaded = { revision: result.snapshot.revision, at: now };
      this.#configErrors = [];
      this.#snapshot = result.snapshot;
    } else {
      const fresh = this.#loaded?.revision !== result.revision;
      this.#loaded = { revision: result.revision, at: now };
      this.#configErrors = result.errors.map((e) => configProblem(e, now));
      if (fresh) {
        for (const e of result.errors) this.#log.error({ code: e.code, file: e.file, line: e.line, col: e.col, revision: result.revision }, e.toString());
        this.#log.error({ revision: result.revision, errors: result.errors.length }, `the repository has ${result.errors.length} error(s); keeping revision ${this.#snapshot?.revision ?? '(none)'}`);
      }
    }
    this.#metrics.configErrors.set(this.#configErrors.length);
    const snapshot = this.#snapshot;
    if (!snapshot) {
      this.#metrics.observeReconcile('skipped', t0);
      return;
    }
    // The last good snapshot's sinks: a broken repository keeps them; an unchanged sink is left alone.
    this.#logs?.apply(snapshot.settings.sinks, snapshot.files);
    let plan: NodePlan;
    try {
      plan = planNode(snapshot, this.#opts.node);
    } catch (e) {
      const err = e as GlowError;
      this.#configErrors = [...this.#configErrors, { code: err.code, message: err.message, at: now.toISOString() }];
      this.#log.error({ code: err.code }, err.message);
      this.#metrics.configErrors.set(this.#configErrors.length);
      this.#metrics.observeReconcile('skipped', t0);
      return;
    }
    const newRevision = this.#plan?.revision !== plan.revision;
    this.#plan = plan;
    const units = renderUnits(plan, this.#opts.env);
    const tPlanned = process.hrtime.bigint();
    const observed = await observe(this.#systemd, this.#opts.unitDir, this.#opts.env);
    const tObserved = process.hrtime.bigint();
    const steps = reconcile({ plan, units, routes: renderRoutes(plan, this.#opts.env) }, observed, this.#opts.env);
    if (newRevision || steps.some((s) => s.kind !== 'retire' && s.kind !== 'ensure-artifact')) {
      const ms = (a: bigint, b: bigint) => Math.round(Number(b - a) / 1e5) / 10;
      this.#log.info(
        { revision: plan.revision, reason, loadMs: ms(t0, tPlanned), observeMs: ms(tPlanned, tObserved), steps: steps.filter((s) => s.kind !== 'ensure-artifact').map(describeStep) },
        'reconciling',
      );
    }
    const errors: ProblemReport[] = [];
    await this.#apply(steps, plan, snapshot, units.files, errors);
    this.#applyErrors = errors;
    if (newRevision || !this.#appliedAt) this.#appliedAt = now;
    this.#states = await observeStates(this.#systemd, this.#opts.unitDir);
    this.#metrics.setApplied(plan.revision, this.#appliedAt, this.#instanceStatus());
    this.#metrics.observeReconcile(errors.length ? 'error' : 'ok', t0);
  }

  async #apply(steps: Step[], plan: NodePlan, snapshot: Snapshot, templates: ReadonlyMap<string, string>, errors: ProblemReport[]): Promise<void> {
    const { unitDir, env } = this.#opts;
    const fail = (code: string, message: string, unit?: string) => {
      errors.push({ code, message, ...(unit ? { unit } : {}), at: new Date().toISOString() });
      this.#log.error({ code, unit }, message);
    };
    const blocked = new Set<string>(); // apps whose new artifact could not be had: left as they are
    const appOf = (step: Step): string | undefined => {
      switch (step.kind) {
        case 'write-unit':
        case 'remove-unit':
          return parseTemplate(step.name);
        case 'link-want':
        case 'unlink-want':
        case 'start':
        case 'restart':
          return parseInstanceUnit('name' in step ? step.name : step.unit)?.app;
        case 'rolling-restart':
        case 'signal':
          return step.app;
        default:
          return undefined;
      }
    };
    const retiring = new Set<string>();
    for (const step of steps) {
      if (this.#loop.stopped) return;
      const app = appOf(step);
      if (app && blocked.has(app)) continue;
      try {
        switch (step.kind) {
          case 'ensure-artifact': {
            const source = snapshot.settings.artifacts;
            if (source === undefined) throw new GlowError('GLOW_E_ARTIFACT_SOURCE', `app \`${step.app}\` uses the exec runtime but glow.yaml names no \`artifacts\``);
            await ensureArtifact({ stateDir: env.stateDir, source, repoDir: this.#opts.repo, image: step.image, version: step.version, command: plan.instances.find((i) => i.app === step.app)?.command, ...(step.digest ? { digest: step.digest } : {}) });
            break;
          }
          case 'write-config':
            writeFileAtomic(step.storePath, snapshot.files.get(step.file.source)!, step.file.mode);
            this.#log.info({ app: step.file.app, path: step.file.path, sha256: step.file.sha256 }, 'config file delivered');
            break;
          case 'remove-config':
            rmSync(step.storePath, { force: true });
            break;
          case 'write-tls':
            writeTlsFile(env, step.storePath, snapshot.files.get(step.source)!, ensureProxyGroup());
            this.#log.info({ source: step.source, path: step.storePath }, 'certificate file delivered');
            break;
          case 'remove-tls':
            removeTlsFile(env, step.storePath);
            break;
          case 'write-routes':
            writeFileAtomic(routesFile(env), step.content, 0o644);
            break;
          case 'write-unit':
            writeFileAtomic(join(unitDir, step.name), step.content, 0o644);
            break;
          case 'remove-unit':
            rmSync(join(unitDir, step.name), { force: true });
            break;
          case 'link-want':
            symlinkAtomic(join(unitDir, step.target), join(unitDir, step.name));
            break;
          case 'unlink-want':
            rmSync(join(unitDir, step.name), { force: true });
            break;
          case 'daemon-reload':
            await this.#systemd.reload();
            break;
          case 'start':
            await this.#systemd.resetFailed(step.unit);
            await this.#systemd.start(step.unit);
            this.#log.info({ unit: step.unit }, 'started');
            break;
          case 'restart':
            await this.#systemd.restart(step.unit);
            this.#log.info({ unit: step.unit }, 'restarted');
            break;
          case 'reload-proxy':
            await this.#systemd.reloadUnit(PROXY_UNIT);
            this.#log.info('proxy routes reloaded');
            break;
          case 'rolling-restart':
            await this.#rollingRestart(step.app, step.units, step.reason, plan, templates.get(templateName(step.app)) ?? '', fail);
            break;
          case 'signal':
            for (const unit of step.units) await this.#signal(unit, step.signal, plan);
            this.#log.info({ app: step.app, units: step.units, signal: step.signal }, 'config change signalled');
            break;
          case 'retire':
            retiring.add(step.unit);
            await this.#retire(step.unit, plan);
            break;
        }
      } catch (e) {
        const err = e as GlowError;
        const unit = e instanceof SystemdError ? e.unit : undefined;
        fail(err.code ?? 'GLOW_E_APPLY', err.message, unit);
        if (step.kind === 'ensure-artifact') blocked.add(step.app);
      }
    }
    for (const unit of this.#retireAt.keys()) if (!retiring.has(unit)) this.#retireAt.delete(unit);
  }

  /** One at a time: restart, wait until healthy, next. A failure stops the roll-out of this template. */
  async #rollingRestart(app: string, units: readonly string[], reason: string, plan: NodePlan, template: string, fail: (code: string, message: string, unit?: string) => void): Promise<void> {
    if (this.#failedRollouts.get(app) === template) return;
    this.#failedRollouts.delete(app);
    for (const unit of units) {
      const inst = instanceOf(plan, unit);
      this.#log.info({ unit, reason }, 'rolling restart');
      try {
        await this.#systemd.restart(unit);
      } catch (e) {
        this.#failedRollouts.set(app, template);
        throw e;
      }
      if (inst && !(await this.#waitHealthy(unit, inst))) {
        this.#failedRollouts.set(app, template);
        fail('GLOW_E_ROLLOUT_UNHEALTHY', `${unit} did not become healthy within ${this.#opts.healthTimeoutMs / 1000}s after a restart (${reason}); the other instances of ${app} are left as they are`, unit);
        return;
      }
    }
  }

  async #waitHealthy(unit: string, inst: PlannedInstance): Promise<boolean> {
    const deadline = Date.now() + this.#opts.healthTimeoutMs;
    while (Date.now() < deadline && !this.#loop.stopped) {
      const s = await this.#systemd.state(unit);
      if (s.activeState === 'active' && (await checkInstance(inst))) return true;
      if (s.activeState === 'failed') return false;
      await sleep(Math.min(200, inst.health?.intervalMs ?? 200));
    }
    return false;
  }

  async #signal(unit: string, signal: string, plan: NodePlan): Promise<void> {
    const inst = instanceOf(plan, unit);
    if (inst?.runtime === 'podman') {
      await run(this.#opts.env.podman, ['kill', `--signal=${signal}`, containerName(inst.app, inst.instance)]);
      return;
    }
    const signo = constants.signals[signal as keyof typeof constants.signals];
    if (signo === undefined) throw new GlowError('GLOW_E_SIGNAL_UNKNOWN', `unknown signal ${signal}`);
    await this.#systemd.kill(unit, signo);
  }

  /** Grace first (so proxies elsewhere stop sending it traffic), then stop. */
  async #retire(unit: string, plan: NodePlan): Promise<void> {
    const now = Date.now();
    let at = this.#retireAt.get(unit);
    if (at === undefined) {
      at = now + plan.stopGraceMs;
      this.#retireAt.set(unit, at);
      this.#log.info({ unit, graceMs: plan.stopGraceMs }, 'no longer deployed: stopping after the grace period');
    }
    if (now < at) {
      clearTimeout(this.#wake);
      this.#wake = setTimeout(() => void this.#loop.run('grace period over'), at - now + 10);
      return;
    }
    await this.#systemd.stop(unit);
    this.#retireAt.delete(unit);
    this.#log.info({ unit }, 'stopped');
    this.#loop.again(); // a second pass removes its link and template
  }

  #instanceStatus(): InstanceStatus[] {
    const out: InstanceStatus[] = [];
    const desired = new Set(this.#plan?.instances.map((i) => instanceUnit(i.app, i.instance)));
    for (const [name, s] of this.#states) {
      const ref = parseInstanceUnit(name);
      if (!ref) continue;
      const inst = this.#plan?.instances.find((i) => i.app === ref.app && i.instance === ref.instance);
      const stopAt = this.#retireAt.get(name);
      out.push({
        unit: name,
        app: ref.app,
        instance: ref.instance,
        version: inst?.version,
        activeState: s.activeState,
        subState: s.subState,
        mainPid: s.mainPid,
        since: s.stateChangeUs ? new Date(s.stateChangeUs / 1000).toISOString() : undefined,
        desired: desired.has(name),
        ...(stopAt ? { stopAt: new Date(stopAt).toISOString() } : {}),
      });
    }
    return out;
  }

  status(): AgentStatus {
    const proxy = this.#states.get(PROXY_UNIT);
    return {
      node: this.#opts.node,
      repo: this.#opts.repo,
      revision: this.#plan?.revision,
      appliedAt: this.#appliedAt?.toISOString(),
      loadedRevision: this.#loaded?.revision,
      loadedAt: this.#loaded?.at.toISOString(),
      configErrors: this.#configErrors,
      applyErrors: this.#applyErrors,
      proxy: proxy ? { activeState: proxy.activeState, since: proxy.stateChangeUs ? new Date(proxy.stateChangeUs / 1000).toISOString() : undefined } : undefined,
      instances: this.#instanceStatus(),
      sinks: this.#logs?.status() ?? [],
    };
  }

  /** The plan applied, for `glow plan --node` against the live node. */
  get plan(): NodePlan | undefined {
    return this.#plan;
  }
}

function instanceOf(plan: NodePlan, unit: string): PlannedInstance | undefined {
  const ref = parseInstanceUnit(unit);
  return ref ? plan.instances.find((i) => i.app === ref.app && i.instance === ref.instance) : undefined;
}

function configProblem(e: ConfigError, at: Date): ProblemReport {
  return { code: e.code, message: e.message, file: e.file, line: e.line, col: e.col, at: at.toISOString() };
}

export function describeStep(s: Step): string {
  switch (s.kind) {
    case 'ensure-artifact':
      return `artifact ${s.image}:${s.version}`;
    case 'write-config':
      return `deliver ${s.file.path} (${s.file.app})`;
    case 'remove-config':
      return `remove ${s.storePath}`;
    case 'write-tls':
      return `deliver ${s.source} (tls)`;
    case 'remove-tls':
      return `remove ${s.storePath}`;
    case 'write-routes':
      return 'write proxy routes';
    case 'write-unit':
      return `write ${s.name}`;
    case 'remove-unit':
      return `remove ${s.name}`;
    case 'link-want':
      return `enable ${s.name}`;
    case 'unlink-want':
      return `disable ${s.name}`;
    case 'daemon-reload':
      return 'daemon-reload';
    case 'start':
      return `start ${s.unit}`;
    case 'restart':
      return `restart ${s.unit}`;
    case 'reload-proxy':
      return 'reload the proxy';
    case 'rolling-restart':
      return `rolling restart of ${s.units.join(', ')} (${s.reason})`;
    case 'signal':
      return `${s.signal} to ${s.units.join(', ')}`;
    case 'retire':
      return `retire ${s.unit}`;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => (code === 0 ? resolve() : reject(new GlowError('GLOW_E_COMMAND', `${cmd} ${args.join(' ')} exited ${code}: ${err.trim()}`))));
  });
}
