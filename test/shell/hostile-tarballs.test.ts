/**
 * Hostile artifacts, built in the test as real .tar.gz files (test/shell/tar-builder.ts writes the headers byte by
 * byte; GNU tar cannot write most of these), served from a directory source and given to ensureArtifact: each one
 * is refused whole with GLOW_E_ARTIFACT_UNPACK and leaves nothing behind — no artifact directory, no record, no
 * temporary — and nothing outside the store is touched.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { GlowError } from '../../src/base/errors.js';
import { ensureArtifact } from '../../src/shell/artifacts/ensure.js';
import { MAX_ENTRIES } from '../../src/shell/artifacts/limits.js';
import { unpackTarball } from '../../src/shell/artifacts/unpack.js';
import type { RawMember } from './tar-builder.js';
import { pax, scratch, tarBytes, tarGz } from './tar-builder.js';

const T = { timeout: 30_000 };
const fresh = scratch('glow-hostile-');

/** A directory source holding `bytes` as acme/worker 1.0.0. */
function storeWith(bytes: Buffer): { store: string; tarball: string } {
  const store = fresh('store');
  const tarball = join(store, 'acme/worker/1.0.0.tar.gz');
  mkdirSync(dirname(tarball), { recursive: true });
  writeFileSync(tarball, bytes);
  return { store, tarball };
}

function nothingLeft(state: string): void {
  const store = join(state, 'artifacts');
  assert.equal(existsSync(join(store, 'acme_worker')), false, 'the artifact directory exists');
  assert.equal(existsSync(join(store, '.meta/acme_worker')), false, 'a record exists');
  const tmp = join(store, '.tmp');
  assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], [], 'temporaries are left');
}

