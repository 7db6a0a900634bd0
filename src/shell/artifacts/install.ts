/**
 * Installing one artifact, all or nothing, in a temporary directory of the store: the tarball is downloaded (or
 * copied) to a temporary file, hashed on the way, checked against the app's `digest` — before anything is
 * unpacked — then unpacked into a temporary directory (or, for an unpacked directory source, copied); the layout
 * is checked against the app's command; every directory is fsynced (files were when written), the record is
 * written, and the directory is renamed into place in one step. After a crash there is either nothing or the
 * whole directory.
 */
import { rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GlowError } from '../../base/errors.js';
import { fsyncDir } from '../../fs/atomic.js';
import { copyTree } from './copy-tree.js';
import type { EnsureArtifactOptions } from './options.js';
import { copyHashing, DEFAULT_ARTIFACT_TIMEOUT_MS, download } from './fetch.js';
import { errorCode, reason } from './failure-reason.js';
import { isDirectory, mkdirReadable } from './fs-probe.js';
import { checkLayout } from './layout.js';
import { label } from './names.js';
import { writeRecord } from './record.js';
import { findInDirectory, parseSource, redact } from './source.js';
import { finishTree } from './tree-writer.js';
import { unpackTarball } from './unpack.js';

/** Installs the artifact of `opts` as `dir`, using the (existing, empty) temporary directory `tmp`. */
export async function install(storeDir: string, tmp: string, dir: string, opts: EnsureArtifactOptions, signal: AbortSignal): Promise<void> {
  const name = label(opts);
  const source = parseSource(opts);
  try {
    const tarball = join(tmp, 'artifact.tar.gz');
    const root = join(tmp, 'root');
    let sha256: string | null;
    let where: string;
    if (source.kind === 'http') {
      where = redact(source.url);
      sha256 = await download(source.url, tarball, signal, opts.timeoutMs ?? DEFAULT_ARTIFACT_TIMEOUT_MS, name);
    } else {
      const found = await findInDirectory(source.dir, opts);
      where = found.path;
      if (found.kind === 'tarball') {
        sha256 = await copyHashing(found.path, tarball, signal, name);
      } else {
        if (opts.digest !== undefined) {
          throw new GlowError(
            'GLOW_E_ARTIFACT_DIGEST',
            `artifact ${name} has a digest, but ${found.path} is an unpacked directory whose digest cannot be checked: put ${opts.version}.tar.gz there instead, or remove \`digest\``,
          );
        }
        sha256 = null;
        await copyTree(found.path, root, signal, { label: name, store: opts.stateDir });
      }
    }
    if (sha256 !== null) {
      if (opts.digest !== undefined && sha256 !== opts.digest) {
        throw new GlowError(
          'GLOW_E_ARTIFACT_DIGEST',
          `artifact ${name} from ${where} does not match its digest: expected ${opts.digest}, got ${sha256}; nothing was unpacked`,
        );
      }
      await unpackTarball(tarball, root, signal, { label: name, where, store: opts.stateDir });
    }
    await checkLayout(root, opts.command, { label: name, version: opts.version });
    await finishTree(root);
    signal.throwIfAborted();

    // The record first, then the directory: a directory that exists always has its record.
    await writeRecord(storeDir, dir, tmp, { image: opts.image, version: opts.version, source: where, sha256 });
    await mkdirReadable(dirname(dir));
    signal.throwIfAborted();
    try {
      await rename(root, dir);
    } catch (e) {
      // Another process installed it in the meantime: theirs is as complete as ours.
      if (!(errorCode(e) === 'ENOTEMPTY' || errorCode(e) === 'EEXIST') || !(await isDirectory(dir))) throw e;
    }
    await fsyncDir(dirname(dir));
  } catch (e) {
    if (e instanceof GlowError || signal.aborted) throw e;
    throw new GlowError('GLOW_E_ARTIFACT_UNPACK', `artifact ${name} could not be installed into ${dir}: ${reason(e)}`, { cause: e });
  }
}
