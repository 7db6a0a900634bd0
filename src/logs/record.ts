/**
 * A log record as every sink receives it: one line of an instance (reassembled when journald split it), with the
 * fields Glow's units attach. Built from a JournalEntry by the reassembler.
 */
import { isUtf8 } from 'node:buffer';
import type { JournalEntry } from './journal-entry.js';

export interface LogRecord {
  /** The message as journald stored it: text, or bytes when journald gave bytes (non-UTF-8, control characters). */
  readonly message: string | Buffer;
  /** Microseconds since the epoch, from the journal (__REALTIME_TIMESTAMP of the first piece). */
  readonly timestampUs: number;
  /** syslog severity 0–7 (journald's PRIORITY; 6, info, for plain stdout). */
  readonly priority: number;
  /** `stdout` (systemd passes an instance's stdout and stderr through one stream), `stderr` (podman), or the
   * journal transport (`journal`, `syslog`) for an app that writes to journald itself. */
  readonly stream: string;
  readonly app: string;
  readonly version: string | undefined;
  readonly instance: number | undefined;
  readonly node: string;
  readonly unit: string;
  readonly pid: number | undefined;
  /** True when the record is a piece of a longer line that could not be joined (too long, or its rest never came). */
  readonly partial: boolean;
  /**
   * The journal cursor to store once this record and every record before it are delivered: the cursor of its
   * last piece, or earlier while a split line of another stream is still being joined (so that a restart reads
   * that line's first piece again). Undefined: nothing may be stored yet.
   */
  readonly cursor: string | undefined;
}

/** The app a record belongs to: GLOW_APP, else the unit's name (`glow-proxy.service` → `glow-proxy`). */
export function appOf(entry: JournalEntry): string {
  if (entry.app) return entry.app;
  const unit = entry.unit ?? entry.identifier ?? 'unknown';
  return unit.replace(/\.service$/, '');
}

export function streamOf(entry: JournalEntry): string {
  if (entry.transport === 'stdout') return 'stdout';
  // conmon's journald driver: PRIORITY 6 for the container's stdout, 3 for its stderr.
  if (entry.containerId !== undefined) return entry.priority === 3 ? 'stderr' : 'stdout';
  return entry.transport ?? 'journal';
}

export function messageBytes(m: string | Buffer): number {
  return typeof m === 'string' ? Buffer.byteLength(m) : m.length;
}

/** The message as text when it is valid UTF-8 (control characters included); undefined when it is not. */
export function messageText(m: string | Buffer): string | undefined {
  if (typeof m === 'string') return m;
  return isUtf8(m) ? m.toString('utf8') : undefined;
}

export function messageBuffer(m: string | Buffer): Buffer {
  return typeof m === 'string' ? Buffer.from(m, 'utf8') : m;
}
