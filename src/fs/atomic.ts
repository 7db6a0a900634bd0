/**
 * Writing files so that readers never see half of one, and so that what was written survives a crash: the one
 * place in Glow that fsyncs a file's directory.
 *
 * - writeFileAtomic: write a temporary file in the same directory, fsync it, rename it over the target, fsync the
 *   directory (config files, TLS files, unit files).
 * - createFileDurable / copyFileDurable: create a file that must not exist yet, with its mode whatever the umask,
 *   fsynced (the files of an artifact, which is renamed into place as a whole directory).
 * - fsyncDir / fsyncDirSync: make a rename or a creation in a directory durable. A file system that refuses to
 *   fsync a directory (some do: EINVAL, ENOTSUP…) is tolerated, because the rename is still atomic there; any
 *   other failure (EIO) is thrown.
 */
import { closeSync, constants as fsConstants, fchmodSync, fchownSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { copyFile, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoOf } from '../base/errors.js';

/** Writes `path` whole or not at all, with `mode` (umask aside) and, given `gid`, owned by root and that group. */
export function writeFileAtomic(path: string, content: string | Uint8Array, mode = 0o644, gid?: number): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}.glow-tmp-${process.pid}`);
  const fd = openSync(tmp, 'w', mode);
  try {
    if (gid !== undefined) fchownSync(fd, 0, gid);
    fchmodSync(fd, mode);
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDirSync(dir);
}

/** Creates or replaces a symbolic link atomically. */
export function symlinkAtomic(target: string, path: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}.glow-tmp-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, path);
  fsyncDirSync(dir);
}

/** The errors of a file system that cannot fsync a directory (the rename or creation is atomic all the same). */
const DIR_FSYNC_REFUSED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EBADF', 'EPERM', 'EACCES']);

function tolerated(e: unknown): boolean {
  const code = errnoOf(e);
  return code !== undefined && DIR_FSYNC_REFUSED.has(code);
}

/** Makes what was created, removed or renamed in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    if (!tolerated(e)) throw e;
  } finally {
    await fh?.close();
  }
}

/** fsyncDir, for the synchronous writers above. */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    if (!tolerated(e)) throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes all of `chunk` at the file handle's position (a write may write less than asked). */
export async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
}

/**
 * Creates `path`, which must not exist (O_EXCL: never through a link), with `content` and `mode` and fsyncs it.
 * `chmod: false` skips the chmod when the caller knows the umask takes no bit of `mode`.
 */
export async function createFileDurable(
  path: string,
  content: string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  mode = 0o644,
  opts: { chmod?: boolean } = {},
): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    if (typeof content === 'string') await writeAll(fh, Buffer.from(content, 'utf8'));
    else if (content instanceof Uint8Array) await writeAll(fh, content);
    else for await (const chunk of content) await writeAll(fh, chunk);
    if (opts.chmod !== false) await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Copies `from` to `path`, which must not exist, with `mode` whatever the umask, fsynced. */
export async function copyFileDurable(from: string, path: string, mode: number): Promise<void> {
  await copyFile(from, path, fsConstants.COPYFILE_EXCL);
  const fh = await open(path, 'r+');
  try {
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Every regular file below `dir` (sorted, dot files skipped), with its stat; a missing directory has none. */
export function walkFiles(dir: string, f: (path: string, st: Stats) => void): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) walkFiles(p, f);
    else if (st?.isFile()) f(p, st);
  }
}
