/**
 * The pass, written once for glowd (src/systemd/agent.ts) and the developer box (src/box/devbox.ts): on start, on
 * every change of the repository (src/shell/repo-loop.ts) and on a tick, read and load the whole repository,
 * plan it, observe what runs, diff, and carry the steps out. A runtime says how to plan, observe, diff and carry
 * out one step, and what it tells people; the rules are here, once:
 *
 *   an invalid repository  the last good snapshot keeps being applied (a crashed instance is still started
 *                          again), every error is reported (status, metrics, the runtime's log or terminal),
 *                          and nothing is stopped for it. A repository that loads but cannot be planned here
 *                          (a node it lacks, conflicts that only sharing one machine brings) is invalid too.
 *   a failed step          reported with a registered code (src/base/codes.ts; an errno underneath is kept as
 *                          `errno`), then the next step; a failure that blocks its app holds back that app's
 *                          later steps, and only that app's
 *   the status of a node   the revision applied and the one last read, the errors of both, the instances
 *   one tree per pass      the repository is resolved once (a link switched by `glow sync` to its target's real
 *                          path) and every file is read under that path: a pass reads one revision, never a mix
 *                          of two; the tree's `.glow-sync.json`, read from the same path, says which commit it is
 */
import { asGlowError, GlowError } from '../base/errors.js';
import type { GlowCode } from '../base/codes.js';
import { ConfigError } from '../config/errors.js';
import { loadRepository } from '../config/load.js';
import type { Snapshot } from '../config/model.js';
import { readRepo } from '../config/source.js';
import type { RepoSource } from '../config/source.js';
import type { SinkStatus } from '../logs/forwarder.js';
import type { AgentMetrics } from './metrics.js';
import { readRevisionMeta } from '../sync/publish.js';
import { RepoLoop, resolveRepoTarget } from './repo-loop.js';
import type { RepoTarget } from './repo-loop.js';
import type { AgentStatus, InstanceStatus, ProblemReport, RepoTree } from './status.js';

/** A good snapshot and the runtime's plan of it: what a pass applies. */
export interface Applied<P> {
  readonly snapshot: Snapshot;
  readonly plan: P;
  /** The tree the snapshot was read from (a link resolved once): what its relative paths (`artifacts: ./x`) name. */
  readonly dir: string;
}

/** The runtime's plan of a snapshot; with conflicts, it is not applied. */
export interface Planned<P> {
  readonly plan: P;
  readonly conflicts: readonly ConfigError[];
}

/** The app a step is for, and its part in "one app's failure blocks only that app". */
export interface StepApp {
  readonly app: string;
  /** A failure of this step blocks its app for the rest of the pass. */
  readonly blocks: boolean;
  /** This step is skipped while its app is blocked. */
  readonly held: boolean;
}

export interface StepContext<P, O> {
  readonly applied: Applied<P>;
  readonly observed: O;
  /** Whether the pass is to stop (the runtime stops): a long step should give up. */
  readonly stopped: boolean;
  /** Reports a problem of this step without failing it (a rolling restart stopped at an unhealthy instance). */
  fail(code: GlowCode, message: string, unit?: string): void;
}

/** Why the repository as last read is not applied. */
export interface Rejection {
  /** `errors`: it does not load; `conflicts`: its plan conflicts here; `unplannable`: it cannot be planned here. */
  readonly kind: 'errors' | 'conflicts' | 'unplannable';
  readonly revision: string;
  readonly errors: readonly GlowError[];
  /** The revision read is not the one read by the pass before. */
  readonly changed: boolean;
  /** The revision that keeps being applied, if any. */
  readonly keeping: string | undefined;
}

export interface PassResult<P, S> {
  readonly applied: Applied<P>;
  /** The first revision this runtime applies. */
  readonly first: boolean;
  /** A revision other than the one applied before. */
  readonly fresh: boolean;
  readonly reason: string;
  readonly steps: readonly S[];
  readonly errors: readonly ProblemReport[];
  /** Apps blocked in this pass, with the message of the failure that blocked each. */
  readonly blocked: ReadonlyMap<string, string>;
  /** The runtime stopped before the last step. */
  readonly halted: boolean;
}

