/**
 * A directory source (the target of an rsync push, a network mount) snapshotted into a new tree: every file read
 * once, hashed, and either hard-linked to the current revision's file when that one has the same bytes and the
 * same executable bit (cheap: an unchanged file costs a link, and the inode is shared), or written anew and fsynced.
 * Files of the source are never linked to: a writer of the source must not reach into a published tree.
 *
 * Names starting with a dot are skipped at every level, as the loader does (src/config/source.ts): `.git`, rsync's
 * `.name.XXXXXX` temporaries, editor swap files. Symbolic links are copied as links. The id of the snapshot is a
 * sha256 over the sorted list of (kind, path, mode, content hash or link text): the same content, the same id.
 *
 * A push in progress changes the source while it is read: the source's entries (inode, size, mtime) are compared
 * before and after; when they moved, the snapshot is made again, up to 3 times (GLOW_E_SYNC_SOURCE after that).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { GlowError } from '../base/errors.js';

export interface Snapshot {
  /** `sha256:<64 hex>` over the listing. */
  readonly id: string;
  readonly files: number;
  /** Files hard-linked to the current revision. */
  readonly linked: number;
  /** Files written anew. */
  readonly copied: number;
}

class SourceMoved extends Error {}

const ATTEMPTS = 3;

/** Snapshots `source` into the empty directory `dest`, linking unchanged files to `previous` (a revision tree). */
export function snapshotDir(source: string, dest: string, previous: string | undefined, timeoutMs: number): Snapshot {
  let st;
  try {
    st = lstatSync(source);
  } catch (e) {
    throw new GlowError('GLOW_E_SYNC_SOURCE', `the source directory ${source} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isDirectory()) throw new GlowError('GLOW_E_SYNC_SOURCE', `the source ${source} is not a directory`);
  if (existsSync(join(source, 'HEAD')) && existsSync(join(source, 'objects')) && existsSync(join(source, 'refs'))) {
    throw new GlowError('GLOW_E_SYNC_SOURCE', `the source ${source} is a bare git repository: name it file://${source} to fetch its commits`);
  }
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const snap = once(source, dest, previous, deadline);
      if (snap.entries === 0) {
        throw new GlowError('GLOW_E_SYNC_SOURCE', `the source ${source} holds nothing (no push yet? a mount missing?); an empty revision is not published`);
      }
      return snap;
    } catch (e) {
      if (!(e instanceof SourceMoved)) throw e;
      for (const n of readdirSync(dest)) rmSync(join(dest, n), { recursive: true, force: true });
      if (attempt >= ATTEMPTS) {
        throw new GlowError('GLOW_E_SYNC_SOURCE', `the source ${source} changed while it was copied, ${ATTEMPTS} times in a row (a push in progress?); the next run tries again`);
      }
      const until = Date.now() + 200 * attempt;
      while (Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, until - Date.now());
    }
  }
}

interface Walked {
  id: string;
  files: number;
  linked: number;
  copied: number;
  entries: number;
}

function signature(rel: string, s: BigIntStats): string {
  return `${rel}\0${s.mode}\0${s.ino}\0${s.size}\0${s.mtimeNs}`;
}

function once(source: string, dest: string, previous: string | undefined, deadline: number): Walked {
  const listing: string[] = [];
  const seen: string[] = [];
  let files = 0;
  let linked = 0;
  let copied = 0;
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(join(source, rel)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel !== '') throw new SourceMoved();
      throw new GlowError('GLOW_E_SYNC_SOURCE', `${join(source, rel)} cannot be listed: ${(e as Error).message}`, { cause: e });
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      if (Date.now() > deadline) throw new GlowError('GLOW_E_SYNC_SOURCE', `copying ${source} took longer than --timeout; stopped`);
      const r = rel === '' ? name : `${rel}/${name}`;
      const from = join(source, r);
      const to = join(dest, r);
      let s: BigIntStats;
      try {
        s = lstatSync(from, { bigint: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SourceMoved();
        throw new GlowError('GLOW_E_SYNC_SOURCE', `${from} cannot be read: ${(e as Error).message}`, { cause: e });
      }
      seen.push(signature(r, s));
      if (s.isDirectory()) {
        mkdirSync(to, { mode: 0o755 });
        listing.push(`d ${r}`);
        walk(r);
      } else if (s.isSymbolicLink()) {
        const target = readlinkSync(from);
        symlinkSync(target, to);
        listing.push(`l ${r}\0${target}`);
      } else if (s.isFile()) {
        let bytes: Buffer;
        try {
          bytes = readFileSync(from);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SourceMoved();
          throw new GlowError('GLOW_E_SYNC_SOURCE', `${from} cannot be read: ${(e as Error).message}`, { cause: e });
        }
        const mode = (Number(s.mode) & 0o111) !== 0 ? 0o755 : 0o644;
        const hash = createHash('sha256').update(bytes).digest('hex');
        listing.push(`f ${r}\0${mode.toString(8)}\0${hash}`);
        files++;
        if (previous !== undefined && linkSame(join(previous, r), to, bytes, mode)) linked++;
        else {
          writeNew(to, bytes, mode);
          copied++;
        }
      } else {
        throw new GlowError('GLOW_E_SYNC_SOURCE', `${from} is neither a file, a directory nor a symbolic link (a fifo, socket or device); remove it from the source`);
      }
    }
  };
  walk('');
  // The source as it is now must be the source as it was read.
  const again: string[] = [];
  const rewalk = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(join(source, rel)).sort();
    } catch {
      throw new SourceMoved();
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const r = rel === '' ? name : `${rel}/${name}`;
      let s: BigIntStats;
      try {
        s = lstatSync(join(source, r), { bigint: true });
      } catch {
        throw new SourceMoved();
      }
      again.push(signature(r, s));
      if (s.isDirectory()) rewalk(r);
    }
  };
  rewalk('');
  if (again.length !== seen.length || again.some((v, i) => v !== seen[i])) throw new SourceMoved();
  const id = `sha256:${createHash('sha256').update(listing.join('\n')).digest('hex')}`;
  return { id, files, linked, copied, entries: listing.length };
}

/** Hard-links `to` to the previous revision's file when it has these bytes and this mode; false otherwise. */
function linkSame(prev: string, to: string, bytes: Buffer, mode: number): boolean {
  try {
    const p = lstatSync(prev);
    if (!p.isFile() || p.size !== bytes.length || ((p.mode & 0o111) !== 0 ? 0o755 : 0o644) !== mode) return false;
    if (!readFileSync(prev).equals(bytes)) return false;
    linkSync(prev, to);
    return true;
  } catch {
    return false; // no such file, another file system (EXDEV), too many links (EMLINK): written anew
  }
}

function writeNew(path: string, bytes: Buffer, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    fchmodSync(fd, mode);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
