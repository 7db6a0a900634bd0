import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isoMicros, jsonLine, lokiPush, octetFrame, rfc5424, textLine } from '../../src/logs/encode.js';
import { record } from './helpers.js';

describe('encoders', () => {
  test('RFC 3339 with microseconds', () => {
    assert.equal(isoMicros(1714564800123456), '2024-05-01T12:00:00.123456Z');
    assert.equal(isoMicros(1714564800000001), '2024-05-01T12:00:00.000001Z');
  });

  test('JSON lines: every field, one line, multi-line messages escaped', () => {
    const line = jsonLine(record({ message: 'a "quoted"\nsecond line' }));
    assert.ok(line.endsWith('}\n') && line.indexOf('\n') === line.length - 1);
    assert.deepEqual(JSON.parse(line), {
      time: '2024-05-01T12:00:00.123456Z',
      timestamp_us: 1714564800123456,
      app: 'web',
      version: '1.4.2',
      instance: 2,
      node: 'node-a',
      unit: 'glow-web@2.service',
      pid: 42,
      priority: 6,
      stream: 'stdout',
      message: 'a "quoted"\nsecond line',
    });
  });

  test('JSON lines: bytes that are UTF-8 (colours) are text; bytes that are not keep their exact form in base64', () => {
    const colour = JSON.parse(jsonLine(record({ message: Buffer.from('\x1b[31mred\x1b[0m') })));
    assert.equal(colour.message, '\x1b[31mred\x1b[0m');
    assert.equal(colour.message_base64, undefined);
    const bytes = Buffer.from([0x66, 0xff, 0xfe, 0x41]);
    const bin = JSON.parse(jsonLine(record({ message: bytes, partial: true })));
    assert.equal(bin.message, 'f\ufffd\ufffdA');
    assert.deepEqual(Buffer.from(bin.message_base64, 'base64'), bytes);
    assert.equal(bin.partial, true);
  });

  test('RFC 5424: header, structured data escaped, the message bytes as they are', () => {
    const msg = rfc5424(record({ message: Buffer.from([0x68, 0x69, 0xff, 0x0a, 0x21]), version: 'v"1]\\', priority: 3 }));
    const head = '<11>1 2024-05-01T12:00:00.123456Z node-a web 42 - [glow@32473 app="web" version="v\\"1\\]\\\\" instance="2" node="node-a" unit="glow-web@2.service" stream="stdout"] ';
    assert.equal(msg.subarray(0, Buffer.byteLength(head)).toString('utf8'), head);
    assert.deepEqual(msg.subarray(Buffer.byteLength(head)), Buffer.from([0x68, 0x69, 0xff, 0x0a, 0x21]));
  });

  test('RFC 5424: empty header fields are NILVALUE, long app names are cut to 48 characters', () => {
    const msg = rfc5424(record({ pid: undefined, version: undefined, instance: undefined, app: 'a'.repeat(60) })).toString();
    assert.match(msg, new RegExp(`^<14>1 \\S+ node-a ${'a'.repeat(48)} - - \\[glow@32473 app="${'a'.repeat(60)}" node=`));
  });

  test('octet counting: the length in bytes, a space, the message', () => {
    assert.equal(octetFrame(Buffer.from('héllo\nx')).toString(), '8 héllo\nx');
  });

  test('Loki: a stream per app/instance/node in journal order, distinct nanoseconds within one microsecond', () => {
    const body = JSON.parse(
      lokiPush([
        record({ message: 'one', timestampUs: 5 }),
        record({ message: 'other', instance: 3, timestampUs: 5 }),
        record({ message: 'two', timestampUs: 5 }),
        record({ message: 'three', timestampUs: 6 }),
        record({ message: Buffer.from([0xff]), timestampUs: 7 }),
      ]),
    );
    assert.deepEqual(body, {
      streams: [
        { stream: { app: 'web', instance: '2', node: 'node-a' }, values: [['5000', 'one'], ['5001', 'two'], ['6000', 'three']] },
        { stream: { app: 'web', instance: '3', node: 'node-a' }, values: [['5000', 'other']] },
        { stream: { app: 'web', instance: '2', node: 'node-a', encoding: 'base64' }, values: [['7000', '/w==']] },
      ],
    });
  });

  test('text lines for glow logs', () => {
    assert.equal(textLine(record()).toString(), '2024-05-01T12:00:00.123456Z web#2 hello\n');
  });
});
