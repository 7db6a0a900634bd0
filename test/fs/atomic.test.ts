/** src/fs/atomic.ts, the one place that fsyncs a directory: against a real file system. */
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { copyFileDurable, createFileDurable, fsyncDir, fsyncDirSync, writeFileAtomic } from '../../src/fs/atomic.js';

const work = mkdtempSync(join(tmpdir(), 'glow-fs-atomic-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('fs-atomic', () => {
  test('fsyncDir and fsyncDirSync sync a directory, and throw for one that does not exist', async () => {
    await fsyncDir(work);
    fsyncDirSync(work);
    await assert.rejects(fsyncDir(join(work, 'nope')), { code: 'ENOENT' });
    assert.throws(() => fsyncDirSync(join(work, 'nope')), { code: 'ENOENT' });
  });

  test('writeFileAtomic replaces a file whole, with its mode, and leaves no temporary', () => {
    const p = join(work, 'a/b/file');
    writeFileAtomic(p, 'one', 0o600);
    writeFileAtomic(p, 'two', 0o640);
    assert.equal(readFileSync(p, 'utf8'), 'two');
    assert.equal(statSync(p).mode & 0o777, 0o640);
    assert.deepEqual(readdirSync(join(work, 'a/b')), ['file']);
  });

  test('createFileDurable creates only a new file (never through a link), with its mode whatever the umask', async () => {
    const umask = process.umask(0o077);
    try {
      await createFileDurable(join(work, 'new'), [Buffer.from('a'), Buffer.from('b')], 0o755);
    } finally {
      process.umask(umask);
    }
    assert.equal(readFileSync(join(work, 'new'), 'utf8'), 'ab');
    assert.equal(statSync(join(work, 'new')).mode & 0o777, 0o755);
    await assert.rejects(createFileDurable(join(work, 'new'), 'again'), { code: 'EEXIST' });
    writeFileSync(join(work, 'target'), 'keep');
    symlinkSync(join(work, 'target'), join(work, 'link'));
    await assert.rejects(createFileDurable(join(work, 'link'), 'through'), { code: 'EEXIST' });
    assert.equal(readFileSync(join(work, 'target'), 'utf8'), 'keep');
    assert.equal(lstatSync(join(work, 'link')).isSymbolicLink(), true);
  });

  test('copyFileDurable copies to a new file with the given mode', async () => {
    await copyFileDurable(join(work, 'target'), join(work, 'copy'), 0o644);
    assert.equal(readFileSync(join(work, 'copy'), 'utf8'), 'keep');
    assert.equal(statSync(join(work, 'copy')).mode & 0o777, 0o644);
    await assert.rejects(copyFileDurable(join(work, 'target'), join(work, 'copy'), 0o644), { code: 'EEXIST' });
  });
});