/** How a runtime plans, observes, diffs and carries out a step, and what it says about it. */
export interface PassRuntime<P, O, S> {
  /** This runtime's plan of a snapshot that loads; throws a GlowError when it cannot be planned here. */
  plan(snapshot: Snapshot, source: RepoSource): Planned<P>;
  observe(applied: Applied<P>): Promise<O>;
  diff(applied: Applied<P>, observed: O): readonly S[];
  appOf(step: S): StepApp | undefined;
  execute(step: S, ctx: StepContext<P, O>): Promise<void>;
  /** What a failed step's report names as its unit. */
  unitOf(step: S, error: unknown): string | undefined;
  /** Every instance, for status and metrics. */
  instances(): InstanceStatus[];

  /** The repository as read is not applied (said on every pass: `changed` tells a new revision). */
  rejected(r: Rejection): void;
  /** The repository as read is applied; `after` is true when the pass before rejected it. */
  accepted?(revision: string, after: boolean): void;
  /** What is applied, on every pass before observing (`fresh`: a revision other than the one before). */
  applying?(applied: Applied<P>, fresh: boolean): void;
  /** The steps about to be carried out. */
  planned?(applied: Applied<P>, steps: readonly S[], info: { readonly reason: string; readonly fresh: boolean; readonly loadMs: number; readonly observeMs: number }): void;
  stepFailed(report: ProblemReport, step: S): void;
  /** After the last step, before status and metrics are updated. */
  settle?(result: PassResult<P, S>): Promise<void>;
  /** After every pass; undefined when nothing good was ever read. */
  passed?(result: PassResult<P, S> | undefined): void;
}

export interface PassOptions {
  readonly repo: string;
  readonly debounceMs: number;
  readonly tickMs: number;
  /** Paths under the repository that are not the repository's business (the developer box's own state). */
  readonly ignore?: (path: string) => boolean;
  /** A pass that threw, or the watcher's error. */
  readonly onError: (e: unknown) => void;
  /** The repository now leads to another tree (a link switched): for the runtime's log. */
  readonly onSwitch?: (target: RepoTarget) => void;
}

/** The parts of the status that the runtime knows and the pass does not. */
export interface StatusParts {
  readonly node: string;
  readonly proxy: AgentStatus['proxy'];
  readonly sinks: readonly SinkStatus[];
}

export class Pass<P, O, S> {
  readonly #opts: PassOptions;
  readonly #runtime: PassRuntime<P, O, S>;
  readonly #metrics: AgentMetrics;
  readonly #loop: RepoLoop;
  #applied: Applied<P> | undefined;
  /** The revision of the last pass that got through observing and its steps. */
  #completed: string | undefined;
  #appliedAt: Date | undefined;
  #appliedTree: RepoTree | undefined;
  #loaded: { revision: string; at: Date; tree: RepoTree | undefined } | undefined;
  #lastPass: AgentStatus['lastPass'];
  #configErrors: ProblemReport[] = [];
  #applyErrors: ProblemReport[] = [];
  #halted = false;

