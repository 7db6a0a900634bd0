import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { followArgs, logsArgs } from '../../src/logs/journal-args.js';
import { OUTPUT_FIELDS } from '../../src/logs/journal-entry.js';
import { joinSince } from '../../src/cli/logs.js';

const FIELDS = `--output-fields=${OUTPUT_FIELDS.join(',')}`;

describe('journalctl arguments', () => {
  test('a sink without a cursor follows this node from the start of the boot, every field in full, the backlog too', () => {
    assert.deepEqual(followArgs({ node: 'node-a', follow: true }), ['--output=json', '--all', '--no-pager', '--quiet', FIELDS, '--follow', '--no-tail', '--boot', 'GLOW_NODE=node-a']);
  });

  test('with a cursor: after it, with the same match', () => {
    const args = followArgs({ node: 'node-a', follow: true, after: 's=1;i=2' });
    assert.ok(args.includes('--after-cursor=s=1;i=2'));
    assert.ok(!args.includes('--boot'));
    assert.equal(args.at(-1), 'GLOW_NODE=node-a');
    assert.ok(args.includes('--no-tail'), '--follow alone would skip all but the last 10 lines');
    assert.ok(!args.some((a) => a.startsWith('--cursor-file')), 'journalctl 252 never writes it under --follow');
  });

  test("the proxy's access log joins as an ORed match group", () => {
    const args = followArgs({ node: 'n', follow: false, proxy: { unit: 'glow-proxy.service', identifier: 'glow-access' }, directory: '/j' });
    assert.deepEqual(args.slice(-4), ['GLOW_NODE=n', '+', '_SYSTEMD_UNIT=glow-proxy.service', 'SYSLOG_IDENTIFIER=glow-access']);
    assert.ok(args.includes('--directory=/j'));
    assert.ok(!args.includes('--follow'));
  });

  test('glow logs: an app, an instance, since, follow', () => {
    assert.deepEqual(logsArgs({ app: 'web', follow: false }), ['--output=json', '--all', '--no-pager', '--quiet', FIELDS, 'GLOW_APP=web']);
    assert.deepEqual(logsArgs({ app: 'web', instance: 2, follow: true }).slice(5), ['--lines=10', '--follow', 'GLOW_APP=web', 'GLOW_INSTANCE=2']);
    assert.deepEqual(logsArgs({ app: 'web', since: '-1h', follow: true }).slice(5), ['--since=-1h', '--no-tail', '--follow', 'GLOW_APP=web']);
    assert.deepEqual(joinSince(['web', '--since', '-1h', '-f']), ['web', '--since=-1h', '-f'], 'a relative --since is not an option');
    assert.deepEqual(joinSince(['web', '--since', 'today', '-f']), ['web', '--since', 'today', '-f']);
    assert.deepEqual(logsArgs({ app: 'web', lines: 5, follow: false }).slice(5), ['--lines=5', 'GLOW_APP=web']);
  });
});
