/**
 * Record → bytes on the wire, one pure function per format:
 *
 * - JSON lines (file and http sinks, `glow logs --json`): one object per line with `time` (RFC 3339, µs),
 *   `timestamp_us`, `app`, `version`, `instance`, `node`, `unit`, `pid`, `priority`, `stream` and `message`. A
 *   message that is not valid UTF-8 cannot be a JSON string: `message` then holds it with U+FFFD for the bad bytes
 *   and `message_base64` the exact bytes.
 * - RFC 5424 syslog: `<PRI>1 TIMESTAMP node app PID - [glow@32473 …] MSG`, the message's bytes as they are
 *   (MSG-ANY: no BOM, non-UTF-8 kept), and RFC 6587 octet-counting framing for TCP and TLS (`LEN SP MSG`), which
 *   carries multi-line and binary messages intact.
 * - Loki's push API (`/loki/api/v1/push`, JSON): one stream per app/instance/node, lines in journal order,
 *   nanosecond timestamps made distinct within a microsecond so that Loki keeps equal lines. A non-UTF-8 message
 *   goes base64-encoded into a stream with the extra label `encoding="base64"`.
 */
import type { LogRecord } from './record.js';
import { messageBuffer, messageText } from './record.js';

/** RFC 3339 in UTC with microseconds: 2024-05-01T12:00:00.123456Z. */
export function isoMicros(us: number): string {
  const s = Math.floor(us / 1e6);
  if (s !== lastSecond) {
    lastSecond = s;
    lastPrefix = new Date(s * 1000).toISOString().slice(0, 20); // 2024-05-01T12:00:00.
  }
  return `${lastPrefix}${String(us - s * 1e6).padStart(6, '0')}Z`;
}
// Records come in time order: the formatted second is reused.
let lastSecond = NaN;
let lastPrefix = '';

const str = JSON.stringify;

export function jsonLine(r: LogRecord): string {
  const text = messageText(r.message);
  let out = `{"time":"${isoMicros(r.timestampUs)}","timestamp_us":${r.timestampUs},"app":${str(r.app)}`;
  if (r.version !== undefined) out += `,"version":${str(r.version)}`;
  if (r.instance !== undefined) out += `,"instance":${r.instance}`;
  out += `,"node":${str(r.node)},"unit":${str(r.unit)}`;
  if (r.pid !== undefined) out += `,"pid":${r.pid}`;
  out += `,"priority":${r.priority},"stream":${str(r.stream)}`;
  if (text !== undefined) out += `,"message":${str(text)}`;
  else out += `,"message":${str((r.message as Buffer).toString('utf8'))},"message_base64":"${(r.message as Buffer).toString('base64')}"`;
  if (r.partial) out += ',"partial":true';
  return `${out}}\n`;
}

/** The syslog facility of every record: 1, user-level messages. */
export const SYSLOG_FACILITY = 1;
/** Structured data ID: `glow` under 32473, the private enterprise number RFC 5612 sets aside for examples. */
export const SD_ID = 'glow@32473';

/** A header field: printable US-ASCII without spaces, at most `max` characters, `-` when empty. */
function headerField(s: string | undefined, max: number): string {
  if (s === undefined || s === '') return '-';
  const clean = s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

function sdValue(s: string): string {
  return s.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

/** One RFC 5424 message (without framing). */
export function rfc5424(r: LogRecord): Buffer {
  const pri = SYSLOG_FACILITY * 8 + r.priority;
  let sd = `[${SD_ID} app="${sdValue(r.app)}"`;
  if (r.version !== undefined) sd += ` version="${sdValue(r.version)}"`;
  if (r.instance !== undefined) sd += ` instance="${r.instance}"`;
  sd += ` node="${sdValue(r.node)}" unit="${sdValue(r.unit)}" stream="${sdValue(r.stream)}"`;
  if (r.partial) sd += ' partial="true"';
  sd += ']';
  const head = `<${pri}>1 ${isoMicros(r.timestampUs)} ${headerField(r.node, 255)} ${headerField(r.app, 48)} ${headerField(r.pid === undefined ? undefined : String(r.pid), 128)} - ${sd} `;
  return Buffer.concat([Buffer.from(head, 'utf8'), messageBuffer(r.message)]);
}

/** RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`. */
export function octetFrame(msg: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${msg.length} `, 'ascii'), msg]);
}

export interface LokiStream {
  stream: Record<string, string>;
  values: [string, string][];
}

/** Loki's labels for a record: app, instance, node (and `encoding` for base64 lines). */
export function lokiLabels(r: LogRecord, base64: boolean): Record<string, string> {
  const labels: Record<string, string> = { app: r.app };
  if (r.instance !== undefined) labels['instance'] = String(r.instance);
  labels['node'] = r.node;
  if (base64) labels['encoding'] = 'base64';
  return labels;
}

/** The body of one push request. */
export function lokiPush(records: readonly LogRecord[]): string {
  const streams = new Map<string, { s: LokiStream; lastUs: number; seq: number }>();
  for (const r of records) {
    const text = messageText(r.message);
    const line = text ?? (r.message as Buffer).toString('base64');
    const labels = lokiLabels(r, text === undefined);
    const key = `${labels['app']}\0${labels['instance'] ?? ''}\0${labels['node']}\0${labels['encoding'] ?? ''}`;
    let st = streams.get(key);
    if (!st) streams.set(key, (st = { s: { stream: labels, values: [] }, lastUs: -1, seq: 0 }));
    st.seq = r.timestampUs === st.lastUs ? Math.min(st.seq + 1, 999) : 0;
    st.lastUs = r.timestampUs;
    st.s.values.push([`${r.timestampUs}${String(st.seq).padStart(3, '0')}`, line]);
  }
  return JSON.stringify({ streams: [...streams.values()].map((x) => x.s) });
}

/** `TIME app#instance message` for `glow logs` on a terminal. */
export function textLine(r: LogRecord): Buffer {
  const who = r.instance !== undefined ? `${r.app}#${r.instance}` : r.app;
  return Buffer.concat([Buffer.from(`${isoMicros(r.timestampUs)} ${who} `, 'utf8'), messageBuffer(r.message), Buffer.from('\n')]);
}
