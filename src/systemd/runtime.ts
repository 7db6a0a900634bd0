/**
 * The systemd runtime of the pass (src/shell/pass.ts): how glowd plans a snapshot (the node's plan, its units and
 * routes), observes the node (unit files, links, unit states, delivered files: src/systemd/observe.ts), diffs
 * (src/reconcile/node.ts), and carries out a step — files written whole, links, daemon-reloads and jobs over
 * D-Bus, rolling restarts that wait for health, retirements after the grace period. What glowd says goes to its
 * log (pino).
 */
import { DEFAULTS } from '../config/model.js';
import { containerName, instanceUnit, parseInstanceUnit, parseTemplate, PROXY_UNIT, templateName } from '../base/names.js';
import { routesFile } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { GlowError } from '../base/errors.js';
import { ConfigError } from '../config/errors.js';
import type { Sink, Snapshot } from '../config/model.js';
import type { SinkStatus } from '../logs/forwarder.js';
import { describeStep, reconcile } from '../reconcile/node.js';
import type { Desired, ObservedNode, Step } from '../reconcile/node.js';
import { renderRoutes } from '../render/routes.js';
import { renderUnits } from '../render/units.js';
import { planNode } from '../plan/node-plan.js';
import type { NodePlan, PlannedInstance } from '../plan/node-plan.js';
import { ensureStepArtifact } from '../shell/artifacts/ensure.js';
import { symlinkAtomic, writeFileAtomic } from '../fs/atomic.js';
import { checkInstance } from '../shell/health.js';
import type { Applied, PassResult, PassRuntime, Planned, Rejection, StepApp, StepContext } from '../shell/pass.js';
import type { InstanceStatus, ProblemReport } from '../shell/status.js';
import { ensureProxyGroup, removeTlsFile, writeTlsFile } from './tls-files.js';
import { observe, observeStates } from './observe.js';
import type { Systemd, UnitState } from './dbus.js';
import { SystemdError } from './dbus.js';

export interface SystemdRuntimeOptions {
  readonly repo: string;
  readonly node: string;
  readonly unitDir: string;
  readonly env: NodePaths;
  /** How long a restarted instance may take to become healthy during a rolling restart. */
  readonly healthTimeoutMs: number;
}

/** Log forwarding as the agent drives it: the applied snapshot's sinks on every pass (src/logs/manager.ts). */
export interface LogSinks {
  apply(sinks: readonly Sink[], files: ReadonlyMap<string, Uint8Array>): void;
  status(): SinkStatus[];
}

/** What the runtime may ask of the pass that drives it. */
export interface PassControl {
  run(reason: string): Promise<void>;
  again(): void;
}

type Ctx = StepContext<Desired, ObservedNode>;

export class SystemdRuntime implements PassRuntime<Desired, ObservedNode, Step> {
  readonly #opts: SystemdRuntimeOptions;
  readonly #systemd: Systemd;
  readonly #log: Logger;
  readonly #logs: LogSinks | undefined;
  readonly #control: PassControl;
  #plan: NodePlan | undefined;
  #states = new Map<string, UnitState>();
  /** Instances no longer deployed, and when they are to be stopped. */
  readonly #retireAt = new Map<string, number>();
  /** Apps whose rolling restart failed, with the template that failed: not retried until it changes. */
  readonly #failedRollouts = new Map<string, { readonly template: string; readonly unit: string; readonly message: string }>();
  #wake: NodeJS.Timeout | undefined;
  /** Called after every pass, applied or not. */
  onPassed: (() => void) | undefined;

  constructor(opts: SystemdRuntimeOptions, systemd: Systemd, log: Logger, control: PassControl, logs?: LogSinks) {
    this.#opts = opts;
    this.#systemd = systemd;
    this.#log = log;
    this.#control = control;
    this.#logs = logs;
  }

  /** The unit states of the last pass (the proxy's is in status). */
  get states(): ReadonlyMap<string, UnitState> {
    return this.#states;
  }

