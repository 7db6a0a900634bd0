/**
 * journalctl as a child process, its JSON output cut into lines. Backpressure is the pipe's: `pause()` stops
 * reading stdout, the pipe fills, and journalctl blocks in write() until `resume()` — the journal is the buffer,
 * nothing queues in glowd. A line longer than `maxLineBytes` (an entry of many MiB written through journald's
 * native protocol) is skipped and reported, so that one entry cannot take unbounded memory.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * util-linux's setpriv (Essential in Debian) gives journalctl a parent-death signal: if glowd dies without stopping
 * it (SIGKILL, a crash; glowd.service has KillMode=process), journalctl goes too instead of waiting, orphaned,
 * for its next line.
 */
const SETPRIV = '/usr/bin/setpriv';
const withParentDeath = (command: string, args: readonly string[]): [string, string[]] =>
  existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'TERM', '--', command, ...args]] : [command, [...args]];

export interface ReaderOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly maxLineBytes: number;
  readonly onLine: (line: string) => void;
  /** A line over maxLineBytes was dropped (its length so far). */
  readonly onOversize: (bytes: number) => void;
  /** journalctl is gone (exit or spawn error), after every line it printed was delivered. */
  readonly onExit: (code: number | null, signal: NodeJS.Signals | null, stderr: string) => void;
}

export class JournalReader {
  readonly #opts: ReaderOptions;
  #child: ChildProcess | undefined;
  #rest = '';
  #skipping = false;
  #stderr = '';
  #exited = false;
  #closed: Promise<void> = Promise.resolve();

  constructor(opts: ReaderOptions) {
    this.#opts = opts;
  }

  start(): void {
    const [command, args] = withParentDeath(this.#opts.command, this.#opts.args);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.#data(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (this.#stderr.length < 8192) this.#stderr += d;
    });
    this.#closed = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null, why?: string) => {
        if (this.#exited) return;
        this.#exited = true;
        this.#opts.onExit(code, signal, why ?? this.#stderr);
        resolve();
      };
      child.once('error', (e) => done(null, null, `cannot run ${this.#opts.command}: ${e.message}`));
      child.once('close', (code, signal) => done(code, signal));
    });
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  pause(): void {
    this.#child?.stdout?.pause();
  }

  resume(): void {
    this.#child?.stdout?.resume();
  }

  /** Ends journalctl (SIGTERM, then SIGKILL after a second) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || this.#exited) return this.#closed;
    child.stdout?.removeAllListeners('data');
    child.stdout?.resume();
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 1000);
    await this.#closed;
    clearTimeout(t);
  }

  #data(chunk: string): void {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', from);
      if (nl < 0) break;
      if (this.#skipping) {
        this.#skipping = false;
      } else if (this.#rest) {
        const line = this.#rest + chunk.slice(from, nl);
        this.#rest = '';
        if (line) this.#opts.onLine(line);
      } else if (nl > from) {
        this.#opts.onLine(chunk.slice(from, nl));
      }
      from = nl + 1;
    }
    if (from < chunk.length && !this.#skipping) {
      this.#rest += chunk.slice(from);
      if (this.#rest.length > this.#opts.maxLineBytes) {
        this.#opts.onOversize(this.#rest.length);
        this.#rest = '';
        this.#skipping = true;
      }
    }
  }
}
