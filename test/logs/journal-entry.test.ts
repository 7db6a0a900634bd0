import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseEntry } from '../../src/logs/journal-entry.js';
import { jsonEntry } from './helpers.js';

describe('parseEntry', () => {
  test('a plain stdout line: text message and Glow fields', () => {
    const p = parseEntry(jsonEntry({ message: 'hello world', ts: 1714564800123456, cursor: 'c-1' }));
    assert.ok(p.ok);
    assert.deepEqual(
      { ...p.entry },
      {
        cursor: 'c-1',
        timestampUs: 1714564800123456,
        message: 'hello world',
        priority: 6,
        unit: 'glow-web@1.service',
        streamId: 'stream-web-1',
        lineBreak: undefined,
        pid: 42,
        transport: 'stdout',
        identifier: 'web',
        app: 'web',
        version: '1.0',
        instance: '1',
        node: 'node-a',
        containerPartial: false,
        containerId: undefined,
      },
    );
  });

  test('a byte-array MESSAGE (non-UTF-8) stays bytes, exactly', () => {
    const bytes = Buffer.from([0x66, 0xff, 0xfe, 0x41, 0x00, 0x1b]);
    const p = parseEntry(jsonEntry({ message: bytes }));
    assert.ok(p.ok);
    assert.ok(Buffer.isBuffer(p.entry.message));
    assert.deepEqual(p.entry.message, bytes);
  });

  test('a field given more than once takes its first value, text or bytes', () => {
    const p = parseEntry(jsonEntry({ message: 'x', extra: { GLOW_APP: ['api', 'other'], GLOW_VERSION: [[0x31, 0x2e, 0x30], [0x32]] } }));
    assert.ok(p.ok);
    assert.equal(p.entry.app, 'api');
    assert.equal(p.entry.version, '1.0');
  });

  test('null fields (journalctl without --all) and odd values do not break the entry', () => {
    const p = parseEntry(jsonEntry({ message: 'x', extra: { MESSAGE: null, PRIORITY: 'loud', _PID: 'x1', _LINE_BREAK: 'line-max' } }));
    assert.ok(p.ok);
    assert.equal(p.entry.message, '');
    assert.equal(p.entry.priority, 6);
    assert.equal(p.entry.pid, undefined);
    assert.equal(p.entry.lineBreak, 'line-max');
  });

  test('multi-line messages keep their newlines', () => {
    const p = parseEntry(jsonEntry({ message: 'first\nsecond\n\tthird' }));
    assert.ok(p.ok);
    assert.equal(p.entry.message, 'first\nsecond\n\tthird');
  });

  test('what is not a journal entry is reported, not thrown', () => {
    for (const [line, why] of [
      ['{"MESSAGE":"x"', /not JSON/],
      ['[1,2]', /not a JSON object/],
      ['null', /not a JSON object/],
      ['{"MESSAGE":"no cursor"}', /no __CURSOR/],
    ] as const) {
      const p = parseEntry(line);
      assert.equal(p.ok, false, line);
      if (!p.ok) assert.match(p.why, why);
    }
  });
});
