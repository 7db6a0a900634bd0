/**
 * The pure parts of glow sync: sync.env parsing, sources, option precedence, revision names, publish order,
 * pruning and leftovers, and the state file's shape.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SYNC_CODES } from '../../src/base/codes.js';
import { GlowError } from '../../src/base/errors.js';
import { classifySource, parseDurationText, parseEnvFile, redactUrl, resolveOptions } from '../../src/sync/options.js';
import { byPublishOrder, isLeftover, nextSeq, orphans, parseRevisionName, planPrune, revisionName } from '../../src/sync/revisions.js';
import { parseSyncState } from '../../src/sync/state.js';
import { syncLayout } from '../../src/sync/layout.js';

const throwsCode = (f: () => unknown, code: keyof typeof SYNC_CODES, re?: RegExp) =>
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof GlowError, String(e));
    assert.equal(e.code, code);
    if (re) assert.match(e.message, re);
    return true;
  });

describe('sync.env', () => {
  test('KEY=value, quotes, comments and blank lines, as systemd reads them; other variables are kept for git', () => {
    const f = parseEnvFile(
      ['# the source', 'GLOW_SYNC_SOURCE="ssh://git@config.internal/glow.git"', '', "GLOW_SYNC_REF='main'", '; another comment', 'GLOW_SYNC_KEEP = 5', 'GIT_SSH_COMMAND=ssh -i /etc/glow/deploy_key'].join('\n'),
      'sync.env',
    );
    const o = resolveOptions({}, f, 'sync.env', '/');
    assert.deepEqual(o.source, { kind: 'git', url: 'ssh://git@config.internal/glow.git' });
    assert.equal(o.ref, 'main');
    assert.equal(o.keep, 5);
    assert.equal(o.repo, '/var/lib/glow/repo');
    assert.deepEqual(o.gitEnv, { GIT_SSH_COMMAND: 'ssh -i /etc/glow/deploy_key' });
  });

  test('an unknown GLOW_SYNC_ key is an error with its line; the interval says where it lives', () => {
    throwsCode(() => parseEnvFile('GLOW_SYNC_SOURCE=/srv/x\nGLOW_SYNC_REFF=main\n', '/etc/glow/sync.env'), 'GLOW_E_SYNC_USAGE', /sync\.env:2: unknown key GLOW_SYNC_REFF; the keys are GLOW_SYNC_SOURCE/);
    throwsCode(() => parseEnvFile('GLOW_SYNC_INTERVAL=5m\n', 'sync.env'), 'GLOW_E_SYNC_USAGE', /systemctl edit glow-sync\.timer/);
    throwsCode(() => parseEnvFile('just words\n', 'sync.env'), 'GLOW_E_SYNC_USAGE', /sync\.env:1: .* not a line `KEY=value`/);
    throwsCode(() => parseEnvFile('GLOW_SYNC_REF="main\n', 'sync.env'), 'GLOW_E_SYNC_USAGE', /quote/);
  });

  test('flags win over the file; the file over the defaults', () => {
    const f = parseEnvFile('GLOW_SYNC_SOURCE=/srv/push\nGLOW_SYNC_KEEP=7\nGLOW_SYNC_WAIT=5s\n', 'e');
    const o = resolveOptions({ source: 'https://h/x.git', keep: 2, ref: 'v1' }, f, 'e', '/');
    assert.deepEqual(o.source, { kind: 'git', url: 'https://h/x.git' });
    assert.equal(o.keep, 2);
    assert.equal(o.ref, 'v1');
    assert.equal(o.waitMs, 5000);
    assert.equal(o.timeoutMs, 120_000);
    assert.equal(resolveOptions({}, f, 'e', '/').source.kind, 'dir');
  });

  test('invalid values are usage errors naming the flag or the key', () => {
    throwsCode(() => resolveOptions({}, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /no source/);
    throwsCode(() => resolveOptions({ source: '/x', keep: 0 }, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /--keep/);
    throwsCode(() => resolveOptions({ source: '/x' }, parseEnvFile('GLOW_SYNC_KEEP=three', 'e'), 'e', '/'), 'GLOW_E_SYNC_USAGE', /GLOW_SYNC_KEEP/);
    throwsCode(() => resolveOptions({ source: 'file:///x', ref: 'HEAD~1' }, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /not a ref/);
    throwsCode(() => resolveOptions({ source: 'file:///x', ref: 'a..b' }, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /not a ref/);
    throwsCode(() => resolveOptions({ source: '/srv/dir', ref: 'main' }, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /file:\/\/\/srv\/dir/);
    throwsCode(() => resolveOptions({ source: 'file:///x', verify: 'ssh' }, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /allowed signers/);
    throwsCode(() => resolveOptions({ source: '/srv/dir', verifySigners: '/a' }, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /directory/);
    throwsCode(() => resolveOptions({ source: 'file:///x', wait: 'soon' }, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /--wait/);
    throwsCode(() => resolveOptions({ source: 'ftp://h/x' }, undefined, 'e', '/'), 'GLOW_E_SYNC_USAGE', /scheme ftp/);
  });

  test('--verify-signers implies ssh; a relative path is resolved', () => {
    const o = resolveOptions({ source: 'file:///x', verifySigners: 'signers' }, undefined, 'e', '/etc/glow');
    assert.equal(o.verify, 'ssh');
    assert.equal(o.allowedSigners, '/etc/glow/signers');
  });

  test('sources: URLs and scp form are git, paths are directories; credentials are not shown', () => {
    assert.equal(classifySource('git@config.internal:ops/glow.git', '/').kind, 'git');
    assert.equal(classifySource('git://127.0.0.1:9418/x', '/').kind, 'git');
    assert.deepEqual(classifySource('push/glow', '/srv'), { kind: 'dir', path: '/srv/push/glow' });
    assert.deepEqual(classifySource('./a:b', '/srv'), { kind: 'dir', path: '/srv/a:b' });
    assert.equal(redactUrl('https://bot:s3cret@git.example.com/x.git'), 'https://git.example.com/x.git');
  });

  test('durations', () => {
    assert.equal(parseDurationText('30s'), 30_000);
    assert.equal(parseDurationText('2m'), 120_000);
    assert.equal(parseDurationText('500ms'), 500);
    assert.equal(parseDurationText('0'), 0);
    assert.equal(parseDurationText('10'), 10_000);
    assert.equal(parseDurationText('1.5'), undefined);
    assert.equal(parseDurationText('-1s'), undefined);
  });
});

describe('revisions', () => {
  const at = new Date('2026-12-01T10:15:00Z');
  test('a name says when, in which order and what; it parses back', () => {
    const n = revisionName(42, at, '3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345');
    assert.equal(n, 'r-20261201-101500-000042-3f2a9c1b7d4e');
    assert.deepEqual(parseRevisionName(n), { name: n, time: '20261201-101500', seq: 42, id12: '3f2a9c1b7d4e' });
    assert.equal(parseRevisionName('.tmp-12-ab'), undefined);
    assert.equal(parseRevisionName('r-2026-x'), undefined);
  });

  test('the next sequence number follows the highest, whatever else the directory holds', () => {
    assert.equal(nextSeq([]), 1);
    assert.equal(nextSeq(['r-20261201-101500-000009-aaaaaaaaaaaa', 'r-20250101-000000-000010-bbbbbbbbbbbb', 'README', '.tmp-1-x']), 11);
    assert.equal(nextSeq(['r-20261201-101500-1000000-aaaaaaaaaaaa']), 1_000_001);
  });

  test('pruning keeps the last N published and the current one, by sequence, never by time', () => {
    // The time in a name is not the order either: a clock set back must not make the newest look old.
    const names = [
      'r-20261201-101500-000001-aaaaaaaaaaaa',
      'r-20991231-000000-000002-bbbbbbbbbbbb',
      'r-20261201-101700-000003-cccccccccccc',
      'r-19700101-000000-000004-dddddddddddd',
      'somebody-elses-dir',
    ];
    assert.deepEqual(byPublishOrder(names).map((r) => r.seq), [4, 3, 2, 1]);
    assert.deepEqual(planPrune(names, names[3], 2), [names[1], names[0]]);
    assert.deepEqual(planPrune(names, names[3], 1), [names[2], names[1], names[0]]);
    // The current one is never pruned, even when it is not among the last published (an operator's rollback).
    assert.deepEqual(planPrune(names, names[0], 2), [names[1]]);
    assert.deepEqual(planPrune(names, undefined, 10), []);
  });

  test('leftovers and orphans of a killed run', () => {
    assert.ok(isLeftover('.tmp-123-abcd'));
    assert.ok(isLeftover('.del-123-r-20261201-101500-000001-aaaaaaaaaaaa'));
    assert.ok(!isLeftover('r-20261201-101500-000001-aaaaaaaaaaaa'));
    const names = ['r-20261201-101500-000001-aaaaaaaaaaaa', 'r-20261201-101600-000002-bbbbbbbbbbbb', 'r-20261201-101700-000003-cccccccccccc'];
    assert.deepEqual(orphans(names, names[1]), [names[2]]);
    assert.deepEqual(orphans(names, names[2]), []);
    assert.deepEqual(orphans(names, undefined), []);
    // The link pointed back by hand at an older revision: what sync switched to since is not an orphan.
    assert.deepEqual(orphans(names, names[0], names[2]), []);
    assert.deepEqual(orphans(names, names[0], names[1]), [names[2]]);
  });

  test('the layout follows --repo', () => {
    const l = syncLayout('/var/lib/glow/repo');
    assert.equal(l.revisions, '/var/lib/glow/revisions');
    assert.equal(l.state, '/var/lib/glow/sync/state.json');
    assert.equal(l.mirror, '/var/lib/glow/sync/git');
    assert.equal(syncLayout('/srv/x/repo/').lock, '/srv/x/sync/lock');
  });
});

describe('state file', () => {
  const good = {
    version: 1,
    source: 'file:///srv/x',
    kind: 'git',
    ref: 'main',
    revision: 'r-20261201-101500-000001-aaaaaaaaaaaa',
    commit: 'a'.repeat(40),
    publishedAt: '2026-12-01T10:15:00.000Z',
    lastAttemptAt: '2026-12-01T10:16:00.000Z',
    lastResult: 'failed',
    lastSuccessAt: '2026-12-01T10:15:00.000Z',
    lastError: { code: 'GLOW_E_SYNC_FETCH', message: 'm', at: '2026-12-01T10:16:00.000Z' },
  };
  test('its shape is checked', () => {
    assert.deepEqual(parseSyncState(good), good);
    throwsCode(() => parseSyncState({ ...good, version: 2 }), 'GLOW_E_SYNC_STATE', /version/);
    throwsCode(() => parseSyncState({ ...good, lastResult: 'ok' }), 'GLOW_E_SYNC_STATE', /lastResult/);
    throwsCode(() => parseSyncState({ ...good, lastError: { code: 1 } }), 'GLOW_E_SYNC_STATE', /lastError/);
    throwsCode(() => parseSyncState([]), 'GLOW_E_SYNC_STATE');
  });
});
