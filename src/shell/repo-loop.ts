/**
 * Following a repository, for the pass of glowd and of the developer box (src/shell/pass.ts): chokidar
 * watches the tree, a burst of changes is read once after `debounceMs` of quiet, nothing is read while a git
 * checkout holds `.git/index.lock`, a tick re-plans now and then without a change, and passes run one at a time (a
 * change during a pass asks for one more).
 *
 * The repository is a directory (a developer's clone, an rsync target) or a symbolic link to one (`glow sync`
 * switches `/var/lib/glow/repo` from one complete revision to the next: src/sync/publish.ts). A chokidar watcher
 * on a link does not see it switched — it keeps reporting the old tree's edits and none of the new one's — so two
 * watchers follow it:
 *
 *   the link     a watcher on the repository's parent directory, depth 0, not following links: it reports the
 *                repository path itself being switched, created or removed (a `change`, `add`, `unlink` of it)
 *   the tree     a watcher on what the repository leads to, resolved (the directory itself, or the link's target);
 *                when the link's target changes it is closed and a new one is made on the new target
 *
 * Either asks for a pass after the debounce. Before every pass the link is resolved again and the tree watcher moved
 * if it leads elsewhere, so a missed event of the link costs at most one tick.
 */
import { existsSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';

export interface RepoLoopOptions {
  readonly repo: string;
  readonly debounceMs: number;
  readonly tickMs: number;
  /** Paths under the repository that are not the repository's business (the dev box's own state). */
  readonly ignore?: (path: string) => boolean;
  readonly onError?: (e: unknown) => void;
  /** The repository now leads to another tree (a switch of its link); called before the pass it triggers. */
  readonly onSwitch?: (tree: RepoTarget) => void;
}

/** What the repository path leads to right now. */
export interface RepoTarget {
  /** The repository path is a symbolic link. */
  readonly link: boolean;
  /** The directory to read: the repository itself, or its link's target resolved; undefined when there is none. */
  readonly dir: string | undefined;
}

/**
 * Resolves the repository once: a directory is itself, a link its target's real path (undefined for a missing
 * repository or a broken link). A reader that reads every file under `dir` reads one tree, whatever switches
 * happen meanwhile.
 */
export function resolveRepoTarget(repo: string): RepoTarget {
  let link = false;
  try {
    link = lstatSync(repo).isSymbolicLink();
  } catch {
    return { link: false, dir: undefined };
  }
  if (!link) return { link, dir: repo };
  try {
    return { link, dir: realpathSync(repo) };
  } catch {
    return { link, dir: undefined };
  }
}

export class RepoLoop {
  readonly #opts: RepoLoopOptions;
  readonly #pass: (reason: string) => Promise<void>;
  readonly #repoAbs: string;
  #running: Promise<void> | undefined;
  #again = false;
  /** Why the pass asked for during the one in progress runs (the last asker's reason). */
  #againReason: string | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #tick: NodeJS.Timeout | undefined;
  #linkWatcher: FSWatcher | undefined;
  #treeWatcher: FSWatcher | undefined;
  /** The directory the tree watcher watches ('' when none). */
  #watched = '';
  /** …and its inode: a directory replaced by another at the same path (`mv`) is watched anew. */
  #watchedKey = '';
  #stopped = false;

  constructor(opts: RepoLoopOptions, pass: (reason: string) => Promise<void>) {
    this.#opts = opts;
    this.#pass = pass;
    this.#repoAbs = resolve(opts.repo);
  }

  /** Starts watching and runs the first pass; resolves when it is done. */
  async start(): Promise<void> {
    const parent = dirname(this.#repoAbs);
    this.#linkWatcher = watch(parent, {
      ignoreInitial: true,
      depth: 0,
      followSymlinks: false,
      // Only the repository's own entry (and the directory itself, which chokidar asks about first).
      ignored: (p: string) => {
        const abs = resolve(p);
        return abs !== parent && abs !== this.#repoAbs;
      },
    });
    this.#linkWatcher.on('all', (_event, path) => {
      if (resolve(path) !== this.#repoAbs) return;
      if (this.#follow()) this.trigger('switch');
      else this.trigger('change');
    });
    this.#linkWatcher.on('error', (e) => this.#opts.onError?.(e));
    this.#follow();
    this.#tick = setInterval(() => this.trigger('tick', 0), this.#opts.tickMs);
    this.#tick.unref();
    await this.run('start');
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#tick);
    await Promise.all([this.#linkWatcher?.close(), this.#treeWatcher?.close()]);
    this.#treeWatcher = undefined;
    await this.#running;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** The directory whose edits are followed now ('' when none: no repository, a broken link). */
  get watching(): string {
    return this.#watched;
  }

  /** Asks for a pass after `delayMs` of quiet (each new trigger restarts the wait). */
  trigger(reason: string, delayMs = this.#opts.debounceMs): void {
    if (this.#stopped) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.run(reason), delayMs);
  }

  /** Asks the pass in progress for one more right after it (a pass that left work for the next one). */
  again(): void {
    if (this.#running) {
      this.#again = true;
      this.#againReason = 'again';
    } else this.trigger('again', 0);
  }

  /** Runs one pass now, or once more after the one in progress. */
  run(reason: string): Promise<void> {
    if (this.#running) {
      this.#again = true;
      this.#againReason = reason;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        if (this.#again) reason = this.#againReason ?? 'again';
        this.#again = false;
        if (this.#follow() && reason === 'tick') reason = 'switch';
        if (existsSync(join(this.#opts.repo, '.git', 'index.lock'))) {
          this.trigger('repository busy');
          break;
        }
        try {
          await this.#pass(reason);
        } catch (e) {
          this.#opts.onError?.(e);
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Points the tree watcher at what the repository leads to now; true when that changed. */
  #follow(): boolean {
    // Only a started loop watches (a pass run on its own, by a test or `run()` before `start()`, makes no watcher).
    if (this.#stopped || this.#linkWatcher === undefined) return false;
    const target = resolveRepoTarget(this.#opts.repo);
    // A plain directory is watched by the path it was given (the dev box's `ignore` speaks of those paths).
    const dir = target.dir === undefined ? '' : target.link ? target.dir : this.#opts.repo;
    let key = dir;
    try {
      if (dir !== '') key = `${dir}\0${statSync(dir).ino}`;
    } catch {
      key = '';
    }
    if (key === this.#watchedKey) return false;
    const old = this.#treeWatcher;
    this.#treeWatcher = undefined;
    this.#watched = key === '' ? '' : dir;
    this.#watchedKey = key;
    if (old) {
      old.close().catch((e: unknown) => this.#opts.onError?.(e));
    }
    if (this.#watched !== '') {
      const ignore = this.#opts.ignore;
      const w = watch(this.#watched, {
        ignoreInitial: true,
        ignored: (p: string) => (p.includes(`${posix.sep}.git${posix.sep}`) && !p.endsWith('index.lock')) || (ignore?.(p) ?? false),
        followSymlinks: true,
      });
      w.on('all', () => {
        if (this.#treeWatcher === w) this.trigger('change');
      });
      w.on('error', (e) => this.#opts.onError?.(e));
      this.#treeWatcher = w;
    }
    this.#opts.onSwitch?.(target);
    return true;
  }
}
