/**
 * The repository as the pure core sees it: a list of entries with their bytes. `readRepo()` is the one piece of
 * the config loader that touches the file system; everything after it is deterministic.
 *
 * What is read: `glow.yaml`, the five kind directories one level deep, and everything under `files/`. Names
 * starting with a dot are skipped at every level (`.git`, rsync's `.name.XXXXXX` temporaries, editor swap files),
 * and so are top-level files other than glow.yaml (a README, a Makefile). Top-level directories are listed
 * without being read, so that a misspelt `deployment/` can be reported.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { MAX_YAML_BYTES } from './yaml.js';

export const KIND_DIRS = ['apps', 'externals', 'nodes', 'deployments', 'exposures'] as const;
export type KindDir = (typeof KIND_DIRS)[number];
export const FILES_DIR = 'files';
/** Files under files/ larger than this are listed but not read; naming one is an error. */
export const MAX_REPO_FILE_BYTES = 16 * 1024 * 1024;

export type EntryKind = 'file' | 'dir' | 'outside' | 'other' | 'unreadable';

export interface RepoEntry {
  /** POSIX path relative to the repository root. */
  readonly path: string;
  readonly kind: EntryKind;
  readonly size: number;
  /** The content, for files that were read (YAML files up to their limit, files/ up to its limit). */
  readonly bytes?: Uint8Array;
  /** Why a file could not be read. */
  readonly error?: string;
}

export interface RepoSource {
  /** How the repository was named on the command line or in the daemon's flags, for messages. */
  readonly root: string;
  readonly exists: boolean;
  readonly entries: readonly RepoEntry[];
}

/** Builds a RepoSource from plain text files, for tests and benchmarks. */
export function memorySource(files: Record<string, string | Uint8Array>, root = 'repo'): RepoSource {
  const entries: RepoEntry[] = [];
  const dirs = new Set<string>();
  for (const [path, content] of Object.entries(files)) {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    entries.push({ path, kind: 'file', size: bytes.length, bytes });
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of dirs) entries.push({ path: d, kind: 'dir', size: 0 });
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { root, exists: true, entries };
}

/** Reads the repository at `root`. Never throws for problems inside the repository; they become entries. */
export function readRepo(root: string): RepoSource {
  let rootReal: string;
  try {
    if (!statSync(root).isDirectory()) return { root, exists: false, entries: [] };
    rootReal = realpathSync(root);
  } catch {
    return { root, exists: false, entries: [] };
  }
  const entries: RepoEntry[] = [];
  const walk = (dirRel: string, depth: 'top' | 'one' | 'deep') => {
    let names: string[];
    try {
      names = readdirSync(join(rootReal, dirRel)).sort();
    } catch (e) {
      entries.push({ path: dirRel, kind: 'unreadable', size: 0, error: (e as Error).message });
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const rel = dirRel ? `${dirRel}/${name}` : name;
      const entry = inspect(rootReal, rel);
      if (depth === 'top') {
        if (entry.kind === 'dir') {
          entries.push(entry);
          if ((KIND_DIRS as readonly string[]).includes(name)) walk(rel, 'one');
          else if (name === FILES_DIR) walk(rel, 'deep');
        } else if (name === 'glow.yaml' || name === 'glow.yml') {
          entries.push(read(rootReal, entry, MAX_YAML_BYTES));
        } else if ((entry.kind === 'outside' || entry.kind === 'unreadable') && ((KIND_DIRS as readonly string[]).includes(name) || name === FILES_DIR)) {
          entries.push(entry); // a kind directory that is a link out (or a broken one): reported, not skipped
        }
      } else if (entry.kind === 'dir') {
        entries.push(entry);
        if (depth === 'deep') walk(rel, 'deep');
      } else {
        entries.push(read(rootReal, entry, depth === 'deep' ? MAX_REPO_FILE_BYTES : MAX_YAML_BYTES));
      }
    }
  };
  walk('', 'top');
  return { root, exists: true, entries };
}

function inspect(rootReal: string, rel: string): RepoEntry {
  const abs = join(rootReal, rel);
  let st: Stats;
  try {
    st = lstatSync(abs);
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(abs);
      } catch (e) {
        // A broken link: judge where it leads by its text, and say what it names.
        const link = readlinkSync(abs);
        if (leadsOut(rootReal, resolve(dirname(abs), link))) return { path: rel, kind: 'outside', size: 0 };
        const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'which does not exist' : `which cannot be followed (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
        return { path: rel, kind: 'unreadable', size: 0, error: `it is a symbolic link to \`${link}\`, ${why}` };
      }
      if (leadsOut(rootReal, target)) return { path: rel, kind: 'outside', size: 0 };
      st = statSync(abs);
    }
  } catch (e) {
    return { path: rel, kind: 'unreadable', size: 0, error: (e as Error).message };
  }
  if (st.isDirectory()) return { path: rel, kind: 'dir', size: 0 };
  if (st.isFile()) return { path: rel, kind: 'file', size: st.size };
  return { path: rel, kind: 'other', size: st.size };
}

function leadsOut(rootReal: string, target: string): boolean {
  const inside = relative(rootReal, target);
  return inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside);
}

function read(rootReal: string, entry: RepoEntry, limit: number): RepoEntry {
  if (entry.kind !== 'file' || entry.size > limit) return entry;
  try {
    const bytes = readFileSync(join(rootReal, entry.path));
    return { ...entry, size: bytes.length, bytes };
  } catch (e) {
    return { ...entry, kind: 'unreadable', error: (e as Error).message };
  }
}
