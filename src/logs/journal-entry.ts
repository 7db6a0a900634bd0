/**
 * One line of `journalctl -o json --all` → a JournalEntry, robustly:
 *
 * - a field is a JSON string when journald holds printable UTF-8, an array of byte values otherwise (invalid
 *   UTF-8, control characters such as ANSI colours), and an array of those when the entry holds the field more
 *   than once (the first value is taken);
 * - fields larger than 4096 bytes are `null` unless journalctl runs with `--all`, which the reader always passes
 *   (a `null` MESSAGE still yields an entry, with an empty message);
 * - a line that is not a JSON object with a `__CURSOR` is reported, not thrown.
 *
 * Pure: no I/O. The message keeps journald's form: a string when journald printed one, the bytes otherwise.
 */

/** The journal fields the forwarder reads (journalctl always adds __CURSOR, the timestamps and _BOOT_ID). */
export const OUTPUT_FIELDS = [
  'MESSAGE',
  'PRIORITY',
  '_SYSTEMD_UNIT',
  '_STREAM_ID',
  '_LINE_BREAK',
  '_PID',
  '_TRANSPORT',
  'SYSLOG_IDENTIFIER',
  'GLOW_APP',
  'GLOW_VERSION',
  'GLOW_INSTANCE',
  'GLOW_NODE',
  'CONTAINER_PARTIAL_MESSAGE',
  'CONTAINER_ID_FULL',
] as const;

export interface JournalEntry {
  readonly cursor: string;
  /** __REALTIME_TIMESTAMP: microseconds since the epoch (exact as a double until the year 2255). */
  readonly timestampUs: number;
  /** MESSAGE as journald stored it: text when journald printed it as a string, bytes otherwise. */
  readonly message: string | Buffer;
  readonly priority: number;
  readonly unit: string | undefined;
  readonly streamId: string | undefined;
  readonly lineBreak: string | undefined;
  readonly pid: number | undefined;
  readonly transport: string | undefined;
  readonly identifier: string | undefined;
  readonly app: string | undefined;
  readonly version: string | undefined;
  readonly instance: string | undefined;
  readonly node: string | undefined;
  /** podman's journald driver (conmon) splits long lines itself and marks every piece but the last. */
  readonly containerPartial: boolean;
  readonly containerId: string | undefined;
}

export type ParsedEntry = { ok: true; entry: JournalEntry } | { ok: false; why: string };

type Raw = Record<string, unknown>;

/** A field's value as a string or bytes; the first value of a repeated field. */
function value(v: unknown): string | Buffer | undefined {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) {
    if (v.length === 0) return Buffer.alloc(0);
    if (typeof v[0] === 'number') return Buffer.from(v as number[]);
    return value(v[0]); // repeated field: [ "a", "b" ] or [ [1,2], [3] ]
  }
  return undefined;
}

function text(v: unknown): string | undefined {
  const x = value(v);
  return x === undefined ? undefined : typeof x === 'string' ? x : x.toString('utf8');
}

export function parseEntry(line: string): ParsedEntry {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    return { ok: false, why: `not JSON: ${(e as Error).message}` };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, why: 'not a JSON object' };
  const r = raw as Raw;
  const cursor = r['__CURSOR'];
  if (typeof cursor !== 'string' || cursor === '') return { ok: false, why: 'no __CURSOR' };
  const ts = Number(text(r['__REALTIME_TIMESTAMP']) ?? NaN);
  const prio = Number(text(r['PRIORITY']) ?? 6);
  const pid = text(r['_PID']);
  return {
    ok: true,
    entry: {
      cursor,
      timestampUs: Number.isFinite(ts) ? ts : 0,
      message: value(r['MESSAGE']) ?? '',
      priority: Number.isInteger(prio) && prio >= 0 && prio <= 7 ? prio : 6,
      unit: text(r['_SYSTEMD_UNIT']),
      streamId: text(r['_STREAM_ID']),
      lineBreak: text(r['_LINE_BREAK']),
      pid: pid !== undefined && /^[0-9]+$/.test(pid) ? Number(pid) : undefined,
      transport: text(r['_TRANSPORT']),
      identifier: text(r['SYSLOG_IDENTIFIER']),
      app: text(r['GLOW_APP']),
      version: text(r['GLOW_VERSION']),
      instance: text(r['GLOW_INSTANCE']),
      node: text(r['GLOW_NODE']),
      containerPartial: text(r['CONTAINER_PARTIAL_MESSAGE']) === 'true',
      containerId: text(r['CONTAINER_ID_FULL']),
    },
  };
}
