/**
 * The dev box: glowd's loop with child processes in place of systemd. On start, on every change of the
 * repository and on a tick it loads the whole repository, plans the box (src/plan/box-plan.ts), compares the
 * plan with what runs (src/reconcile/box.ts) and carries out the difference: artifacts, config files at their real
 * paths, the routes of the in-process proxy (src/proxy), and the instances (src/box/supervisor.ts).
 *
 * As on a node, a repository with errors — or, here, with conflicts that only sharing one machine brings — is not
 * applied: the box keeps running the last good plan and says why. Only this file and the small modules it calls
 * touch the file system, processes and sockets; the decisions are the pure core's.
 *
 * The same class serves `glow dev APP`: the plan is then one app's environment and nothing is started (its app is
 * "outside Glow"), so it holds only the app's listeners and config files.
 */
import { artifactDir, tlsStorePath } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import { userInfo } from 'node:os';
import { relative, sep } from 'node:path';
import pino from 'pino';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { AgentStatus, InstanceStatus, ProblemReport } from '../shell/status.js';
import { ensureArtifact } from '../shell/artifacts/ensure.js';
import { writeFileAtomic } from '../shell/fs-atomic.js';
import { AgentMetrics } from '../shell/metrics.js';
import { RepoLoop } from '../shell/repo-loop.js';
import { GlowError } from '../base/errors.js';
import type { ConfigError } from '../config/errors.js';
import { loadRepository } from '../config/load.js';
import type { Snapshot } from '../config/model.js';
import { readRepo } from '../config/source.js';
import { routesOf } from '../render/routes.js';
import type { ProxyRoutes } from '../render/routes.js';
import type { NodePlan, PlannedInstance } from '../plan/node-plan.js';
import { Proxy } from '../proxy/proxy.js';
import type { ApplyResult } from '../proxy/proxy.js';
import { formatError } from '../shell/style.js';
import type { Style } from '../shell/style.js';
import { deliverFile, sha256OfFile } from './deliver.js';
import { devAppPlan, devPlan, DEV_NODE } from '../plan/box-plan.js';
import type { DevPlan, FoldedApp } from '../plan/box-plan.js';
import { instanceKey } from '../base/names.js';
import { definitionOf, diffBox } from '../reconcile/box.js';
import type { BoxStep } from '../reconcile/box.js';
import { launchOf } from '../render/launch.js';
import type { Launch } from '../render/launch.js';
import { killLeftovers, Supervisor } from './supervisor.js';
import type { Backoff, InstanceSpec } from './supervisor.js';
import type { Terminal } from './terminal.js';

export type DevBoxMode =
  /** `glow up`: the whole repository (or `node`'s share); `except`: apps whose process the developer runs. */
  | { readonly kind: 'box'; readonly node?: string; readonly except: readonly string[] }
  /** `glow dev APP`: the environment of one app, which Glow does not start. */
  | { readonly kind: 'app'; readonly app: string; readonly remote: boolean };

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

interface Applied {
  readonly snapshot: Snapshot;
  readonly dp: DevPlan;
}

export class DevBox {
  readonly metrics: AgentMetrics;
  readonly proxy: Proxy;
  readonly #opts: DevBoxOptions;
  readonly #term: Terminal;
  readonly #style: Style;
  readonly #supervisor: Supervisor;
  readonly #loop: RepoLoop;
  readonly #env: NodePaths;
  readonly #user = safeUser();
  readonly #restarts: Counter;
  readonly #startedAt = new Date();
  #applied: Applied | undefined;
  #appliedAt: Date | undefined;
  #loaded: { revision: string; at: Date } | undefined;
  #configErrors: ProblemReport[] = [];
  #applyErrors: ProblemReport[] = [];
  /** Messages already printed (errors are said once, not on every tick). */
  #said = new Set<string>();
  #routes: string | undefined;
  readonly #tls = new Map<string, string>();
  /** Apps not started in the last pass, and why (artifact or config file missing). */
  #blocked = new Map<string, string>();
  #shared: string[] = [];
  #stopping = false;
  /** Called after every pass that applied a plan (the CLI prints its banner after the first one). */
  onApplied: ((first: boolean) => void) | undefined;