/** ensureArtifact of this archive is refused with GLOW_E_ARTIFACT_UNPACK matching every pattern; nothing is left. */
async function refused(bytes: Buffer, ...patterns: RegExp[]): Promise<GlowError> {
  const { store } = storeWith(bytes);
  const state = fresh('state');
  let caught: unknown;
  await assert.rejects(ensureArtifact({ stateDir: state, source: store, image: 'acme/worker', version: '1.0.0', command: ['bin/app'] }), (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof GlowError, `not a GlowError: ${String(caught)}`);
  assert.equal(caught.code, 'GLOW_E_ARTIFACT_UNPACK', caught.message);
  assert.match(caught.message, /acme\/worker 1\.0\.0/);
  assert.match(caught.message, /nothing was installed/);
  assert.doesNotMatch(caught.message, /\n/);
  for (const re of patterns) assert.match(caught.message, re);
  nothingLeft(state);
  return caught;
}

const app: RawMember[] = [
  { name: 'bin/', type: '5', mode: 0o755 },
  { name: 'bin/app', body: '#!/bin/sh\necho hi\n', mode: 0o755 },
];

describe('paths and links that lead out', { timeout: 120_000 }, () => {
  test('an entry ../x, after a good one: nothing at all is written', T, async () => {
    await refused(tarGz([...app, { name: '../x', body: 'evil' }]), /"\.\.\/x"/, /has a "\.\." in its path/);
    await refused(tarGz([...app, { name: 'bin/../../x', body: 'evil' }]), /"\.\."/);
  });

  test('an absolute entry /etc/x', T, async () => {
    await refused(tarGz([...app, { name: '/etc/x', body: 'evil' }]), /"\/etc\/x" is an absolute path/);
  });

  test('a symbolic link to /', T, async () => {
    await refused(tarGz([...app, { name: 'root', type: '2', link: '/' }]), /"root" → "\/" leads out/);
  });

  test('a symbolic link out, then a file through it: the file outside is not written', T, async () => {
    const outside = fresh('outside');
    await refused(tarGz([...app, { name: 'out', type: '2', link: outside }, { name: 'out/pwned', body: 'evil' }]), /"out" → .* leads out/);
    await refused(tarGz([...app, { name: 'up', type: '2', link: '../../../../../../../..' }, { name: 'up/pwned', body: 'evil' }]), /"up"/);
    assert.deepEqual(readdirSync(outside), []);
  });

  test('a harmless symbolic link, then a file through it', T, async () => {
    await refused(tarGz([...app, { name: 'self', type: '2', link: '.' }, { name: 'self/x', body: 'x' }]), /"self\/x" lies under the symbolic link "self"/);
    // The link after the file: the order of the archive does not matter.
    await refused(tarGz([...app, { name: 'later/x', body: 'x' }, { name: 'later', type: '2', link: 'bin' }]), /lies under the symbolic link "later"/);
  });

  test('symbolic links that lead out only together, or loop', T, async () => {
    await refused(tarGz([...app, { name: 'b', type: '2', link: 'a/..' }, { name: 'a', type: '2', link: '.' }]), /"b" → "a\/\.\." leads out/);
    await refused(tarGz([...app, { name: 'p', type: '2', link: 'q' }, { name: 'q', type: '2', link: 'p' }]), /loops/);
  });

  test('hard links out, absolute, to a directory, or to a later entry', T, async () => {
    await refused(tarGz([...app, { name: 'h', type: '1', link: '../../../../etc/passwd' }]), /hard link "h"/, /"\.\."/);
    await refused(tarGz([...app, { name: 'h', type: '1', link: '/etc/passwd' }]), /hard link "h"/, /absolute/);
    await refused(tarGz([...app, { name: 'h', type: '1', link: 'bin' }]), /hard link "h" does not link to a file before it/);
    await refused(tarGz([...app, { name: 'h', type: '1', link: 'later' }, { name: 'later', body: 'x' }]), /hard link "h" does not link to a file before it/);
  });

  test('a file twice, and an entry under a file', T, async () => {
    await refused(tarGz([...app, { name: 'bin/app', body: 'again' }]), /"bin\/app" appears twice/);
    await refused(tarGz([...app, { name: 'bin/app/x', body: 'x' }]), /"bin\/app\/x" lies under "bin\/app", which is not a directory/);
  });
});

describe('types and formats that Glow does not unpack', { timeout: 120_000 }, () => {
  test('devices, fifos, sparse files, volume labels, continuations, unknown types', T, async () => {
    await refused(tarGz([...app, { name: 'dev/null', type: '3' }]), /"dev\/null" is a character device/);
    await refused(tarGz([...app, { name: 'dev/sda', type: '4' }]), /"dev\/sda" is a block device/);
    await refused(tarGz([...app, { name: 'pipe', type: '6' }]), /"pipe" is a fifo/);
    await refused(tarGz([...app, { name: 'holes', type: 'S', body: 'x' }]), /"holes" is a sparse file/);
    await refused(tarGz([...app, { name: 'vol', type: 'V' }]), /"vol" is a volume label/);
    await refused(tarGz([...app, { name: 'cont', type: 'M', body: 'x' }]), /"cont" is a multi-volume continuation/);
    await refused(tarGz([...app, { name: 'weird', type: 'Z', body: 'x' }]), /"weird" is of unknown type/);
    await refused(tarGz([...app, pax({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'data' }), { name: 'GNUSparseFile.0/data', body: 'x' }]), /is a sparse file/);
  });

  test('a damaged checksum, a name that is not UTF-8, an extended header over 1 MiB', T, async () => {
    await refused(tarGz([...app, { name: 'x', body: 'x', badChecksum: true }]), /checksum/);
    await refused(tarGz([...app, { name: Buffer.from([0x62, 0x69, 0x6e, 0x2f, 0xff, 0xfe]), body: 'x' }]), /not UTF-8/);
    await refused(tarGz([...app, { name: 'PaxHeaders/x', type: 'x', body: Buffer.alloc(2 << 20, 0x61) }, { name: 'x', body: 'x' }]), /extended header is too large/);
  });

  test('not gzip (a plain tar, text), a truncated gzip stream, a truncated archive', T, async () => {
    await refused(tarBytes(app), /not a gzip stream/);
    await refused(Buffer.from('this is not a tarball\n'), /not a gzip stream/);
    const whole = tarGz([...app, { name: 'big', body: Buffer.alloc(1 << 20, 1) }]);
    await refused(whole.subarray(0, whole.length - 40), /gzip/);
    const bytes = tarBytes([...app, { name: 'big', body: Buffer.alloc(64 * 1024, 1) }]);
    const { gzipSync } = await import('node:zlib');
    await refused(gzipSync(bytes.subarray(0, 2048)), /truncated/);
  });

  test('a gzip bomb: an archive that inflates over 1000 times its size', T, async () => {
    await refused(tarGz([...app, { name: 'zeros', body: Buffer.alloc(32 << 20) }]), /1000 times/);
  });
});

describe('size and count bounds', { timeout: 120_000 }, () => {
  test('a huge declared size is refused at its header, before its (missing) content is read', T, async () => {
    const huge = 2 ** 50; // 1 PiB: base-256 in the header
    const started = Date.now();
    await refused(tarGz([...app, { name: 'huge', size: huge }]), new RegExp(`"huge" declares ${huge}`), /bytes are free/);
    await refused(tarGz([...app, pax({ size: String(huge) }), { name: 'huge-pax', size: 0 }]), /"huge-pax" declares/, /bytes are free/);
    assert.ok(Date.now() - started < 10_000);
  });

  test('more entries than the bound', T, async () => {
    assert.equal(MAX_ENTRIES, 1_000_000);
    const members: RawMember[] = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, body: `${i}` }));
    const { tarball } = storeWith(tarGz(members));
    const parent = fresh('unpack');
    const ctx = { label: 'acme/worker 1.0.0', where: tarball, store: parent };
    await assert.rejects(unpackTarball(tarball, join(parent, 'root'), new AbortController().signal, ctx, { maxEntries: 10 }), (e: unknown) => {
      assert.ok(e instanceof GlowError && e.code === 'GLOW_E_ARTIFACT_UNPACK', String(e));
      assert.match(e.message, /more than 10 entries/);
      return true;
    });
    assert.equal(existsSync(join(parent, 'root')), false, 'nothing was written');
    await unpackTarball(tarball, join(parent, 'root'), new AbortController().signal, ctx, { maxEntries: 11 });
    assert.equal(readdirSync(join(parent, 'root')).length, 11);
  });
});

