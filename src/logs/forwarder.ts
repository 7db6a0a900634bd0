/**
 * One sink's pipeline, the thin shell around the pure core:
 *
 *   journalctl (its own, from this sink's cursor) → lines → parseEntry → Reassembler → Batcher → transport.send
 *                                                                                    → on acknowledgement: cursor file
 *
 * - **Its own reader and cursor.** A sink that is down for an hour stops only its own journalctl; the others read
 *   on. When it is back it goes on from its cursor: the journal was the buffer.
 * - **At least once.** The cursor of a batch is stored (atomically, fsynced) only after the sink acknowledged the
 *   batch, so a crash repeats at most the batch that was in flight.
 * - **Bounded memory.** At most two batches exist besides the one being filled: the one in flight and one ready.
 *   When a third would be sealed the reader is paused — the pipe fills and journalctl blocks — until the sink
 *   takes the one in flight. A slow sink slows its reading; nothing queues without bound.
 * - **Retries.** Exponential backoff with jitter for as long as the sink fails; a batch the sink rejects for good
 *   (a 4xx) is reported and skipped; a batch too large (413) is split.
 * - **First start.** Without a cursor the reader starts at the beginning of the current boot.
 */
import type { GlowCode } from '../base/codes.js';
import { asGlowError } from '../base/errors.js';
import type { Logger } from 'pino';
import type { Sink } from '../config/model.js';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import type { BackoffPolicy } from './backoff.js';
import { batchOf, Batcher } from './batcher.js';
import type { Batch } from './batcher.js';
import { quarantineCursor, readCursor, writeCursor } from './cursor-store.js';
import { asSendError } from './errors.js';
import { followArgs } from './journal-args.js';
import type { FollowQuery } from './journal-args.js';
import { parseEntry } from './journal-entry.js';
import { JournalReader } from './journal-reader.js';
import type { LagSource, LogMetrics } from './metrics.js';
import { Reassembler } from './reassemble.js';
import type { LogRecord } from './record.js';
import type { SinkTransport } from './sinks/sink.js';

export type SinkState = 'starting' | 'running' | 'retrying' | 'failed' | 'stopped';

export interface SinkProblem {
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

/** One sink in `glow status`. */
export interface SinkStatus {
  readonly name: string;
  readonly type: string;
  /** starting, running, retrying (deliveries fail and are retried), failed (cannot start; retried), stopped */
  readonly state: SinkState;
  readonly lastError: SinkProblem | undefined;
  /** Seconds: age of the oldest record read but not yet acknowledged; 0 when caught up. */
  readonly lagSeconds: number;
  readonly forwarded: number;
  readonly rejected: number;
  /** ISO time of the newest record the sink acknowledged. */
  readonly lastForwarded: string | undefined;
}

export interface ForwarderLimits {
  /** A batch is sealed at this many bytes of records even below the sink's batch_size. */
  readonly maxBatchBytes: number;
  /** A line split by journald is joined up to this size. */
  readonly maxRecordBytes: number;
  /** How long the rest of a split line is waited for. */
  readonly partialWaitMs: number;
  /** A journal entry's JSON longer than this is skipped. */
  readonly maxLineBytes: number;
  readonly backoff: BackoffPolicy;
  /** Between attempts to start a sink that cannot start. */
  readonly startBackoff: BackoffPolicy;
  /** How long stop() waits for the batch in flight. */
  readonly stopTimeoutMs: number;
}

export const DEFAULT_LIMITS: ForwarderLimits = {
  maxBatchBytes: 1 << 20,
  maxRecordBytes: 1 << 20,
  partialWaitMs: 2000,
  maxLineBytes: 32 << 20,
  backoff: DEFAULT_BACKOFF,
  startBackoff: { baseMs: 1000, maxMs: 60_000 },
  stopTimeoutMs: 5000,
};

export interface ForwarderOptions {
  readonly sink: Sink;
  readonly node: string;
  readonly cursorPath: string;
  readonly openTransport: () => Promise<SinkTransport>;
  readonly metrics: LogMetrics;
  readonly log: Logger;
  /** The journalctl program (default `journalctl`). */
  readonly journalctl?: string;
  /** Read this journal directory instead of the system's (benchmarks). */
  readonly journalDirectory?: string;
  readonly proxy?: FollowQuery['proxy'];
  readonly limits?: Partial<ForwarderLimits>;
}

export class Forwarder implements LagSource {
  readonly name: string;
  readonly type: string;
  readonly #o: ForwarderOptions;
  readonly #limits: ForwarderLimits;
  readonly #labels: { sink: string; type: string };
  readonly #batcher: Batcher;
  #state: SinkState = 'starting';
  #lastError: SinkProblem | undefined;
  #transport: SinkTransport | undefined;
  #reader: JournalReader | undefined;
  #reassembler: Reassembler | undefined;
  /** Sealed batches: [0] is in flight. */
  readonly #queue: Batch[] = [];
  #sending: Promise<void> | undefined;
  #paused = false;
  #sealTimer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #respawnTimer: NodeJS.Timeout | undefined;
  #readerFailures = 0;
  /** The cursor of the last entry parsed: where a restarted journalctl goes on. */
  #lastRead: string | undefined;
  #stored: string | undefined;
  #stopping = false;
  /** Set when stop() gave up waiting: a late acknowledgement must not write the cursor any more. */
  #closed = false;
  #wake: (() => void) | undefined;
  #forwarded = 0;
  #rejected = 0;
  #newestUs: number | undefined;
  #started: Promise<void> | undefined;