  constructor(opts: DevBoxOptions, terminal: Terminal, style: Style) {
    this.#opts = opts;
    this.#term = terminal;
    this.#style = style;
    this.#env = { stateDir: opts.stateDir, glowCommand: [], podman: opts.podman };
    const node = opts.mode.kind === 'box' ? (opts.mode.node ?? DEV_NODE) : DEV_NODE;
    this.metrics = new AgentMetrics(node);
    this.#restarts = new Counter({
      name: 'glow_instance_restarts_total',
      help: 'Restarts of instances after they exited or crashed (the dev box supervisor).',
      labelNames: ['app', 'instance'],
      registers: [this.metrics.registry],
    });
    this.proxy = new Proxy({ log: proxyLogger(terminal) });
    this.#supervisor = new Supervisor({
      terminal,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      pidFile: `${opts.stateDir}/pids.json`,
      onChange: () => this.#updateMetrics(),
      onCrash: (key) => {
        const [app, n] = key.split('#');
        this.#restarts.inc({ app: app!, instance: n! });
      },
    });
    const stateRel = relative(opts.repo, opts.stateDir);
    const inRepo = stateRel !== '' && !stateRel.startsWith('..');
    this.#loop = new RepoLoop(
      {
        repo: opts.repo,
        debounceMs: opts.debounceMs,
        tickMs: opts.tickMs,
        ...(inRepo ? { ignore: (p: string) => p === opts.stateDir || p.startsWith(opts.stateDir + sep) } : {}),
        onError: (e) => this.#term.error(`${(e as Error).message}`),
      },
      () => this.#pass(),
    );
  }

  async start(): Promise<void> {
    if (this.#opts.mode.kind === 'box') {
      const left = killLeftovers(`${this.#opts.stateDir}/pids.json`);
      if (left.length) this.#term.note(`stopped what a glow up killed with SIGKILL left running: ${left.join(', ')}`);
    }
    await this.#loop.start();
  }

  /** Stops following the repository, stops every instance (each within its stop timeout), then the proxy. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#loop.stop();
    await this.#supervisor.stopAll();
    await this.proxy.stop(this.#opts.drainMs ?? 1000);
  }

  /** SIGKILL to every instance now. */
  kill(): void {
    this.#stopping = true;
    this.#supervisor.killAll();
  }

  get plan(): NodePlan | undefined {
    return this.#applied?.dp.plan;
  }

  get snapshot(): Snapshot | undefined {
    return this.#applied?.snapshot;
  }

  /** Listeners left to another process that serves them already (`glow dev` beside `glow up`). */
  get shared(): readonly string[] {
    return this.#shared;
  }

  /** Where the exec artifact of an instance is (unpacked in the state directory). */
  artifactDirOf(inst: PlannedInstance): string {
    return artifactDir(this.#env, inst.image, inst.version);
  }

  launchOf(inst: PlannedInstance): Launch {
    return launchOf(inst, { artifactDir: this.artifactDirOf(inst), podman: this.#opts.podman, session: this.#opts.session, stateDir: this.#opts.stateDir });
  }

  #outside(): Set<string> {
    const m = this.#opts.mode;
    return new Set(m.kind === 'box' ? m.except : [m.app]);
  }

  #plan(snapshot: Snapshot, source: ReturnType<typeof readRepo>): DevPlan {
    const m = this.#opts.mode;
    const base = { source, ...(this.#opts.metricsListen ? { metricsListen: this.#opts.metricsListen } : {}) };
    if (m.kind === 'app') return devAppPlan(snapshot, m.app, { ...base, remote: m.remote });
    return devPlan(snapshot, { ...base, ...(m.node !== undefined ? { node: m.node } : {}) });
  }

  async #pass(): Promise<void> {
    if (this.#stopping) return;
    const t0 = process.hrtime.bigint();
    const source = readRepo(this.#opts.repo);
    const result = loadRepository(source);
    const now = new Date();
    let candidate: Applied | undefined;
    let problems: ConfigError[] = [];
    if (result.ok) {
      this.#loaded = { revision: result.snapshot.revision, at: now };
      try {
        const dp = this.#plan(result.snapshot, source);
        problems = [...dp.conflicts];
        if (problems.length === 0) candidate = { snapshot: result.snapshot, dp };
      } catch (e) {
        if (!(e instanceof GlowError)) throw e;
        this.#configErrors = [{ code: e.code, message: e.message, at: now.toISOString() }];
        this.#sayOnce(`${result.snapshot.revision} ${e.code}`, () => this.#term.error(`${e.code} ${e.message}`));
      }
    } else {
      this.#loaded = { revision: result.revision, at: now };
      problems = [...result.errors];
    }
    if (problems.length) {
      this.#configErrors = problems.map((e) => ({ code: e.code, message: e.message, file: e.file, line: e.line, col: e.col, at: now.toISOString() }));
      const rev = this.#loaded.revision;
      this.#sayOnce(`${rev} errors`, () => {
        const n = problems.length;
        const what = result.ok ? `conflict${n === 1 ? '' : 's'} that only sharing one machine brings` : `error${n === 1 ? '' : 's'}`;
        const lines = problems.map((e) => formatError(e, this.#style));
        this.#term.error(`the repository has ${n} ${what} (revision ${rev}):\n${lines.join('\n')}`);
        this.#term.info(this.#applied ? `still running revision ${this.#applied.snapshot.revision}; fix the files and the box follows` : 'nothing runs yet; fix the files and the box follows');
      });
    } else if (candidate) {
      if (this.#configErrors.length) this.#term.info(`the repository is valid again: revision ${candidate.snapshot.revision}`);
      this.#configErrors = [];
    }
    this.metrics.configErrors.set(this.#configErrors.length);
    const first = !this.#applied && candidate !== undefined;
    const fresh = candidate !== undefined && candidate.snapshot.revision !== this.#applied?.snapshot.revision;
    if (candidate) this.#applied = candidate;
    const applied = this.#applied;
    if (!applied) {
      this.metrics.observeReconcile('skipped', t0);
      return;
    }
    if (fresh) this.#announce(applied.dp, applied.snapshot);
    const errors: ProblemReport[] = [];
    await this.#apply(applied, errors);
    this.#applyErrors = errors;
    if (fresh || !this.#appliedAt) this.#appliedAt = now;
    this.#updateMetrics();
    this.metrics.observeReconcile(errors.length ? 'error' : 'ok', t0);
    if (fresh) this.onApplied?.(first);
  }

  /** Said once per revision: what was folded together. */
  #announce(dp: DevPlan, snapshot: Snapshot): void {
    this.#term.setKeys(dp.plan.instances.map((i) => instanceKey(i.app, i.instance)));
    for (const f of dp.folded) {
      const others = f.folded.map((o) => `#${o.instance} (${o.node}, ${o.file})`).join(', ');
      const why = snapshot.apps.get(f.app)?.provides.length ? 'they would bind the same ports' : 'the box runs one instance of each app';
      this.#sayOnce(`folded ${f.app} ${f.kept.instance} ${others}`, () => this.#term.note(`${f.app}: one instance on this machine, #${f.kept.instance}; ${others} folded into it (${why})`));
    }
  }

  async #routesOf(plan: NodePlan): Promise<ProxyRoutes> {
    const routes = routesOf(plan, this.#env);
    if (!this.#opts.sharedFrontends) return routes;
    let served: ReadonlyMap<string, string>;
    try {
      served = await this.#opts.sharedFrontends();
    } catch {
      served = new Map();
    }
    const keep = routes.listeners.filter((l) => served.get(`${l.protocol === 'udp' ? 'udp' : 'tcp'} ${l.bind}:${l.port}`) !== l.service);
    this.#shared = routes.listeners.filter((l) => !keep.includes(l)).map((l) => `${l.bind}:${l.port}`);
    return { ...routes, listeners: keep };
  }

  async #apply({ snapshot, dp }: Applied, errors: ProblemReport[]): Promise<void> {
    const plan = dp.plan;
    const outside = this.#outside();
    const routes = await this.#routesOf(plan);
    const routesText = JSON.stringify(routes);
    const files = new Map<string, string>();
    for (const f of plan.files) {
      const sha = sha256OfFile(f.path);
      if (sha !== undefined) files.set(f.path, sha);
    }
    const steps = diffBox({ plan, routes: routesText, except: outside }, { instances: this.#supervisor.definitions(), files, routes: this.#routes, tlsFiles: this.#tls });
    const said = new Set<string>();
    const fail = (e: unknown, app?: string) => {
      const err = e as GlowError;
      const report: ProblemReport = { code: err.code ?? 'GLOW_E_APPLY', message: err.message, ...(app ? { unit: app } : {}), at: new Date().toISOString() };
      errors.push(report);
      const key = `${report.code} ${report.message}`;
      said.add(key);
      if (!this.#said.has(key)) this.#term.error(`${report.code} ${report.message}`);
    };
    const blocked = new Map<string, string>();
    for (const step of steps) {
      if (this.#stopping) return;
      const app = appOf(step);
      if (app && blocked.has(app) && (step.kind === 'start' || step.kind === 'restart' || step.kind === 'signal')) continue;
      try {
        await this.#step(step, snapshot, plan, routes, routesText);
      } catch (e) {
        fail(e, app);
        if (app) blocked.set(app, (e as Error).message);
      }
    }
    for (const [app, why] of blocked) if (!this.#blocked.has(app)) this.#term.error(`${app} is not started: ${why.split(':')[0]}`);
    this.#blocked = blocked;
    // Errors are said once while they last; one that went away and comes back is said again.
    for (const k of [...this.#said]) if (k.startsWith('GLOW_E_') && !said.has(k)) this.#said.delete(k);
    for (const k of said) this.#said.add(k);
  }

  async #step(step: BoxStep, snapshot: Snapshot, plan: NodePlan, routes: ProxyRoutes, routesText: string): Promise<void> {
    switch (step.kind) {
      case 'ensure-artifact': {
        const source = snapshot.settings.artifacts;
        if (source === undefined) throw new GlowError('GLOW_E_ARTIFACT_SOURCE', `app \`${step.app}\` uses the exec runtime but glow.yaml names no \`artifacts\``);
        const r = await ensureArtifact({ stateDir: this.#opts.stateDir, source, repoDir: this.#opts.repo, image: step.image, version: step.version, command: plan.instances.find((i) => i.app === step.app)?.command, ...(step.digest ? { digest: step.digest } : {}) });
        if (r.fetched) this.#term.note(`artifact ${step.image} ${step.version} unpacked in ${r.dir}`);
        return;
      }
      case 'write-config':
        deliverFile(step.file.path, snapshot.files.get(step.file.source)!, step.file.mode, this.#user);
        this.#term.note(`config file ${step.file.path} ← ${step.file.source} (${step.file.app})`);
        return;
      case 'write-tls': {
        const t = plan.tlsFiles.find((x) => x.source === step.source)!;
        writeFileAtomic(tlsStorePath(this.#env, step.source), snapshot.files.get(step.source)!, 0o600);
        this.#tls.set(step.source, t.sha256);
        return;
      }
      case 'apply-routes': {
        const r = await this.proxy.apply(routes);
        this.#routes = routesText;
        this.#reportRoutes(r);
        return;
      }
      case 'stop':
        this.#term.info(`stopping ${step.key}: ${step.reason}`);
        await this.#supervisor.stop(step.key);
        this.#term.info(`stopped ${step.key}`);
        return;
      case 'start': {
        const spec = this.#spec(step.instance);
        this.#supervisor.start(spec);
        const pid = this.#supervisor.status().find((s) => s.key === spec.key)?.pid;
        this.#term.info(`started ${spec.key} (${step.instance.image} ${step.instance.version}, ${step.instance.runtime}${pid ? `, pid ${pid}` : ''})`);
        return;
      }
      case 'restart': {
        const spec = this.#spec(step.instance);
        this.#term.info(`restarting ${spec.key}: ${step.reason}`);
        await this.#supervisor.restart(spec);
        return;
      }
      case 'signal': {
        const key = instanceKey(step.instance.app, step.instance.instance);
        const sent = this.#supervisor.signal(key, step.signal as NodeJS.Signals);
        this.#term.info(`${step.path} changed: ${sent ? `${step.signal} sent to ${key}` : `${key} does not run now; it reads the new file when it starts`}`);
        return;
      }
      case 'notify-change': {
        const f = step.file;
        const what = f.onChange === 'reload' ? `send it ${f.signal}` : f.onChange === 'restart' ? 'restart it' : 'nothing to do (on_change: none)';
        this.#term.info(`${f.path} changed; ${f.app} runs outside Glow: ${what}`);
        return;
      }
    }
  }

  #spec(inst: PlannedInstance): InstanceSpec {
    return {
      key: instanceKey(inst.app, inst.instance),
      app: inst.app,
      instance: inst.instance,
      version: inst.version,
      definition: definitionOf(inst),
      launch: this.launchOf(inst),
      stopTimeoutMs: inst.stopTimeoutMs,
    };
  }

  #reportRoutes(r: ApplyResult): void {
    for (const f of r.failed) {
      const port = Number(f.key.slice(f.key.lastIndexOf(':') + 1));
      const hint =
        f.error === 'EACCES' && port < 1024
          ? `ports below 1024 need root on Linux: give the exposure a port ≥ 1024 for the dev box, or allow it once with \`sudo sysctl net.ipv4.ip_unprivileged_port_start=${port}\``
          : f.error === 'EADDRINUSE'
            ? `another process listens there (\`ss -ltnp 'sport = :${port}'\` says which); the proxy tries again every 2 s`
            : 'the proxy tries again every 2 s';
      this.#term.error(`proxy: cannot listen on ${f.key} (${f.error}): ${hint}`);
    }
  }

  #sayOnce(key: string, say: () => void): void {
    if (this.#said.has(key)) return;
    this.#said.add(key);
    say();
  }

  #instances(): InstanceStatus[] {
    const plan = this.#applied?.dp.plan;
    const outside = this.#outside();
    const children = new Map(this.#supervisor.status().map((c) => [c.key, c]));
    const out: InstanceStatus[] = [];
    const seen = new Set<string>();
    for (const i of plan?.instances ?? []) {
      const key = instanceKey(i.app, i.instance);
      seen.add(key);
      const c = children.get(key);
      const base = { unit: key, app: i.app, instance: i.instance, version: i.version, desired: true };
      if (c) out.push({ ...base, ...childState(c.state), mainPid: c.pid, since: c.since.toISOString() });
      else out.push({ ...base, activeState: 'inactive', subState: outside.has(i.app) ? 'outside glow' : this.#blocked.has(i.app) ? 'blocked' : 'dead', mainPid: 0, since: undefined });
    }
    for (const [key, c] of children) {
      if (seen.has(key)) continue;
      out.push({ unit: key, app: c.app, instance: c.instance, version: c.version, ...childState(c.state), mainPid: c.pid, since: c.since.toISOString(), desired: false });
    }
    return out;
  }

  #updateMetrics(): void {
    const plan = this.#applied?.dp.plan;
    if (plan && this.#appliedAt) this.metrics.setApplied(plan.revision, this.#appliedAt, this.#instances());
  }

  status(): DevBoxStatus {
    const dp = this.#applied?.dp;
    return {
      node: dp?.plan.node ?? (this.#opts.mode.kind === 'box' ? (this.#opts.mode.node ?? DEV_NODE) : DEV_NODE),
      repo: this.#opts.repo,
      revision: dp?.plan.revision,
      appliedAt: this.#appliedAt?.toISOString(),
      loadedRevision: this.#loaded?.revision,
      loadedAt: this.#loaded?.at.toISOString(),
      configErrors: this.#configErrors,
      applyErrors: this.#applyErrors,
      proxy: { activeState: this.#stopping ? 'deactivating' : 'active', since: this.#startedAt.toISOString(), frontends: this.proxy.status().frontends },
      instances: this.#instances(),
      sinks: [],
      devbox: {
        mode: this.#opts.mode,
        stateDir: this.#opts.stateDir,
        pid: process.pid,
        folded: dp?.folded ?? [],
        outside: [...this.#outside()].sort(),
        metricsListen: dp?.plan.metricsListen,
      },
    };
  }
}

function appOf(step: BoxStep): string | undefined {
  switch (step.kind) {
    case 'ensure-artifact':
      return step.app;
    case 'write-config':
    case 'notify-change':
      return step.file.app;
    case 'start':
    case 'restart':
    case 'signal':
      return step.instance.app;
    default:
      return undefined;
  }
}

function childState(s: 'running' | 'backoff' | 'stopping'): { activeState: string; subState: string } {
  // systemd's words, so that `glow status` reads the same on a node and on a box.
  if (s === 'running') return { activeState: 'active', subState: 'running' };
  if (s === 'backoff') return { activeState: 'activating', subState: 'auto-restart' };
  return { activeState: 'deactivating', subState: 'stop-sigterm' };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'you';
  }
}

/** The in-process proxy's log, as lines of the terminal: warnings and errors, and when an upstream is back. */
function proxyLogger(term: Terminal): Logger {
  const FIELDS = ['frontend', 'service', 'upstream', 'reason', 'err', 'code', 'cert'];
  const QUIET = new Set(['listener could not bind; retrying']); // said by the box with its fix (reportRoutes)
  const SHOWN_INFO = new Set(['listener bound', 'upstream up by active checks']);
  // An upstream that stays down is ejected again and again: said once, until it is up again.
  const ejected = new Set<string>();
  return pino(
    { level: 'info', base: null, timestamp: false },
    {
      write(line: string) {
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        const level = Number(rec.level);
        const msg = String(rec.msg ?? '');
        if (QUIET.has(msg) || (level < 40 && !SHOWN_INFO.has(msg))) return;
        const upstream = `${String(rec.service)} ${String(rec.upstream)}`;
        if (msg === 'upstream up by active checks') ejected.delete(upstream);
        if (msg.startsWith('upstream ejected')) {
          if (ejected.has(upstream)) return;
          ejected.add(upstream);
        }
        const extra = FIELDS.filter((k) => rec[k] !== undefined).map((k) => `${k} ${typeof rec[k] === 'string' ? rec[k] : JSON.stringify(rec[k])}`);
        const text = `proxy: ${msg}${extra.length ? ` (${extra.join(', ')})` : ''}`;
        if (level >= 50) term.error(text);
        else term.note(text);
      },
    },
  );
}