  constructor(opts: PassOptions, runtime: PassRuntime<P, O, S>, metrics: AgentMetrics) {
    this.#opts = opts;
    this.#runtime = runtime;
    this.#metrics = metrics;
    this.#loop = new RepoLoop(
      {
        repo: opts.repo,
        debounceMs: opts.debounceMs,
        tickMs: opts.tickMs,
        ...(opts.ignore ? { ignore: opts.ignore } : {}),
        onError: opts.onError,
        ...(opts.onSwitch ? { onSwitch: opts.onSwitch } : {}),
      },
      (reason) => this.#pass(reason),
    );
  }

  /** Starts following the repository; resolves when the first pass is done. */
  start(): Promise<void> {
    return this.#loop.start();
  }

  /** Stops following the repository; resolves when the pass in progress gave up. */
  async stop(): Promise<void> {
    this.#halted = true;
    await this.#loop.stop();
  }

  /** No further step, no further pass (the runtime is being killed). */
  halt(): void {
    this.#halted = true;
  }

  get stopped(): boolean {
    return this.#halted || this.#loop.stopped;
  }

  /** One pass now, or once more after the one in progress. */
  run(reason: string): Promise<void> {
    return this.#loop.run(reason);
  }

  /** One more pass right after the one in progress (a step left work for the next one). */
  again(): void {
    this.#loop.again();
  }

  /** The snapshot and plan applied: the last good ones. */
  get applied(): Applied<P> | undefined {
    return this.#applied;
  }

  /** The state of every instance in the metrics (also between passes, when an instance changes). */
  updateMetrics(): void {
    if (this.#applied && this.#appliedAt) this.#metrics.setApplied(this.#applied.snapshot.revision, this.#appliedAt, this.#runtime.instances(), this.#appliedTree?.commit);
  }

  status(parts: StatusParts): AgentStatus {
    return {
      node: parts.node,
      repo: this.#opts.repo,
      revision: this.#applied?.snapshot.revision,
      appliedAt: this.#appliedAt?.toISOString(),
      ...(this.#appliedTree ? { appliedFrom: this.#appliedTree } : {}),
      loadedRevision: this.#loaded?.revision,
      loadedAt: this.#loaded?.at.toISOString(),
      ...(this.#loaded?.tree ? { loadedFrom: this.#loaded.tree } : {}),
      ...(this.#lastPass ? { lastPass: this.#lastPass } : {}),
      configErrors: this.#configErrors,
      applyErrors: this.#applyErrors,
      proxy: parts.proxy,
      instances: this.#runtime.instances(),
      sinks: parts.sinks,
    };
  }

  async #pass(reason: string): Promise<void> {
    if (this.#halted) return;
    const rt = this.#runtime;
    const t0 = process.hrtime.bigint();
    // The link resolved once: every file of this pass, and the tree's meta, are read under one real path.
    const target = resolveRepoTarget(this.#opts.repo);
    const tree = target.dir === undefined ? undefined : treeOf(target.dir);
    const source: RepoSource = target.dir === undefined ? { root: this.#opts.repo, exists: false, entries: [] } : { ...readRepo(target.dir), root: this.#opts.repo };
    const result = loadRepository(source);
    const now = new Date();
    const revision = result.ok ? result.snapshot.revision : result.revision;
    const changed = this.#loaded?.revision !== revision;
    this.#loaded = { revision, at: now, tree };

    // What happens to an invalid repository: the last good snapshot stays, every error is reported.
    let candidate: Applied<P> | undefined;
    let rejection: Pick<Rejection, 'kind' | 'errors'> | undefined;
    if (!result.ok) rejection = { kind: 'errors', errors: result.errors };
    else {
      try {
        const planned = rt.plan(result.snapshot, source);
        if (planned.conflicts.length) rejection = { kind: 'conflicts', errors: planned.conflicts };
        else candidate = { snapshot: result.snapshot, plan: planned.plan, dir: target.dir ?? this.#opts.repo };
      } catch (e) {
        if (!(e instanceof GlowError)) throw e;
        rejection = { kind: 'unplannable', errors: [e] };
      }
    }
    const wasRejected = this.#configErrors.length > 0;
    if (rejection) {
      this.#configErrors = rejection.errors.map((e) => problemOf(e, now));
      rt.rejected({ ...rejection, revision, changed, keeping: this.#applied?.snapshot.revision });
    } else {
      this.#configErrors = [];
      rt.accepted?.(revision, wasRejected);
    }
    this.#metrics.configErrors.set(this.#configErrors.length);

    // Against the revision whose pass went through, not the one last taken: a pass that failed half-way (observing
    // the node, say) leaves its revision fresh for the next pass.
    const first = this.#completed === undefined && candidate !== undefined;
    const fresh = candidate !== undefined && candidate.snapshot.revision !== this.#completed;
    if (candidate) {
      this.#applied = candidate;
      this.#appliedTree = tree;
    }
    const applied = this.#applied;
    if (!applied) {
      this.#lastPass = { reason, startedAt: now.toISOString(), endedAt: new Date().toISOString() };
      this.#metrics.observeReconcile('skipped', t0);
      rt.passed?.(undefined);
      return;
    }

    rt.applying?.(applied, fresh);
    const tPlanned = process.hrtime.bigint();
    let observed: O;
    let steps: readonly S[];
    try {
      observed = await rt.observe(applied);
      steps = rt.diff(applied, observed);
    } catch (e) {
      // Not a step's failure, but the pass's: reported in status and metrics like one, and tried again next pass.
      const err = asGlowError(e, 'GLOW_E_APPLY');
      this.#applyErrors = [{ code: err.code, message: `observing what the node runs failed: ${err.message}`, ...(err.errno ? { errno: err.errno } : {}), at: new Date().toISOString() }];
      this.#lastPass = { reason, startedAt: now.toISOString(), endedAt: new Date().toISOString() };
      this.#metrics.observeReconcile('error', t0);
      this.#opts.onError(e);
      rt.passed?.(undefined);
      return;
    }
    const tObserved = process.hrtime.bigint();
    const ms = (a: bigint, b: bigint) => Math.round(Number(b - a) / 1e5) / 10;
    rt.planned?.(applied, steps, { reason, fresh, loadMs: ms(t0, tPlanned), observeMs: ms(tPlanned, tObserved) });

    // One app's failure blocks only that app.
    const errors: ProblemReport[] = [];
    const blocked = new Map<string, string>();
    let halted = false;
    for (const step of steps) {
      if (this.stopped) {
        halted = true;
        break;
      }
      const role = rt.appOf(step);
      if (role?.held && blocked.has(role.app)) continue;
      const pass = this;
      const ctx: StepContext<P, O> = {
        applied,
        observed,
        get stopped() {
          return pass.stopped;
        },
        fail: (code, message, unit) => {
          const report: ProblemReport = { code, message, ...(unit ? { unit } : {}), at: new Date().toISOString() };
          errors.push(report);
          rt.stepFailed(report, step);
        },
      };
      try {
        await rt.execute(step, ctx);
      } catch (e) {
        // The catch-all: whatever was thrown, status shows a registered code (the errno underneath kept).
        const err = asGlowError(e, 'GLOW_E_APPLY');
        const unit = rt.unitOf(step, e);
        const report: ProblemReport = { code: err.code, message: err.message, ...(err.errno ? { errno: err.errno } : {}), ...(unit ? { unit } : {}), at: new Date().toISOString() };
        errors.push(report);
        rt.stepFailed(report, step);
        if (role?.blocks) blocked.set(role.app, err.message);
      }
    }
    this.#applyErrors = errors;
    if (fresh || !this.#appliedAt) this.#appliedAt = now;
    this.#completed = applied.snapshot.revision;
    const done: PassResult<P, S> = { applied, first, fresh, reason, steps, errors, blocked, halted };
    await rt.settle?.(done);
    const commit = this.#appliedTree?.commit;
    this.#lastPass = { reason, startedAt: now.toISOString(), endedAt: new Date().toISOString(), revision: applied.snapshot.revision, ...(commit ? { commit } : {}) };
    this.updateMetrics();
    this.#metrics.observeReconcile(errors.length ? 'error' : 'ok', t0);
    rt.passed?.(done);
  }
}

/** The tree read, and what glow sync says it is (its `.glow-sync.json`, when there is one). */
function treeOf(dir: string): RepoTree {
  const meta = readRevisionMeta(dir);
  if (!meta) return { path: dir };
  return { path: dir, ...(meta.name ? { syncRevision: meta.name } : {}), commit: meta.id, publishedAt: meta.publishedAt };
}

/** An error of the repository (or of planning it) as status shows it. */
export function problemOf(e: GlowError, at: Date): ProblemReport {
  const where = e instanceof ConfigError ? { file: e.file, line: e.line, col: e.col } : {};
  return { code: e.code, message: e.message, ...(e.errno ? { errno: e.errno } : {}), ...where, at: at.toISOString() };
}