describe('what an accepted hostile-looking archive becomes', { timeout: 60_000 }, () => {
  test('modes are Glow\'s: no set-id bits, directories 0755, files 0644 or 0755; links inside are kept', T, async () => {
    const { store } = storeWith(
      tarGz([
        { name: 'bin/', type: '5', mode: 0o700 },
        { name: 'bin/app', body: 'x', mode: 0o4750 },
        { name: 'secret', body: 's', mode: 0o400 },
        { name: 'sticky/', type: '5', mode: 0o1777 },
        { name: 'current', type: '2', link: 'bin/app' },
        { name: 'copy', type: '1', link: 'secret' },
      ]),
    );
    const r = await ensureArtifact({ stateDir: fresh('state'), source: store, image: 'acme/worker', version: '1.0.0', command: ['bin/app'] });
    const mode = (p: string) => (lstatSync(join(r.dir, p)).mode & 0o7777).toString(8);
    assert.deepEqual([mode('bin'), mode('bin/app'), mode('secret'), mode('sticky')], ['755', '755', '644', '755']);
    assert.equal(lstatSync(join(r.dir, 'current')).isSymbolicLink(), true);
    assert.equal(statSync(join(r.dir, 'copy')).ino, statSync(join(r.dir, 'secret')).ino);
  });

  test('the digest is checked before anything is unpacked: a hostile archive with a wrong digest is a digest error', T, async () => {
    const { store, tarball } = storeWith(tarGz([...app, { name: '../x', body: 'evil' }]));
    const state = fresh('state');
    const wrong = `sha256:${'0'.repeat(64)}`;
    await assert.rejects(ensureArtifact({ stateDir: state, source: store, image: 'acme/worker', version: '1.0.0', digest: wrong }), (e: unknown) => {
      assert.ok(e instanceof GlowError && e.code === 'GLOW_E_ARTIFACT_DIGEST', String(e));
      assert.match(e.message, /nothing was unpacked/);
      assert.match(e.message, new RegExp(`sha256:${createHash('sha256').update(readFileSync(tarball)).digest('hex')}`));
      return true;
    });
    nothingLeft(state);
  });
});
