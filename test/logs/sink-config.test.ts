import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultSinkName, parseSinkUrl } from '../../src/config/sinks.js';

describe('sink URLs and names', () => {
  test('syslog URLs, with their default ports', () => {
    assert.deepEqual(parseSinkUrl('syslog', 'udp://logs.internal'), { ok: true, value: { scheme: 'udp', host: 'logs.internal', port: 514, path: '' } });
    assert.deepEqual(parseSinkUrl('syslog', 'tls://10.0.0.5'), { ok: true, value: { scheme: 'tls', host: '10.0.0.5', port: 6514, path: '' } });
    assert.deepEqual(parseSinkUrl('syslog', 'tcp://[::1]:1514'), { ok: true, value: { scheme: 'tcp', host: '::1', port: 1514, path: '' } });
    assert.equal(parseSinkUrl('syslog', 'https://x').ok, false);
  });

  test('loki gets its push path when the URL has none; credentials become auth', () => {
    assert.deepEqual(parseSinkUrl('loki', 'http://loki:3100'), { ok: true, value: { scheme: 'http', host: 'loki', port: 3100, path: '/loki/api/v1/push' } });
    assert.deepEqual(parseSinkUrl('http', 'https://u:p%40ss@c.internal/in?x=1'), { ok: true, value: { scheme: 'https', host: 'c.internal', port: 443, path: '/in?x=1', auth: 'u:p@ss' } });
  });

  test('default names: stable, file-name safe, without credentials or query', () => {
    assert.equal(defaultSinkName('syslog', 'tcp://Logs.Internal:514'), 'syslog-logs.internal-514');
    assert.equal(defaultSinkName('http', 'http://u:secret@c.internal/ingest?token=abc'), 'http-c.internal-ingest');
    assert.equal(defaultSinkName('file', '/var/log/glow/{app}.log'), 'file-var-log-glow-app-.log');
    const long = defaultSinkName('http', `http://c.internal/${'a'.repeat(200)}`);
    assert.ok(long.length <= 80 && /^http-c\.internal-a+-[0-9a-f]{8}$/.test(long), long);
  });
});
