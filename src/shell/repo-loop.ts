/**
 * Following a repository, for the pass of glowd and of the developer box (src/shell/pass.ts): chokidar
 * watches the directory, a burst of changes is read once after `debounceMs` of quiet, nothing is read while a git
 * checkout holds `.git/index.lock`, a tick re-plans now and then without a change, and passes run one at a time (a
 * change during a pass asks for one more).
 */
import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';

export interface RepoLoopOptions {
  readonly repo: string;
  readonly debounceMs: number;
  readonly tickMs: number;
  /** Paths under the repository that are not the repository's business (the dev box's own state). */
  readonly ignore?: (path: string) => boolean;
  readonly onError?: (e: unknown) => void;
}

export class RepoLoop {
  readonly #opts: RepoLoopOptions;
  readonly #pass: (reason: string) => Promise<void>;
  #running: Promise<void> | undefined;
  #again = false;
  #debounce: NodeJS.Timeout | undefined;
  #tick: NodeJS.Timeout | undefined;
  #watcher: FSWatcher | undefined;
  #stopped = false;

  constructor(opts: RepoLoopOptions, pass: (reason: string) => Promise<void>) {
    this.#opts = opts;
    this.#pass = pass;
  }

  /** Starts watching and runs the first pass; resolves when it is done. */
  async start(): Promise<void> {
    const ignore = this.#opts.ignore;
    this.#watcher = watch(this.#opts.repo, {
      ignoreInitial: true,
      ignored: (p: string) => (p.includes(`${posix.sep}.git${posix.sep}`) && !p.endsWith('index.lock')) || (ignore?.(p) ?? false),
      followSymlinks: true,
    });
    this.#watcher.on('all', () => this.trigger('change'));
    this.#watcher.on('error', (e) => this.#opts.onError?.(e));
    this.#tick = setInterval(() => this.trigger('tick', 0), this.#opts.tickMs);
    this.#tick.unref();
    await this.run('start');
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#tick);
    await this.#watcher?.close();
    await this.#running;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Asks for a pass after `delayMs` of quiet (each new trigger restarts the wait). */
  trigger(reason: string, delayMs = this.#opts.debounceMs): void {
    if (this.#stopped) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.run(reason), delayMs);
  }

  /** Asks the pass in progress for one more right after it (a pass that left work for the next one). */
  again(): void {
    if (this.#running) this.#again = true;
    else this.trigger('again', 0);
  }

  /** Runs one pass now, or once more after the one in progress. */
  run(reason: string): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
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
}
