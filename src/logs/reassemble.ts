/**
 * Joins lines that journald split. journald stores a line longer than its LineMax (48 KiB by default) as several
 * entries of the same stream, each but the last marked `_LINE_BREAK=line-max`; podman's journald driver does the
 * same with `CONTAINER_PARTIAL_MESSAGE=true`. Entries of other streams (another instance) may come in between, so
 * pieces are held per stream (`_STREAM_ID`, or the container) until the last one arrives, and every other record
 * flows on meanwhile.
 *
 * Holding pieces affects what may be stored as progress: each record carries the cursor that is safe to store
 * once it is delivered — its own last piece's cursor, or, while another stream's line is still held, the cursor
 * read just before that line's first piece (a restart then reads the held pieces again; records of other streams
 * in between are sent twice, which at-least-once allows). A held line is given up as a `partial` record when it
 * grows past `maxRecordBytes` or its rest has not come within `maxWaitMs`, so that neither memory nor the stored
 * cursor is held back for long.
 *
 * Deterministic: time comes in as an argument.
 */
import type { JournalEntry } from './journal-entry.js';
import { appOf, messageBytes, streamOf } from './record.js';
import type { LogRecord } from './record.js';

export interface ReassemblerOptions {
  /** A line held longer than this is given up as a partial record (default 1 MiB). */
  readonly maxRecordBytes: number;
  /** A line whose next piece has not come within this time is given up as a partial record (default 2 s). */
  readonly maxWaitMs: number;
  /** GLOW_NODE of records that have none (the proxy's). */
  readonly node: string;
}

interface Held {
  readonly first: JournalEntry;
  readonly pieces: (string | Buffer)[];
  bytes: number;
  readonly since: number;
  /** The cursor read just before the first piece (undefined: none, the reader started from the journal's start). */
  readonly before: string | undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class Reassembler {
  readonly #opts: ReassemblerOptions;
  /** Held lines by stream, in the order of their first pieces. */
  readonly #held = new Map<string, Held>();
  #last: string | undefined;

  /** `start`: the cursor the reader starts after (undefined: from the start of what it reads). */
  constructor(opts: ReassemblerOptions, start?: string) {
    this.#opts = opts;
    this.#last = start;
  }

  /** How many lines are held, waiting for their next piece. */
  get held(): number {
    return this.#held.size;
  }

  /** The journal timestamp of the oldest held piece, for lag. */
  get oldestHeldUs(): number | undefined {
    for (const h of this.#held.values()) return h.first.timestampUs;
    return undefined;
  }

  /** Takes the next entry in journal order; returns the records it completes (zero, one or two). */
  push(entry: JournalEntry, nowMs: number): LogRecord[] {
    const out: Mutable<LogRecord>[] = [];
    const before = this.#last;
    this.#last = entry.cursor;
    const continues = entry.lineBreak === 'line-max' || entry.containerPartial;
    const key = streamKey(entry);
    const held = key !== undefined ? this.#held.get(key) : undefined;
    const size = messageBytes(entry.message);
    if (held) {
      held.pieces.push(entry.message);
      held.bytes += size;
      if (!continues || held.bytes >= this.#opts.maxRecordBytes) {
        this.#held.delete(key!);
        out.push(this.#record(held.first, join(held.pieces), continues));
      }
    } else if (continues && key !== undefined && size < this.#opts.maxRecordBytes) {
      this.#held.set(key, { first: entry, pieces: [entry.message], bytes: size, since: nowMs, before });
    } else {
      out.push(this.#record(entry, entry.message, continues));
    }
    return this.#stamp(out);
  }

  /** Gives up held lines whose next piece is overdue; call it on a timer. */
  flush(nowMs: number): LogRecord[] {
    const out: Mutable<LogRecord>[] = [];
    for (const [key, h] of this.#held) {
      if (nowMs - h.since < this.#opts.maxWaitMs) continue;
      this.#held.delete(key);
      out.push(this.#record(h.first, join(h.pieces), true));
    }
    return this.#stamp(out);
  }

  /** The cursor that is safe to store now (see the file's comment). */
  get safeCursor(): string | undefined {
    for (const h of this.#held.values()) return h.before;
    return this.#last;
  }

  #stamp(out: Mutable<LogRecord>[]): LogRecord[] {
    if (out.length === 0) return out;
    const cursor = this.safeCursor;
    for (const r of out) r.cursor = cursor;
    return out;
  }

  #record(e: JournalEntry, message: string | Buffer, partial: boolean): Mutable<LogRecord> {
    const n = e.instance !== undefined && /^[0-9]+$/.test(e.instance) ? Number(e.instance) : undefined;
    return {
      message,
      timestampUs: e.timestampUs,
      priority: e.priority,
      stream: streamOf(e),
      app: appOf(e),
      version: e.version,
      instance: n,
      node: e.node ?? this.#opts.node,
      unit: e.unit ?? '',
      pid: e.pid,
      partial,
      cursor: undefined,
    };
  }
}

function streamKey(e: JournalEntry): string | undefined {
  if (e.streamId !== undefined) return `s:${e.streamId}`;
  if (e.containerId !== undefined) return `c:${e.containerId}`;
  if (e.unit !== undefined && e.pid !== undefined) return `p:${e.unit}:${e.pid}`;
  return undefined;
}

function join(pieces: readonly (string | Buffer)[]): string | Buffer {
  if (pieces.length === 1) return pieces[0]!;
  if (pieces.every((p) => typeof p === 'string')) return (pieces as string[]).join('');
  return Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
}