  stop(): void {
    clearTimeout(this.#wake);
  }

  plan(snapshot: Snapshot): Planned<Desired> {
    const plan = planNode(snapshot, this.#opts.node);
    return { plan: { plan, units: renderUnits(plan, this.#opts.env), routes: renderRoutes(plan, this.#opts.env) }, conflicts: [] };
  }

  observe(): Promise<ObservedNode> {
    return observe(this.#systemd, this.#opts.unitDir, this.#opts.env);
  }

  diff({ plan }: Applied<Desired>, observed: ObservedNode): Step[] {
    return reconcile(plan, observed, this.#opts.env);
  }

  /** A missing artifact blocks its app: nothing of it changes (its running instances keep their template). */
  appOf(step: Step): StepApp | undefined {
    const held = (app: string | undefined): StepApp | undefined => (app ? { app, blocks: false, held: true } : undefined);
    switch (step.kind) {
      case 'ensure-artifact':
        return { app: step.app, blocks: true, held: false };
      case 'write-unit':
      case 'remove-unit':
        return held(parseTemplate(step.name));
      case 'link-want':
      case 'unlink-want':
        return held(parseInstanceUnit(step.name)?.app);
      case 'start':
      case 'restart':
        return held(parseInstanceUnit(step.unit)?.app);
      case 'rolling-restart':
      case 'signal':
        return held(step.app);
      default:
        return undefined;
    }
  }

  unitOf(_step: Step, e: unknown): string | undefined {
    return e instanceof SystemdError ? e.unit : undefined;
  }

  rejected(r: Rejection): void {
    // A plan that cannot be made is said on every pass; errors of the repository once per revision.
    if (r.kind === 'unplannable') {
      for (const e of r.errors) this.#log.error({ code: e.code }, e.message);
      return;
    }
    if (!r.changed) return;
    for (const e of r.errors) this.#log.error({ ...fields(e), revision: r.revision }, e.toString());
    this.#log.error({ revision: r.revision, errors: r.errors.length }, `the repository has ${r.errors.length} error(s); keeping revision ${r.keeping ?? '(none)'}`);
  }

  applying({ snapshot, plan }: Applied<Desired>): void {
    this.#plan = plan.plan;
    // The last good snapshot's sinks: a broken repository keeps them; an unchanged sink is left alone.
    this.#logs?.apply(snapshot.settings.sinks, snapshot.files);
  }

  planned({ plan }: Applied<Desired>, steps: readonly Step[], info: { reason: string; fresh: boolean; loadMs: number; observeMs: number }): void {
    if (!info.fresh && !steps.some((s) => s.kind !== 'retire' && s.kind !== 'ensure-artifact')) return;
    this.#log.info(
      { revision: plan.plan.revision, reason: info.reason, loadMs: info.loadMs, observeMs: info.observeMs, steps: steps.filter((s) => s.kind !== 'ensure-artifact').map(describeStep) },
      'reconciling',
    );
  }

  stepFailed(report: ProblemReport): void {
    this.#log.error({ code: report.code, unit: report.unit, ...(report.errno ? { errno: report.errno } : {}) }, report.message);
  }

  async settle(result: PassResult<Desired, Step>): Promise<void> {
    if (!result.halted) {
      const retiring = new Set(result.steps.flatMap((s) => (s.kind === 'retire' ? [s.unit] : [])));
      for (const unit of this.#retireAt.keys()) if (!retiring.has(unit)) this.#retireAt.delete(unit);
    }
    this.#states = await observeStates(this.#systemd, this.#opts.unitDir);
  }

  passed(): void {
    this.onPassed?.();
  }

  async execute(step: Step, ctx: Ctx): Promise<void> {
    const { unitDir, env } = this.#opts;
    const { snapshot, plan } = ctx.applied;
    switch (step.kind) {
      case 'ensure-artifact': {
        await ensureStepArtifact(snapshot, step, { stateDir: env.stateDir, repoDir: ctx.applied.dir });
        return;
      }
      case 'write-config':
        writeFileAtomic(step.storePath, snapshot.files.get(step.file.source)!, step.file.mode);
        this.#log.info({ app: step.file.app, path: step.file.path, sha256: step.file.sha256 }, 'config file delivered');
        return;
      case 'remove-config':
        rmSync(step.storePath, { force: true });
        return;
      case 'write-tls':
        writeTlsFile(env, step.storePath, snapshot.files.get(step.source)!, ensureProxyGroup());
        this.#log.info({ source: step.source, path: step.storePath }, 'certificate file delivered');
        return;
      case 'remove-tls':
        removeTlsFile(env, step.storePath);
        return;
      case 'write-routes':
        writeFileAtomic(routesFile(env), step.content, 0o644);
        return;
      case 'write-unit':
        writeFileAtomic(join(unitDir, step.name), step.content, 0o644);
        return;
      case 'remove-unit':
      case 'unlink-want':
        rmSync(join(unitDir, step.name), { force: true });
        return;
      case 'link-want':
        symlinkAtomic(join(unitDir, step.target), join(unitDir, step.name));
        return;
      case 'daemon-reload':
        await this.#systemd.reload();
        return;
      case 'start':
        await this.#systemd.resetFailed(step.unit);
        await this.#systemd.start(step.unit);
        this.#log.info({ unit: step.unit }, 'started');
        return;
      case 'restart':
        await this.#systemd.restart(step.unit);
        this.#log.info({ unit: step.unit }, 'restarted');
        return;
      case 'reload-proxy':
        await this.#systemd.reloadUnit(PROXY_UNIT);
        this.#log.info('proxy routes reloaded');
        return;
      case 'rolling-restart':
        await this.#rollingRestart(step.app, step.units, step.reason, plan.units.files.get(templateName(step.app)) ?? '', ctx);
        return;
      case 'signal':
        for (const unit of step.units) await this.#signal(unit, step.signal, plan.plan);
        this.#log.info({ app: step.app, units: step.units, signal: step.signal }, 'config change signalled');
        return;
      case 'retire':
        await this.#retire(step.unit, plan.plan);
        return;
    }
  }

  /**
   * One at a time: restart, wait until healthy, next. A failure stops the roll-out of this template; it stays
   * stopped, and reported in every pass's errors (so in `glow status`), until the template changes.
   */
  async #rollingRestart(app: string, units: readonly string[], reason: string, template: string, ctx: Ctx): Promise<void> {
    const failed = this.#failedRollouts.get(app);
    if (failed?.template === template) {
      ctx.fail('GLOW_E_ROLLOUT_UNHEALTHY', failed.message, failed.unit);
      return;
    }
    this.#failedRollouts.delete(app);
    for (const unit of units) {
      const inst = instanceOf(ctx.applied.plan.plan, unit);
      this.#log.info({ unit, reason }, 'rolling restart');
      try {
        await this.#systemd.restart(unit);
      } catch (e) {
        this.#failedRollouts.set(app, { template, unit, message: `the roll-out of ${app} stopped at ${unit}: ${(e as Error).message}` });
        throw e;
      }
      if (inst && !(await this.#waitHealthy(unit, inst, ctx))) {
        const message = `${unit} did not become healthy within ${this.#opts.healthTimeoutMs / 1000}s after a restart (${reason}); the other instances of ${app} are left as they are`;
        this.#failedRollouts.set(app, { template, unit, message });
        ctx.fail('GLOW_E_ROLLOUT_UNHEALTHY', message, unit);
        return;
      }
    }
  }

  /**
   * Healthy as the proxy sees it: `rise` checks in a row pass (the app's health check, or for an app without a
   * port, the unit being active), `interval` apart, all of the same process. An instance that comes up and falls
   * again (a version that crashes a second after start) is not healthy, however often it is active for a moment.
   */
  async #waitHealthy(unit: string, inst: PlannedInstance, ctx: Ctx): Promise<boolean> {
    const deadline = Date.now() + this.#opts.healthTimeoutMs;
    const rise = inst.health?.rise ?? DEFAULTS.health.rise;
    const intervalMs = inst.health?.intervalMs ?? DEFAULTS.health.intervalMs;
    let passed = 0;
    let pid = 0;
    while (Date.now() < deadline && !ctx.stopped) {
      const s = await this.#systemd.state(unit);
      if (s.activeState === 'failed') return false;
      const up = s.activeState === 'active';
      if (up && s.mainPid !== pid) {
        pid = s.mainPid; // a new process (the unit restarted): its checks count afresh
        passed = 0;
      }
      passed = up && (await checkInstance(inst)) ? passed + 1 : 0;
      if (passed >= rise) return true;
      await sleep(passed > 0 ? intervalMs : Math.min(200, intervalMs));
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
      // One timer, for the earliest grace period that ends (several instances may be retiring).
      const next = Math.min(...this.#retireAt.values());
      clearTimeout(this.#wake);
      this.#wake = setTimeout(() => void this.#control.run('grace period over'), Math.max(0, next - now) + 10);
      return;
    }
    await this.#systemd.stop(unit);
    this.#retireAt.delete(unit);
    this.#log.info({ unit }, 'stopped');
    this.#control.again(); // a second pass removes its link and template
  }

  instances(): InstanceStatus[] {
    const out: InstanceStatus[] = [];
    const plan = this.#plan;
    const desired = new Set(plan?.instances.map((i) => instanceUnit(i.app, i.instance)));
    for (const [name, s] of this.#states) {
      const ref = parseInstanceUnit(name);
      if (!ref) continue;
      const inst = plan?.instances.find((i) => i.app === ref.app && i.instance === ref.instance);
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
}

function fields(e: GlowError): Record<string, unknown> {
  return e instanceof ConfigError ? { code: e.code, file: e.file, line: e.line, col: e.col } : { code: e.code };
}

function instanceOf(plan: NodePlan, unit: string): PlannedInstance | undefined {
  const ref = parseInstanceUnit(unit);
  return ref ? plan.instances.find((i) => i.app === ref.app && i.instance === ref.instance) : undefined;
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
