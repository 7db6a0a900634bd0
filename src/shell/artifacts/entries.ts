/**
 * What an archive (or an unpacked directory) holds, as a list of entries, and the rules that the whole list must
 * pass before a single file is written: every entry stays inside the artifact, whatever the order of the entries.
 *
 * - No absolute path and no `..` segment, in a name or in a hard link's target.
 * - No symbolic link that leads out of the artifact or loops, following the archive's own symbolic links (all of
 *   them, wherever they are in the archive: they all exist once it is unpacked). An absolute target leads out.
 * - Nothing is written through a symbolic link of the archive, or under an entry that is not a directory.
 * - A hard link links to a file that comes before it in the archive.
 * - No entry twice (but a directory may be repeated); the root, if listed, is a directory.
 */
import { GlowError } from '../../base/errors.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface Entry {
  /** Normalised path inside the artifact: no leading "/", no "." or ".." segments, no trailing "/"; "" is the root. */
  path: string;
  type: EntryType;
  /** Symbolic link: the target as written; hard link: the normalised path of the entry it links to. */
  target: string;
  executable: boolean;
  /** Bytes of a file's content; 0 for the other types. */
  size: number;
}

/** An archive or directory that Glow does not unpack; the message says why, the caller says which artifact. */
export class Refused extends GlowError {
  constructor(message: string) {
    super('GLOW_E_ARTIFACT_UNPACK', message);
    this.name = 'Refused';
  }
}

/** Normalises a member name (or a hard link's target), or refuses it if it leaves the root. */
export function entryPath(raw: string, what = `the entry ${JSON.stringify(raw)}`): string {
  if (raw.includes('\0')) throw new Refused(`${what} has a NUL byte in its name`);
  if (raw.startsWith('/')) throw new Refused(`${what} is an absolute path`);
  const parts = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw new Refused(`${what} has a ".." in its path`);
  return parts.join('/');
}

/**
 * Where a symbolic link at `from` leads, following the archive's own links, or null if it leads out of the root
 * (or loops).
 */
export function resolveLink(from: string, target: string, links: ReadonlyMap<string, string>): string[] | null {
  if (target.startsWith('/')) return null;
  const stack = from.split('/').slice(0, -1).filter((s) => s !== '');
  let queue = target.split('/');
  let follows = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (stack.length === 0) return null;
      stack.pop();
      continue;
    }
    stack.push(c);
    const t = links.get(stack.join('/'));
    if (t !== undefined) {
      if (++follows > 40 || t.startsWith('/')) return null; // a loop, or out
      stack.pop();
      queue = [...t.split('/'), ...queue];
    }
  }
  return stack;
}

/** Refuses the whole list if any entry would write or point outside the root. */
export function checkEntries(entries: readonly Entry[]): void {
  const byPath = new Map<string, Entry>(); // the entries seen so far
  const links = new Map<string, string>(); // every symbolic link, wherever it is in the archive
  const notDirs = new Set<string>(); // every path that is not a directory
  for (const e of entries) {
    if (e.type === 'symlink') links.set(e.path, e.target);
    if (e.type !== 'dir') notDirs.add(e.path);
  }
  for (const e of entries) {
    const name = JSON.stringify(e.path);
    if (e.path === '') {
      if (e.type !== 'dir') throw new Refused('the root of the archive is not a directory');
      continue;
    }
    const seen = byPath.get(e.path);
    if (seen) {
      if (seen.type === 'dir' && e.type === 'dir') continue;
      throw new Refused(`the entry ${name} appears twice`);
    }
    byPath.set(e.path, e);
    // Every ancestor must be a directory: never write through a link or into a file.
    const parts = e.path.split('/');
    for (let n = 1; n < parts.length; n++) {
      const up = parts.slice(0, n).join('/');
      if (links.has(up)) throw new Refused(`the entry ${name} lies under the symbolic link ${JSON.stringify(up)}`);
      if (notDirs.has(up)) throw new Refused(`the entry ${name} lies under ${JSON.stringify(up)}, which is not a directory`);
    }
    if (e.type === 'symlink') {
      if (e.target === '' || e.target.includes('\0')) throw new Refused(`the symbolic link ${name} has an empty or invalid target`);
      if (resolveLink(e.path, e.target, links) === null) {
        throw new Refused(`the symbolic link ${name} → ${JSON.stringify(e.target)} leads out of the artifact (or loops)`);
      }
    }
    if (e.type === 'hardlink') {
      const t = byPath.get(e.target);
      if (!t || t === e || (t.type !== 'file' && t.type !== 'hardlink')) {
        throw new Refused(`the hard link ${name} does not link to a file before it in the archive (${JSON.stringify(e.target)})`);
      }
    }
  }
}
