/**
 * The child-process runtime of the pass (src/shell/pass.ts): how the developer box plans a snapshot (the box's
 * plan, src/plan/box-plan.ts, whose conflicts that only sharing one machine brings keep it from being applied),
 * observes what it runs (the supervisor's instances, the files at their real paths, the routes of its
 * in-process proxy), diffs (src/reconcile/box.ts) and carries out a step: artifacts, config files in place, routes,
 * and the instances (src/box/supervisor.ts). What the box says goes to the terminal, each thing once while it
 * lasts.
 */
import { artifactDir, tlsStorePath } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import { instanceKey } from '../base/names.js';
import type { ConfigError } from '../config/errors.js';
import type { Snapshot } from '../config/model.js';
import type { RepoSource } from '../config/source.js';
import { devAppPlan, devPlan } from '../plan/box-plan.js';
import type { DevPlan } from '../plan/box-plan.js';
import type { NodePlan, PlannedInstance } from '../plan/node-plan.js';
import type { Proxy, ApplyResult } from '../proxy/proxy.js';
import { diffBox } from '../reconcile/box.js';
import type { BoxStep, ObservedBox } from '../reconcile/box.js';
import { definitionOf } from '../reconcile/common.js';
import { launchOf } from '../render/launch.js';
import type { Launch } from '../render/launch.js';
import { routesOf } from '../render/routes.js';
import type { ProxyRoutes } from '../render/routes.js';
import { ensureStepArtifact } from '../shell/artifacts/ensure.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { Applied, PassResult, PassRuntime, Planned, Rejection, StepApp, StepContext } from '../shell/pass.js';
import type { InstanceStatus, ProblemReport } from '../shell/status.js';
import { formatError } from '../shell/style.js';
import type { Style } from '../shell/style.js';
import { canWrite, deliverFile, nearestDir, pathError, sha256OfFile } from './deliver.js';
import type { InstanceSpec, Supervisor } from './supervisor.js';
import type { Terminal } from './terminal.js';

export type DevBoxMode =
  /** `glow up`: the whole repository (or `node`'s share); `except`: apps whose process the developer runs. */
  | { readonly kind: 'box'; readonly node?: string; readonly except: readonly string[] }
  /** `glow dev APP`: the environment of one app, which Glow does not start. */
  | { readonly kind: 'app'; readonly app: string; readonly remote: boolean };

export interface BoxRuntimeOptions {
  readonly repo: string;
  readonly stateDir: string;
  readonly mode: DevBoxMode;
  /** Overrides glow.yaml's metrics endpoint (the plan's metricsListen). */
  readonly metricsListen?: string;
  readonly podman: string;
  /** The developer's environment (PATH, HOME, … for the instances). */
  readonly session: Readonly<Record<string, string | undefined>>;
  /** Frontends (`tcp 127.0.0.1:19000` → service) that another process serves already: left out of our routes. */
  readonly sharedFrontends?: () => Promise<ReadonlyMap<string, string>>;
  /** The developer's user name, for the fix of a path that may not be written. */
  readonly user: string;
}

/** What the box runs now, and the routes it should run (they depend on what another box serves already). */
export interface BoxObserved {
  readonly observed: ObservedBox;
  readonly routes: ProxyRoutes;
  readonly routesText: string;
}

type Ctx = StepContext<DevPlan, BoxObserved>;

export class BoxRuntime implements PassRuntime<DevPlan, BoxObserved, BoxStep> {
  readonly #opts: BoxRuntimeOptions;
  readonly #term: Terminal;
  readonly #style: Style;
  readonly #supervisor: Supervisor;
  readonly #proxy: Proxy;
  readonly #env: NodePaths;
  #dp: DevPlan | undefined;
  /** Messages already printed (errors are said once, not on every tick). */
  readonly #said = new Set<string>();
  /** Errors said in the pass in progress. */
  #saidNow = new Set<string>();
  #routes: string | undefined;
  readonly #tls = new Map<string, string>();
  /** Apps not started (or not changed) in the last pass, and the failure that blocked each (artifact or config
   * file missing). */
  #blocked: ReadonlyMap<string, ProblemReport> = new Map();
  /** The first failure of each app in the pass in progress. */
  #failedNow = new Map<string, ProblemReport>();
  #shared: string[] = [];
  /** Called after every pass that applied a new revision (the CLI prints its banner after the first one). */
  onApplied: ((first: boolean) => void) | undefined;
  /** Asks for a pass now (a config directory became writable). */
  onRetry: ((reason: string) => void) | undefined;
  /** Config files that could not be written in the pass in progress, and in the last one. */
  #unwritableNow = new Set<string>();
  #unwritable = new Set<string>();
  #watch: NodeJS.Timeout | undefined;