  constructor(opts: ForwarderOptions) {
    this.#o = opts;
    this.name = opts.sink.name;
    this.type = opts.sink.type;
    this.#labels = { sink: this.name, type: this.type };
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#batcher = new Batcher({ maxRecords: opts.sink.batchSize, maxBytes: this.#limits.maxBatchBytes, maxWaitMs: opts.sink.batchWaitMs });
  }

  /** Starts in the background: a sink that cannot start is retried with backoff until it can, or until stop(). */
  start(): void {
    this.#started ??= this.#start();
  }

  async #start(): Promise<void> {
    try {
      this.#stored = await readCursor(this.#o.cursorPath);
    } catch (e) {
      this.#problem('GLOW_E_LOG_CURSOR', `cannot read the cursor ${this.#o.cursorPath} (${(e as Error).message}); starting at the beginning of the boot`);
    }
    for (let attempt = 0; !this.#stopping; attempt++) {
      try {
        this.#transport = await this.#o.openTransport();
        break;
      } catch (e) {
        // A sink's own GlowError keeps its code (GLOW_E_SINK_TLS…); an errno becomes GLOW_E_LOG_SINK_START.
        const err = asGlowError(e, 'GLOW_E_LOG_SINK_START');
        this.#state = 'failed';
        const wait = backoffDelay(attempt, this.#limits.startBackoff);
        this.#problem(err.code, `sink ${this.name} cannot start: ${err.message}; trying again in ${Math.round(wait / 1000)}s`);
        await this.#sleep(wait);
      }
    }
    if (this.#stopping) return;
    this.#lastRead = this.#stored;
    this.#reassembler = new Reassembler({ maxRecordBytes: this.#limits.maxRecordBytes, maxWaitMs: this.#limits.partialWaitMs, node: this.#o.node }, this.#stored);
    this.#state = 'running';
    this.#o.log.info({ sink: this.name, type: this.type, cursor: this.#stored ?? null }, this.#stored ? 'log sink started from its cursor' : 'log sink started at the beginning of the boot (no cursor yet)');
    this.#flushTimer = setInterval(() => this.#flushPartials(), Math.max(100, this.#limits.partialWaitMs / 4));
    this.#spawnReader();
  }

  #spawnReader(): void {
    const args = followArgs({
      node: this.#o.node,
      follow: true,
      ...(this.#lastRead !== undefined ? { after: this.#lastRead } : {}),
      ...(this.#o.proxy ? { proxy: this.#o.proxy } : {}),
      ...(this.#o.journalDirectory !== undefined ? { directory: this.#o.journalDirectory } : {}),
    });
    const reader: JournalReader = new JournalReader({
      command: this.#o.journalctl ?? 'journalctl',
      args,
      maxLineBytes: this.#limits.maxLineBytes,
      onLine: (line) => this.#onLine(line),
      onOversize: (bytes) => {
        this.#o.metrics.skipped.inc({ ...this.#labels, reason: 'too_large' });
        this.#o.log.warn({ sink: this.name, bytes }, 'a journal entry too large to forward was skipped');
      },
      onExit: (code, signal, stderr) => this.#onReaderExit(reader, code, signal, stderr),
    });
    this.#reader = reader;
    reader.start();
    if (this.#paused) reader.pause(); // restarted while two batches wait: it reads on when they are delivered
  }

  #onLine(line: string): void {
    const parsed = parseEntry(line);
    if (!parsed.ok) {
      this.#o.metrics.skipped.inc({ ...this.#labels, reason: 'unparsable' });
      this.#o.log.warn({ sink: this.name, why: parsed.why, line: line.slice(0, 200) }, 'a journal line could not be read and was skipped');
      return;
    }
    this.#lastRead = parsed.entry.cursor;
    this.#readerFailures = 0;
    for (const r of this.#reassembler!.push(parsed.entry, Date.now())) this.#add(r);
  }

  #flushPartials(): void {
    if (!this.#reassembler || this.#stopping) return;
    for (const r of this.#reassembler.flush(Date.now())) this.#add(r);
  }

  #add(r: LogRecord): void {
    this.#batcher.add(r, Date.now());
    if (this.#batcher.full) this.#seal();
    else if (this.#sealTimer === undefined) this.#armSealTimer();
  }

  #armSealTimer(): void {
    this.#sealTimer = setTimeout(() => {
      this.#sealTimer = undefined;
      if (this.#queue.length < 2) this.#seal(); // otherwise sealed when a delivery makes room
    }, Math.max(0, this.#batcher.dueAt! - Date.now()));
  }

  /**
   * Moves the batch being filled to the queue. With two batches queued (one in flight, one ready) the reader is
   * paused: only the rest of the chunk already read comes in after that, so a batch never exceeds its size and
   * memory holds two batches and one chunk at most.
   */
  #seal(): void {
    clearTimeout(this.#sealTimer);
    this.#sealTimer = undefined;
    if (this.#stopping || this.#batcher.size === 0) return;
    this.#queue.push(this.#batcher.take()!);
    if (this.#queue.length >= 2 && !this.#paused) {
      this.#paused = true;
      this.#reader?.pause();
    }
    this.#sending ??= this.#sendLoop().finally(() => {
      this.#sending = undefined;
    });
  }

  async #sendLoop(): Promise<void> {
    while (this.#queue.length > 0 && !this.#stopping) {
      const batch = this.#queue[0]!;
      const done = await this.#deliver(batch.records);
      if (!done) return; // stopping: the rest is read again from the cursor next time
      this.#queue.shift();
      // Room again: seal what is due, and read on.
      if (this.#queue.length < 2 && this.#batcher.ready(Date.now())) this.#seal();
      else if (this.#batcher.size > 0 && this.#sealTimer === undefined) this.#armSealTimer();
      if (this.#paused && this.#queue.length < 2) {
        this.#paused = false;
        this.#reader?.resume();
      }
    }
  }

  /** Delivers records until acknowledged or skipped (true), or until stop() (false). */
  async #deliver(records: readonly LogRecord[]): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (this.#stopping) return false;
      try {
        const bytes = await this.#transport!.send(records);
        this.#o.metrics.forwarded.inc(this.#labels, records.length);
        this.#o.metrics.bytes.inc(this.#labels, bytes);
        this.#forwarded += records.length;
        this.#newestUs = Math.max(this.#newestUs ?? 0, records[records.length - 1]!.timestampUs);
        if (this.#state === 'retrying') {
          this.#state = 'running';
          this.#o.log.info({ sink: this.name }, 'log sink delivers again');
        }
        await this.#store(batchOf(records).cursor);
        return true;
      } catch (e) {
        if (this.#closed) return false;
        const err = asSendError(e);
        if (err.verdict === 'split' && records.length > 1) {
          const mid = records.length >> 1;
          return (await this.#deliver(records.slice(0, mid))) && (await this.#deliver(records.slice(mid)));
        }
        if (err.verdict !== 'retry') {
          this.#o.metrics.failures.inc({ ...this.#labels, reason: 'rejected' });
          this.#o.metrics.rejected.inc(this.#labels, records.length);
          this.#rejected += records.length;
          this.#problem('GLOW_E_LOG_REJECTED', `sink ${this.name} rejected ${records.length} record(s), which are skipped: ${err.message}`, 'error');
          await this.#store(batchOf(records).cursor);
          return true;
        }
        this.#o.metrics.failures.inc({ ...this.#labels, reason: 'error' });
        if (this.#stopping) return false;
        const wait = err.retryAfterMs ?? backoffDelay(attempt, this.#limits.backoff);
        this.#state = 'retrying';
        this.#problem(err.code, `${err.message}; retrying in ${(wait / 1000).toFixed(1)}s`, attempt === 0 ? 'warn' : 'debug');
        await this.#sleep(wait);
        if (this.#stopping) return false;
        this.#o.metrics.retries.inc(this.#labels);
      }
    }
  }

  async #store(cursor: string | undefined): Promise<void> {
    if (cursor === undefined || cursor === this.#stored || this.#closed) return;
    try {
      await writeCursor(this.#o.cursorPath, cursor);
      this.#stored = cursor;
    } catch (e) {
      this.#problem('GLOW_E_LOG_CURSOR', `cannot write the cursor ${this.#o.cursorPath}: ${(e as Error).message}`);
    }
  }

  #onReaderExit(reader: JournalReader, code: number | null, signal: NodeJS.Signals | null, stderr: string): void {
    if (reader !== this.#reader || this.#stopping) return;
    this.#reader = undefined;
    const why = stderr.trim().split('\n').slice(-3).join(' ') || `journalctl ended (${signal ?? `exit status ${code}`})`;
    if (/cursor/i.test(stderr) && this.#lastRead !== undefined && this.#lastRead === this.#stored) {
      // journalctl refuses the stored cursor itself (damaged, or from another journal): put it aside, start afresh.
      this.#problem('GLOW_E_LOG_CURSOR', `journalctl refused the stored cursor of sink ${this.name} (${why}); it was moved to ${this.#o.cursorPath}.bad and the sink starts at the beginning of the boot`);
      this.#stored = undefined;
      this.#lastRead = undefined;
      this.#reassembler = new Reassembler({ maxRecordBytes: this.#limits.maxRecordBytes, maxWaitMs: this.#limits.partialWaitMs, node: this.#o.node });
      void quarantineCursor(this.#o.cursorPath).finally(() => this.#respawn()); // before any new cursor is written
      return;
    }
    this.#problem('GLOW_E_LOG_JOURNAL', `journalctl of sink ${this.name} ended: ${why}; restarting it from the last record read`);
    this.#respawn();
  }

  #respawn(): void {
    const wait = backoffDelay(this.#readerFailures++, this.#limits.startBackoff);
    this.#respawnTimer = setTimeout(() => {
      this.#respawnTimer = undefined;
      if (!this.#stopping) this.#spawnReader();
    }, wait);
  }

  #problem(code: GlowCode, message: string, level: 'error' | 'warn' | 'debug' = 'error'): void {
    this.#lastError = { code, message, at: new Date().toISOString() };
    this.#o.log[level]({ sink: this.name, code }, message);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /**
   * Stops reading, lets the batch in flight finish (bounded by stopTimeoutMs), and closes the sink. What was read
   * but not acknowledged is read again from the cursor by the next start.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#sealTimer);
    clearInterval(this.#flushTimer);
    clearTimeout(this.#respawnTimer);
    this.#wake?.();
    await this.#started;
    await this.#reader?.stop();
    const sending = this.#sending;
    if (sending) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([sending, new Promise<void>((r) => (timer = setTimeout(r, this.#limits.stopTimeoutMs)))]);
      clearTimeout(timer);
    }
    this.#closed = true;
    await this.#transport?.close().catch(() => undefined);
    this.#state = 'stopped';
  }

  lagSeconds(): number {
    let oldest: number | undefined;
    for (const us of [this.#queue[0]?.records[0]?.timestampUs, this.#batcher.oldestUs, this.#reassembler?.oldestHeldUs]) {
      if (us !== undefined && (oldest === undefined || us < oldest)) oldest = us;
    }
    return oldest === undefined ? 0 : Math.max(0, Date.now() / 1000 - oldest / 1e6);
  }

  get newestForwardedUs(): number | undefined {
    return this.#newestUs;
  }

  /** The cursor last stored (tests, status). */
  get storedCursor(): string | undefined {
    return this.#stored;
  }

  status(): SinkStatus {
    return {
      name: this.name,
      type: this.type,
      state: this.#state,
      lastError: this.#lastError,
      lagSeconds: Math.round(this.lagSeconds() * 1000) / 1000,
      forwarded: this.#forwarded,
      rejected: this.#rejected,
      lastForwarded: this.#newestUs !== undefined ? new Date(this.#newestUs / 1000).toISOString() : undefined,
    };
  }
}
