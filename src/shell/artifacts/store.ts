/**
 * The artifact store of one state directory, `<stateDir>/artifacts/`, as seen by this process: the fetches in
 * progress (concurrent calls for one artifact share one fetch; an aborted caller stops waiting, and the fetch itself
 * is aborted only when every caller waiting for it has aborted), and the temporary directories in use.
 *
 * Temporaries live in `artifacts/.tmp/<pid>-<random>/`. One left by a crashed process, or by a failed call of this
 * one, is a leftover, removed by the next install or by the first call that finds its artifact installed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_PATHS, artifactDir } from '../../base/paths.js';
import type { EnsureArtifactOptions, EnsureArtifactResult } from './options.js';
import { errorCode } from './failure-reason.js';
import { isDirectory, mkdirReadable } from './fs-probe.js';
import { install } from './install.js';
import { checkLayout } from './layout.js';
import { checkDigest, checkName, label } from './names.js';
import { checkInstalled, collision } from './record.js';

const TMP = '.tmp';
const TMP_NAME = /^(\d+)-[0-9a-f]+$/;

interface Flight {
  image: string;
  promise: Promise<EnsureArtifactResult>;
  controller: AbortController;
  waiters: number;
}

export class ArtifactStore {
  /** `<stateDir>/artifacts`. */
  readonly dir: string;
  /** Fetches in progress, by artifact directory. */
  private readonly flights = new Map<string, Flight>();
  /** Temporary directories in use (the others of this pid under .tmp/ are leftovers). */
  private readonly temps = new Set<string>();
  /** Whether the leftovers were cleaned once already (an install cleans every time). */
  private cleaned = false;

  constructor(readonly stateDir: string) {
    this.dir = join(stateDir, 'artifacts');
  }

  /** ensureArtifact() (src/shell/artifacts/ensure.ts) for this store. */
  async ensure(opts: EnsureArtifactOptions): Promise<EnsureArtifactResult> {
    checkName(opts.image, opts.version);
    checkDigest(opts);
    opts.signal?.throwIfAborted();
    const dir = artifactDir({ ...DEFAULT_PATHS, stateDir: this.stateDir }, opts.image, opts.version);

    let flight = this.flights.get(dir);
    if (!flight) {
      if (await isDirectory(dir)) {
        if (!this.cleaned) {
          this.cleaned = true;
          await this.cleanLeftovers();
        }
        await checkInstalled(this.dir, dir, opts);
        await checkLayout(dir, opts.command, { label: label(opts), version: opts.version, installed: dir });
        return { dir, fetched: false };
      }
      flight = this.flights.get(dir); // another call may have started while we looked
    }
    let started = false;
    if (!flight) {
      flight = this.start(dir, opts);
      started = true;
    } else if (flight.image !== opts.image) {
      throw collision(dir, flight.image, opts.image);
    }
    const result = await this.wait(dir, flight, opts.signal);
    // The fetch was checked against its starter's command; another caller's may differ.
    if (!started) await checkLayout(dir, opts.command, { label: label(opts), version: opts.version, installed: dir });
    return result;
  }

  private start(dir: string, opts: EnsureArtifactOptions): Flight {
    const controller = new AbortController();
    const f: Flight = { image: opts.image, controller, waiters: 0, promise: Promise.resolve(null as never) };
    f.promise = this.withTemp((tmp) => install(this.dir, tmp, dir, opts, controller.signal))
      .then((): EnsureArtifactResult => ({ dir, fetched: true }))
      .finally(() => {
        if (this.flights.get(dir) === f) this.flights.delete(dir);
      });
    f.promise.catch(() => {}); // observed by the callers; not an unhandled rejection when they all gave up
    this.flights.set(dir, f);
    return f;
  }

  /** Waits for a shared fetch; aborting stops this caller's wait, and the fetch once nobody waits for it. */
  private wait(dir: string, f: Flight, signal: AbortSignal | undefined): Promise<EnsureArtifactResult> {
    f.waiters++;
    if (!signal) return f.promise;
    return new Promise((resolvePromise, reject) => {
      const onAbort = () => {
        f.waiters--;
        if (f.waiters === 0) {
          if (this.flights.get(dir) === f) this.flights.delete(dir); // a new caller starts afresh
          f.controller.abort(signal.reason);
        }
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      f.promise.then(
        (r) => {
          signal.removeEventListener('abort', onAbort);
          resolvePromise(r);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  /** Runs `f` with a new, empty temporary directory of the store, removed afterwards whatever happens. */
  private async withTemp<T>(f: (tmp: string) => Promise<T>): Promise<T> {
    this.cleaned = true;
    await this.cleanLeftovers();
    const tmp = join(this.dir, TMP, `${process.pid}-${randomBytes(8).toString('hex')}`);
    this.temps.add(tmp);
    try {
      await mkdirReadable(this.dir);
      await mkdir(join(this.dir, TMP), { recursive: true, mode: 0o700 });
      await mkdir(tmp, { mode: 0o700 });
      return await f(tmp);
    } finally {
      await rm(tmp, { recursive: true, force: true }).catch(() => {});
      this.temps.delete(tmp);
    }
  }

  /** Removes what crashed or failed calls left under .tmp/: anything not in use by a live process. */
  async cleanLeftovers(): Promise<void> {
    const tmpRoot = join(this.dir, TMP);
    let names: string[];
    try {
      names = await readdir(tmpRoot);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(tmpRoot, name);
      const m = TMP_NAME.exec(name);
      const pid = m ? Number(m[1]) : NaN;
      const inUse = pid === process.pid ? this.temps.has(path) : m !== null && alive(pid);
      if (!inUse) await rm(path, { recursive: true, force: true }).catch(() => {});
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM';
  }
}

/**
 * The one store of each state directory in this process. A module-level map on purpose: whether a temporary
 * `<pid>-…` is in use is a fact about the whole process (two store objects over one state directory would take
 * each other's temporaries for leftovers and remove them), and so is the sharing of a fetch between every caller
 * of the process (glowd's passes, `glow up`'s steps). Keyed by the resolved state directory.
 */
const stores = new Map<string, ArtifactStore>();

export function storeFor(stateDir: string): ArtifactStore {
  const key = resolve(stateDir);
  let store = stores.get(key);
  if (!store) {
    store = new ArtifactStore(key);
    stores.set(key, store);
  }
  return store;
}
