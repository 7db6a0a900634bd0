/**
 * Journal entries as `journalctl -o json --all` prints them, for the pure tests of src/logs/.
 */
import type { LogRecord } from '../../src/logs/record.js';

let seq = 0;

/** A JSON line of journalctl for an instance's stdout line (MESSAGE as text, or bytes when given a Buffer). */
export function jsonEntry(fields: { message: string | Buffer; app?: string; instance?: string; stream?: string; lineBreak?: string; ts?: number; cursor?: string; extra?: Record<string, unknown> }): string {
  seq++;
  const app = fields.app ?? 'web';
  const instance = fields.instance ?? '1';
  const o: Record<string, unknown> = {
    __CURSOR: fields.cursor ?? `s=abc;i=${seq.toString(16)};b=boot;m=${seq.toString(16)};t=${fields.ts ?? 1714564800000000 + seq};x=${seq}`,
    __REALTIME_TIMESTAMP: String(fields.ts ?? 1714564800000000 + seq),
    __MONOTONIC_TIMESTAMP: String(seq),
    _BOOT_ID: 'boot',
    MESSAGE: typeof fields.message === 'string' ? fields.message : [...fields.message],
    PRIORITY: '6',
    _SYSTEMD_UNIT: `glow-${app}@${instance}.service`,
    _STREAM_ID: fields.stream ?? `stream-${app}-${instance}`,
    _TRANSPORT: 'stdout',
    _PID: '42',
    SYSLOG_IDENTIFIER: app,
    GLOW_APP: app,
    GLOW_VERSION: '1.0',
    GLOW_INSTANCE: instance,
    GLOW_NODE: 'node-a',
    ...(fields.lineBreak ? { _LINE_BREAK: fields.lineBreak } : {}),
    ...fields.extra,
  };
  return JSON.stringify(o);
}

export function record(over: Partial<LogRecord> = {}): LogRecord {
  return {
    message: 'hello',
    timestampUs: 1714564800123456,
    priority: 6,
    stream: 'stdout',
    app: 'web',
    version: '1.4.2',
    instance: 2,
    node: 'node-a',
    unit: 'glow-web@2.service',
    pid: 42,
    partial: false,
    cursor: 'c1',
    ...over,
  };
}
