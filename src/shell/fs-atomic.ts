/**
 * Writing files so that readers never see half of one: write a temporary file in the same directory, fsync it,
 * rename it over the target, fsync the directory.
 */
import { closeSync, fchmodSync, fchownSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';

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
  syncDir(dir);
}

/** Creates or replaces a symbolic link atomically. */
export function symlinkAtomic(target: string, path: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}.glow-tmp-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, path);
  syncDir(dir);
}

export function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some file systems refuse fsync on directories; the rename is still atomic
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
