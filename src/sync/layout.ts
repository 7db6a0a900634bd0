/**
 * Where `glow sync` keeps things, all derived from the repository link (glowd's `--repo`), so that pointing
 * `--repo` elsewhere (tests, a second repository) moves everything with it — one link per directory: two links in
 * one directory would share `revisions/` and prune each other's trees. With the default link:
 *
 *   /var/lib/glow/repo                         → revisions/<current>   the link glowd reads (relative target)
 *   /var/lib/glow/revisions/r-…-<id12>/        the published trees, each complete; never changed once published
 *   /var/lib/glow/revisions/r-…/.glow-sync.json   what the tree is (kind, source, ref, commit or content hash)
 *   /var/lib/glow/revisions/.tmp-<pid>-…/      a tree being written (a dot name: never a revision)
 *   /var/lib/glow/revisions/.del-<pid>-…/      a revision being removed (renamed first, then deleted)
 *   /var/lib/glow/sync/git/                    the bare mirror of a git source (fetched into refs/glow/fetched)
 *   /var/lib/glow/sync/lock                    the lock of one run at a time (flock; holds the holder's pid)
 *   /var/lib/glow/sync/state.json              the last run's outcome, for glow status and metrics (src/sync/state.ts)
 */
import { posix } from 'node:path';

export interface SyncLayout {
  readonly repo: string;
  /** The directory that holds the link, `revisions/` and `sync/`. */
  readonly base: string;
  readonly revisions: string;
  readonly syncDir: string;
  readonly mirror: string;
  readonly lock: string;
  readonly state: string;
}

/** Inside every revision: what it is. A dot name, so the loader (src/config/source.ts) never reads it. */
export const REVISION_META = '.glow-sync.json';

/** The ref of the mirror that a fetch writes (one ref, forced: no `--prune`, no ref directories to lock). */
export const FETCHED_REF = 'refs/glow/fetched';

export function syncLayout(repo: string): SyncLayout {
  const abs = posix.resolve(repo);
  const base = posix.dirname(abs);
  const syncDir = posix.join(base, 'sync');
  return {
    repo: abs,
    base,
    revisions: posix.join(base, 'revisions'),
    syncDir,
    mirror: posix.join(syncDir, 'git'),
    lock: posix.join(syncDir, 'lock'),
    state: posix.join(syncDir, 'state.json'),
  };
}

/** The link's target for a revision: relative, so the tree can be moved or bind-mounted whole. */
export const linkTarget = (name: string): string => posix.join('revisions', name);
