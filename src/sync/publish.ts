/**
 * Publishing, the file system side: which revision is current (the link's target), a staging directory for the
 * next one, fsync of the whole new tree, the rename of the tree to its final name, the switch of the link (a
 * temporary link renamed over it: one rename, so a reader that resolves the link sees one revision or the next),
 * pruning, and the cleaning of what a killed run left behind. A published tree is never written to.
 */
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { GlowError } from '../base/errors.js';
import { fsyncDirSync, symlinkAtomic, writeFileAtomic } from '../fs/atomic.js';
import { REVISION_META, linkTarget } from './layout.js';
import type { SyncLayout } from './layout.js';
import { isLeftover, orphans, parseRevisionName, planPrune } from './revisions.js';

/** What `.glow-sync.json` of a revision says. */
export interface RevisionMeta {
  readonly version: 1;
  readonly name: string;
  readonly kind: 'git' | 'dir';
  readonly source: string;
  readonly ref: string | null;
  /** The commit (git) or `sha256:…` content hash (dir). */
  readonly id: string;
  readonly publishedAt: string;
  /** Who signed the commit, when it was verified. */
  readonly signedBy?: string;
}

export interface Current {
  /** The link's target, resolved; undefined when there is no link yet. */
  readonly dir: string | undefined;
  /** The revision's name when the link leads to one of sync's revisions. */
  readonly name: string | undefined;
  readonly meta: RevisionMeta | undefined;
}

/** The current revision. GLOW_E_SYNC_REPO_NOT_LINK when the repository path is a directory or a file. */
export function readCurrent(layout: SyncLayout): Current {
  let st;
  try {
    st = lstatSync(layout.repo);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { dir: undefined, name: undefined, meta: undefined };
    throw new GlowError('GLOW_E_SYNC_WRITE', `${layout.repo} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isSymbolicLink()) {
    const what = st.isDirectory() ? 'a directory' : 'a file';
    throw new GlowError(
      'GLOW_E_SYNC_REPO_NOT_LINK',
      `${layout.repo} is ${what}, not a symbolic link: glow sync switches a link to complete revisions and never writes into ` +
        `a directory glowd reads. Migrate: stop what updates it (a git pull job), then \`mv ${layout.repo} ${layout.repo}.old && glow sync\` ` +
        `(glowd keeps its last good revision during the moment the repository is missing), or sync elsewhere with --repo and point glowd's --repo there`,
    );
  }
  const dir = resolve(dirname(layout.repo), readlinkSync(layout.repo));
  const name = dirname(dir) === layout.revisions && parseRevisionName(basename(dir)) ? basename(dir) : undefined;
  return { dir, name, meta: readMeta(dir) };
}

/** The `.glow-sync.json` of a tree: what glow sync published there; undefined when there is none or it is not one. */
export function readRevisionMeta(dir: string): RevisionMeta | undefined {
  return readMeta(dir);
}

function readMeta(dir: string): RevisionMeta | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, REVISION_META), 'utf8')) as RevisionMeta;
    return m && m.version === 1 && typeof m.id === 'string' && (m.kind === 'git' || m.kind === 'dir') ? m : undefined;
  } catch {
    return undefined;
  }
}

function listRevisions(layout: SyncLayout): string[] {
  try {
    return readdirSync(layout.revisions);
  } catch {
    return [];
  }
}

/**
 * Removes what a killed run left: trees being written (`.tmp-…`) or removed (`.del-…`), revisions renamed into
 * place whose link switch never happened (newer than the current one), and the temporary link beside the
 * repository. Only ever called under the lock.
 */
export function cleanLeftovers(layout: SyncLayout, current: Current, lastSwitched?: string | null): string[] {
  const removed: string[] = [];
  const names = listRevisions(layout);
  for (const n of names) {
    if (isLeftover(n)) {
      rmSync(join(layout.revisions, n), { recursive: true, force: true });
      removed.push(n);
    }
  }
  for (const n of orphans(names, current.name, lastSwitched)) {
    removeRevision(layout, n);
    removed.push(n);
  }
  const linkTmp = `.${basename(layout.repo)}.glow-tmp-`;
  try {
    for (const n of readdirSync(layout.base)) if (n.startsWith(linkTmp)) rmSync(join(layout.base, n), { force: true });
  } catch {
    // no base directory yet
  }
  return removed;
}

/** A new, empty staging directory in the revisions directory (same file system: the rename is atomic). */
export function makeStaging(layout: SyncLayout): string {
  mkdirSync(layout.revisions, { recursive: true, mode: 0o755 });
  const dir = join(layout.revisions, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { mode: 0o755 });
  return dir;
}

/** The highest sequence number in use, for the next name. */
export function revisionNames(layout: SyncLayout): string[] {
  return listRevisions(layout).filter((n) => parseRevisionName(n) !== undefined);
}

/** fsyncs every file and directory of a tree (the tree, then its directories, are durable before the rename). */
export function fsyncTree(dir: string): void {
  const sync = (p: string) => {
    const fd = openSync(p, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  };
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) sync(p);
    }
    fsyncDirSync(d);
  };
  walk(dir);
}

/** Writes the meta file, fsyncs the tree and renames it to its final name. */
export function finishTree(layout: SyncLayout, staging: string, meta: RevisionMeta): string {
  writeFileAtomic(join(staging, REVISION_META), `${JSON.stringify(meta, null, 2)}\n`, 0o644);
  fsyncTree(staging);
  const final = join(layout.revisions, meta.name);
  renameSync(staging, final);
  fsyncDirSync(layout.revisions);
  return final;
}

/** Switches the link to the revision: a temporary link renamed over it, then the directory fsynced. */
export function switchLink(layout: SyncLayout, name: string): void {
  symlinkAtomic(linkTarget(name), layout.repo);
}

/** Renames a revision out of the way (a dot name), then removes it: a half-removed tree never has a revision's name. */
function removeRevision(layout: SyncLayout, name: string): void {
  const away = join(layout.revisions, `.del-${process.pid}-${name}`);
  renameSync(join(layout.revisions, name), away);
  rmSync(away, { recursive: true, force: true });
}

/** Keeps the `keep` last published revisions and the current one; returns what was removed. */
export function prune(layout: SyncLayout, current: string | undefined, keep: number): string[] {
  const gone = planPrune(revisionNames(layout), current, keep);
  for (const n of gone) removeRevision(layout, n);
  if (gone.length) fsyncDirSync(layout.revisions);
  return gone;
}