  constructor(opts: BoxRuntimeOptions, terminal: Terminal, style: Style, supervisor: Supervisor, proxy: Proxy) {
    this.#opts = opts;
    this.#term = terminal;
    this.#style = style;
    this.#supervisor = supervisor;
    this.#proxy = proxy;
    this.#env = { stateDir: opts.stateDir, glowCommand: [], podman: opts.podman };
  }

  /** Apps of the plan that Glow does not run here. */
  outside(): Set<string> {
    const m = this.#opts.mode;
    return new Set(m.kind === 'box' ? m.except : [m.app]);
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

  plan(snapshot: Snapshot, source: RepoSource): Planned<DevPlan> {
    const m = this.#opts.mode;
    const base = { source, ...(this.#opts.metricsListen ? { metricsListen: this.#opts.metricsListen } : {}) };
    const dp = m.kind === 'app' ? devAppPlan(snapshot, m.app, { ...base, remote: m.remote }) : devPlan(snapshot, { ...base, ...(m.node !== undefined ? { node: m.node } : {}) });
    return { plan: dp, conflicts: dp.conflicts };
  }

  async observe({ plan: dp }: Applied<DevPlan>): Promise<BoxObserved> {
    const routes = await this.#routesOf(dp.plan);
    const files = new Map<string, string>();
    for (const f of dp.plan.files) {
      const sha = sha256OfFile(f.path);
      if (sha !== undefined) files.set(f.path, sha);
    }
    return { observed: { instances: this.#supervisor.definitions(), files, routes: this.#routes, tlsFiles: this.#tls }, routes, routesText: JSON.stringify(routes) };
  }

  diff({ plan: dp }: Applied<DevPlan>, o: BoxObserved): BoxStep[] {
    return diffBox({ plan: dp.plan, routes: o.routesText, except: this.outside() }, o.observed);
  }

  /** Any failure of an app's step keeps it from being started, restarted or signalled in this pass. */
  appOf(step: BoxStep): StepApp | undefined {
    switch (step.kind) {
      case 'ensure-artifact':
        return { app: step.app, blocks: true, held: false };
      case 'write-config':
      case 'notify-change':
        return { app: step.file.app, blocks: true, held: false };
      case 'start':
      case 'restart':
      case 'signal':
        return { app: step.instance.app, blocks: true, held: true };
      default:
        return undefined;
    }
  }

  unitOf(step: BoxStep): string | undefined {
    return this.appOf(step)?.app;
  }

  rejected(r: Rejection): void {
    if (r.kind === 'unplannable') {
      for (const e of r.errors) this.#sayOnce(`${r.revision} ${e.code}`, () => this.#term.error(`${e.code} ${e.message}`));
      return;
    }
    this.#sayOnce(`${r.revision} errors`, () => {
      const n = r.errors.length;
      const what = r.kind === 'conflicts' ? `conflict${n === 1 ? '' : 's'} that only sharing one machine brings` : `error${n === 1 ? '' : 's'}`;
      const lines = r.errors.map((e) => formatError(e as ConfigError, this.#style));
      this.#term.error(`the repository has ${n} ${what} (revision ${r.revision}):\n${lines.join('\n')}`);
      this.#term.info(r.keeping ? `still running revision ${r.keeping}; fix the files and the box follows` : 'nothing runs yet; fix the files and the box follows');
    });
  }

  accepted(revision: string, after: boolean): void {
    if (after) this.#term.info(`the repository is valid again: revision ${revision}`);
  }

  /** Said once per revision: what was folded together. */
  applying({ snapshot, plan: dp }: Applied<DevPlan>, fresh: boolean): void {
    this.#dp = dp;
    this.#saidNow = new Set();
    this.#failedNow = new Map();
    this.#unwritableNow = new Set();
    if (!fresh) return;
    this.#checkPaths(dp);
    this.#term.setKeys(dp.plan.instances.map((i) => instanceKey(i.app, i.instance)));
    for (const f of dp.folded) {
      const others = f.folded.map((o) => `#${o.instance} (${o.node}, ${o.file})`).join(', ');
      const why = snapshot.apps.get(f.app)?.provides.length ? 'they would bind the same ports' : 'the box runs one instance of each app';
      this.#sayOnce(`folded ${f.app} ${f.kept.instance} ${others}`, () => this.#term.note(`${f.app}: one instance on this machine, #${f.kept.instance}; ${others} folded into it (${why})`));
    }
  }

  stepFailed(report: ProblemReport, step: BoxStep): void {
    if (step.kind === 'write-config' && report.code === 'GLOW_E_DEVBOX_PATH') this.#unwritableNow.add(step.file.path);
    const app = this.appOf(step)?.app;
    if (app !== undefined && !this.#failedNow.has(app)) this.#failedNow.set(app, report);
    const key = `${report.code} ${report.message}`;
    this.#saidNow.add(key);
    if (!this.#said.has(key)) this.#term.error(key);
  }

  async settle(result: PassResult<DevPlan, BoxStep>): Promise<void> {
    if (result.halted) return;
    const blocked = new Map<string, ProblemReport>();
    for (const [app, why] of result.blocked) blocked.set(app, this.#failedNow.get(app) ?? { code: 'GLOW_E_APPLY', message: why, at: new Date().toISOString() });
    for (const [app, report] of blocked) if (!this.#blocked.has(app)) this.#term.error(this.#blockedLine(app, report));
    this.#blocked = blocked;
    this.#watchPaths(this.#unwritableNow);
    // Errors are said once while they last; one that went away and comes back is said again.
    for (const k of [...this.#said]) if (k.startsWith('GLOW_E_') && !this.#saidNow.has(k)) this.#said.delete(k);
    for (const k of this.#saidNow) this.#said.add(k);
  }

  passed(result: PassResult<DevPlan, BoxStep> | undefined): void {
    if (result?.fresh) this.onApplied?.(result.first);
  }

  async execute(step: BoxStep, { applied: { snapshot, plan: dp, dir }, observed }: Ctx): Promise<void> {
    switch (step.kind) {
      case 'ensure-artifact': {
        const r = await ensureStepArtifact(snapshot, step, { stateDir: this.#opts.stateDir, repoDir: dir });
        if (r.fetched) this.#term.note(`artifact ${step.image} ${step.version} unpacked in ${r.dir}`);
        return;
      }
      case 'write-config':
        deliverFile(step.file.path, snapshot.files.get(step.file.source)!, step.file.mode, this.#opts.user);
        this.#term.note(`config file ${step.file.path} ← ${step.file.source} (${step.file.app})`);
        return;
      case 'write-tls': {
        const t = dp.plan.tlsFiles.find((x) => x.source === step.source)!;
        writeFileAtomic(tlsStorePath(this.#env, step.source), snapshot.files.get(step.source)!, 0o600);
        this.#tls.set(step.source, t.sha256);
        return;
      }
      case 'apply-routes': {
        const unbound = this.#proxy.status().frontends.filter((f) => !f.bound && !f.draining).map((f) => f.key);
        const r = await this.#proxy.apply(observed.routes);
        this.#routes = observed.routesText;
        this.#reportRoutes(r, unbound);
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

  /** Every planned instance (those Glow does not run say why), and those still stopping. */
  instances(): InstanceStatus[] {
    const plan = this.#dp?.plan;
    const outside = this.outside();
    const children = new Map(this.#supervisor.status().map((c) => [c.key, c]));
    const out: InstanceStatus[] = [];
    const seen = new Set<string>();
    for (const i of plan?.instances ?? []) {
      const key = instanceKey(i.app, i.instance);
      seen.add(key);
      const c = children.get(key);
      const b = outside.has(i.app) ? undefined : this.#blocked.get(i.app);
      const base = { unit: key, app: i.app, instance: i.instance, version: i.version, desired: true, ...(b ? { blocked: { code: b.code, message: b.message } } : {}) };
      // What runs, and what the repository asks for when that is not it (a version whose artifact is missing).
      if (c) out.push({ ...base, version: c.version, ...(c.version !== i.version ? { wanted: i.version } : {}), ...childState(c.state), mainPid: c.pid, since: c.since.toISOString() });
      else out.push({ ...base, activeState: 'inactive', subState: outside.has(i.app) ? 'outside glow' : b ? 'blocked' : 'dead', mainPid: 0, since: undefined });
    }
    for (const [key, c] of children) {
      if (seen.has(key)) continue;
      out.push({ unit: key, app: c.app, instance: c.instance, version: c.version, ...childState(c.state), mainPid: c.pid, since: c.since.toISOString(), desired: false });
    }
    return out;
  }

  /**
   * A config file in place whose directory this user may not write: nothing to write now, but the next change
   * of it could not be written. Said at start (and for each new revision), not first at that change.
   */
  #checkPaths(dp: DevPlan): void {
    // (Files of apps outside Glow too: the box writes them for the developer's process.)
    for (const f of dp.plan.files) {
      // (A file not in place, or another, is to be written now: that write says why it cannot.)
      if (sha256OfFile(f.path) !== f.sha256 || canWrite(f.path)) continue;
      const e = pathError(f.path, Object.assign(new Error('EACCES'), { code: 'EACCES' }), this.#opts.user);
      this.#sayOnce(`${dp.plan.revision} in place ${f.path}`, () =>
        this.#term.error(`${e.code} ${e.message.replace(/^cannot write the config file (\S+): /, 'the config file $1 is in place, but a change of it could not be written: ')}`),
      );
    }
  }

  /**
   * Config files that could not be written are written as soon as their directory is writable: it is looked at
   * twice a second (a cheap access(2) each), and a pass runs at once when it is — not at the next tick.
   */
  #watchPaths(paths: ReadonlySet<string>): void {
    const fresh = [...paths].filter((p) => !this.#unwritable.has(p));
    this.#unwritable = new Set(paths);
    for (const p of fresh) this.#term.info(`the box writes ${p} as soon as ${nearestDir(p)} is writable by ${this.#opts.user} (it looks twice a second)`);
    if (!paths.size) return this.close();
    if (this.#watch) return;
    this.#watch = setInterval(() => {
      const ready = [...this.#unwritable].find((p) => canWrite(p));
      if (!ready) return;
      this.close();
      this.#unwritable = new Set();
      this.onRetry?.(`${nearestDir(ready)} is writable now`);
    }, 500);
    this.#watch.unref();
  }

  /** Stops looking at config directories (the box stops). */
  close(): void {
    clearInterval(this.#watch);
    this.#watch = undefined;
  }

  /** The line that says an app is blocked: what keeps running, if anything, and which error (said just before). */
  #blockedLine(app: string, report: ProblemReport): string {
    const wanted = this.#dp?.plan.instances.find((i) => i.app === app)?.version;
    const running = this.#supervisor.status().filter((c) => c.app === app && c.state !== 'stopping');
    const why = `${report.code}, said above`;
    if (!running.length) return `${app} is not started (${why})`;
    const versions = [...new Set(running.map((c) => c.version))].join(', ');
    return wanted !== undefined && !running.some((c) => c.version === wanted)
      ? `${app} keeps running ${versions}: ${wanted} is not started (${why})`
      : `${app} keeps running ${versions} as it was: the change is not applied (${why})`;
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

  #reportRoutes(r: ApplyResult, unboundBefore: readonly string[]): void {
    const frontends = new Map(this.#proxy.status().frontends.map((f) => [f.key, f]));
    // One that could not bind until now and binds with these routes says so, as the proxy's own retry does
    // (src/box/proxy-log.ts).
    for (const key of unboundBefore) if (frontends.get(key)?.bound) this.#term.note(`proxy: listener bound (frontend ${key})`);
    for (const f of r.failed) {
      const routes = frontends.get(f.key)?.routes ?? [];
      const what = routes.length ? ` for ${routes.map((x) => `${x.kind} ${x.name}`).join(', ')}` : '';
      const port = Number(f.key.slice(f.key.lastIndexOf(':') + 1));
      const hint =
        f.error === 'EACCES' && port < 1024
          ? `ports below 1024 need root on Linux: give the exposure a port ≥ 1024 for the dev box, or allow it once with \`sudo sysctl net.ipv4.ip_unprivileged_port_start=${port}\``
          : f.error === 'EADDRINUSE'
            ? `another process listens there (\`ss -ltnp 'sport = :${port}'\` says which); the proxy tries again every 2 s`
            : 'the proxy tries again every 2 s';
      this.#term.error(`GLOW_E_PROXY_BIND proxy: cannot listen on ${f.key}${what} (${f.error}): ${hint}`);
    }
  }

  #sayOnce(key: string, say: () => void): void {
    if (this.#said.has(key)) return;
    this.#said.add(key);
    say();
  }
}

function childState(s: 'running' | 'backoff' | 'stopping'): { activeState: string; subState: string } {
  // systemd's words, so that `glow status` reads the same on a node and on a box.
  if (s === 'running') return { activeState: 'active', subState: 'running' };
  if (s === 'backoff') return { activeState: 'activating', subState: 'auto-restart' };
  return { activeState: 'deactivating', subState: 'stop-sigterm' };
}
