/**
 * Batching by size and time, pure: records go in; a batch is ready when it holds `maxRecords` records or
 * `maxBytes` bytes, or when its first record has waited `maxWaitMs`. The caller owns the timer (dueAt) and the
 * limit on how many batches exist (two: one in flight, one ready; a third would make the reader pause).
 */
import type { LogRecord } from './record.js';
import { messageBytes } from './record.js';

export interface BatchLimits {
  readonly maxRecords: number;
  readonly maxBytes: number;
  readonly maxWaitMs: number;
}

export interface Batch {
  readonly records: readonly LogRecord[];
  /** Message bytes, plus a fixed allowance per record for its fields. */
  readonly bytes: number;
  /** The cursor to store once the batch is delivered (the last one its records carry). */
  readonly cursor: string | undefined;
}

/** What a record costs in a batch: its message and about as much as its fields take in any encoding. */
export const RECORD_OVERHEAD = 200;

export function batchOf(records: readonly LogRecord[]): Batch {
  let bytes = 0;
  for (const r of records) bytes += messageBytes(r.message) + RECORD_OVERHEAD;
  let cursor: string | undefined;
  for (let i = records.length - 1; i >= 0 && cursor === undefined; i--) cursor = records[i]!.cursor;
  return { records, bytes, cursor };
}

export class Batcher {
  readonly #limits: BatchLimits;
  #records: LogRecord[] = [];
  #bytes = 0;
  #since: number | undefined;

  constructor(limits: BatchLimits) {
    this.#limits = limits;
  }

  add(r: LogRecord, nowMs: number): void {
    if (this.#records.length === 0) this.#since = nowMs;
    this.#records.push(r);
    this.#bytes += messageBytes(r.message) + RECORD_OVERHEAD;
  }

  get size(): number {
    return this.#records.length;
  }

  get full(): boolean {
    return this.#records.length >= this.#limits.maxRecords || this.#bytes >= this.#limits.maxBytes;
  }

  /** When the batch being filled must be sent even if not full (undefined: it is empty). */
  get dueAt(): number | undefined {
    return this.#since === undefined ? undefined : this.#since + this.#limits.maxWaitMs;
  }

  /** The journal timestamp of its first record. */
  get oldestUs(): number | undefined {
    return this.#records[0]?.timestampUs;
  }

  ready(nowMs: number): boolean {
    return this.#records.length > 0 && (this.full || nowMs >= this.#since! + this.#limits.maxWaitMs);
  }

  /** Takes everything as one batch (undefined when empty). */
  take(): Batch | undefined {
    if (this.#records.length === 0) return undefined;
    const b = batchOf(this.#records);
    this.#records = [];
    this.#bytes = 0;
    this.#since = undefined;
    return b;
  }
}
