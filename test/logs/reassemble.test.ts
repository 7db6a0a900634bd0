import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseEntry } from '../../src/logs/journal-entry.js';
import type { JournalEntry } from '../../src/logs/journal-entry.js';
import { Reassembler } from '../../src/logs/reassemble.js';
import type { LogRecord } from '../../src/logs/record.js';
import { jsonEntry } from './helpers.js';

const opts = { maxRecordBytes: 1 << 20, maxWaitMs: 2000, node: 'node-a' };

function entry(fields: Parameters<typeof jsonEntry>[0]): JournalEntry {
  const p = parseEntry(jsonEntry(fields));
  assert.ok(p.ok);
  return p.entry;
}

describe('Reassembler', () => {
  test('a whole line is a record at once, with the cursor of its entry', () => {
    const r = new Reassembler(opts, 'c0');
    const out = r.push(entry({ message: 'hello', cursor: 'c1', ts: 1000 }), 0);
    assert.equal(out.length, 1);
    assert.deepEqual(
      { ...out[0] },
      { message: 'hello', timestampUs: 1000, priority: 6, stream: 'stdout', app: 'web', version: '1.0', instance: 1, node: 'node-a', unit: 'glow-web@1.service', pid: 42, partial: false, cursor: 'c1' },
    );
  });

  test('pieces marked line-max are joined, while other streams flow on; cursors never skip a held first piece', () => {
    const big = 'x'.repeat(49152);
    const r = new Reassembler(opts, 'c0');
    const got: LogRecord[] = [];
    got.push(...r.push(entry({ message: big, lineBreak: 'line-max', cursor: 'a1', ts: 10 }), 0));
    got.push(...r.push(entry({ message: 'b-line', app: 'api', cursor: 'b1', ts: 11 }), 0));
    assert.equal(r.safeCursor, 'c0', 'the first piece of a held line is after c0 only');
    got.push(...r.push(entry({ message: big, lineBreak: 'line-max', cursor: 'a2', ts: 12 }), 0));
    got.push(...r.push(entry({ message: 'tail', cursor: 'a3', ts: 13 }), 0));
    assert.deepEqual(
      got.map((x) => [x.app, typeof x.message === 'string' ? x.message.length : -1, x.timestampUs, x.cursor, x.partial]),
      [
        ['api', 6, 11, 'c0', false],
        ['web', 49152 * 2 + 4, 10, 'a3', false],
      ],
    );
    assert.equal(r.held, 0);
    assert.equal(r.safeCursor, 'a3');
  });

  test('two streams split at once: the safe cursor is before the earliest held piece', () => {
    const r = new Reassembler(opts, 'c0');
    r.push(entry({ message: 'A1', lineBreak: 'line-max', cursor: 'a1' }), 0);
    r.push(entry({ message: 'B1', app: 'api', lineBreak: 'line-max', cursor: 'b1' }), 0);
    assert.equal(r.safeCursor, 'c0');
    const a = r.push(entry({ message: 'A2', cursor: 'a2' }), 0);
    assert.deepEqual(a.map((x) => [x.message, x.cursor]), [['A1A2', 'a1']], 'B is still held from after a1');
    const b = r.push(entry({ message: 'B2', app: 'api', cursor: 'b2' }), 0);
    assert.deepEqual(b.map((x) => [x.message, x.cursor]), [['B1B2', 'b2']]);
  });

  test('pieces with bytes are joined as bytes, exactly', () => {
    const r = new Reassembler(opts);
    r.push(entry({ message: Buffer.from([0xff, 0x41]), lineBreak: 'line-max' }), 0);
    const out = r.push(entry({ message: 'tail' }), 0);
    assert.deepEqual(out[0]!.message, Buffer.from([0xff, 0x41, 0x74, 0x61, 0x69, 0x6c]));
  });

  test('eof, nul and pid-change end a line; only line-max continues it', () => {
    const r = new Reassembler(opts);
    for (const lb of ['eof', 'nul', 'pid-change']) assert.equal(r.push(entry({ message: lb, lineBreak: lb }), 0).length, 1);
    assert.equal(r.held, 0);
  });

  test("podman's partial messages are joined per container", () => {
    const r = new Reassembler(opts);
    const c = (message: string, partial: boolean) =>
      entry({ message, extra: { _STREAM_ID: undefined, _TRANSPORT: 'journal', CONTAINER_ID_FULL: 'abc', CONTAINER_PARTIAL_MESSAGE: partial ? 'true' : undefined } });
    assert.equal(r.push(c('one ', true), 0).length, 0);
    const out = r.push(c('two\n', false), 0);
    assert.deepEqual(out.map((x) => [x.message, x.stream]), [['one two\n', 'stdout']]);
  });

  test('a line whose rest does not come is given up after maxWaitMs, marked partial', () => {
    const r = new Reassembler({ ...opts, maxWaitMs: 100 }, 'c0');
    r.push(entry({ message: 'half', lineBreak: 'line-max', cursor: 'a1' }), 1000);
    assert.deepEqual(r.flush(1050), []);
    const out = r.flush(1100);
    assert.deepEqual(out.map((x) => [x.message, x.partial, x.cursor]), [['half', true, 'a1']]);
  });

  test('a line longer than maxRecordBytes is given up in pieces, memory stays bounded', () => {
    const r = new Reassembler({ ...opts, maxRecordBytes: 100 });
    const out: LogRecord[] = [];
    for (let i = 0; i < 5; i++) out.push(...r.push(entry({ message: 'y'.repeat(60), lineBreak: 'line-max' }), 0));
    out.push(...r.push(entry({ message: 'end' }), 0));
    assert.deepEqual(out.map((x) => [(x.message as string).length, x.partial]), [[120, true], [120, true], [63, false]]);
  });

  test('records without GLOW fields (the proxy) take the unit as app and this node', () => {
    const r = new Reassembler(opts);
    const out = r.push(entry({ message: 'GET /', extra: { GLOW_APP: undefined, GLOW_INSTANCE: undefined, GLOW_NODE: undefined, GLOW_VERSION: undefined, _SYSTEMD_UNIT: 'glow-proxy.service' } }), 0);
    assert.deepEqual([out[0]!.app, out[0]!.instance, out[0]!.node, out[0]!.version], ['glow-proxy', undefined, 'node-a', undefined]);
  });
});
