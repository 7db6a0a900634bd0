/**
 * The state file of `glow sync` (`<dirname(repo)>/sync/state.json`, by default /var/lib/glow/sync/state.json):
 * what the last run did, for `glow status` and the metrics to read. Written whole (src/fs/atomic.ts) by the run
 * that holds the lock, at the end of every run that got that far; a run that could not take the lock writes nothing.
 *
 *   {
 *     "version": 1,
 *     "source": "https://git.example.com/config.git",   // credentials removed; a directory source by its path
 *     "kind": "git",                                     // or "dir"
 *     "ref": "main",                                     // null for a directory
 *     "revision": "r-20261201-101500-000042-3f2a9c1b7d4e", // the current revision (the link's target), null before the first
 *     "commit": "3f2a9c1b7d4e…",                          // its commit (git) or content hash (dir, "sha256:…"), null likewise
 *     "publishedAt": "2026-12-01T10:15:00.000Z",         // when the current revision was published
 *     "lastAttemptAt": "…",                              // when the last run ended
 *     "lastResult": "published",                         // "published" | "unchanged" | "failed"
 *     "lastSuccessAt": "…",                              // the last run that ended with exit 0, null if none
 *     "lastError": { "code": "GLOW_E_SYNC_FETCH", "message": "…", "at": "…" }   // the last failure, kept after a success; null if none
 *   }
 *
 * `lastResult: "failed"` says the last run failed (its error is `lastError`); the revision is then the one that
 * stayed current.
 */
import { readFileSync } from 'node:fs';
import { GlowError } from '../base/errors.js';
import { isGlowCode } from '../base/codes.js';
import { writeFileAtomic } from '../fs/atomic.js';

export type SyncResult = 'published' | 'unchanged' | 'failed';

export interface SyncError {
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

export interface SyncState {
  readonly version: 1;
  readonly source: string | null;
  readonly kind: 'git' | 'dir' | null;
  readonly ref: string | null;
  readonly revision: string | null;
  readonly commit: string | null;
  readonly publishedAt: string | null;
  readonly lastAttemptAt: string;
  readonly lastResult: SyncResult;
  readonly lastSuccessAt: string | null;
  readonly lastError: SyncError | null;
}

const isStrOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** Checks the parsed JSON of a state file; throws GLOW_E_SYNC_STATE naming what is wrong. */
export function parseSyncState(data: unknown, file = 'state.json'): SyncState {
  const bad = (why: string) => new GlowError('GLOW_E_SYNC_STATE', `${file}: ${why}`);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('not a JSON object');
  const o = data as Record<string, unknown>;
  if (o.version !== 1) throw bad(`version ${JSON.stringify(o.version)}, not 1`);
  for (const k of ['source', 'ref', 'revision', 'commit', 'publishedAt', 'lastSuccessAt'] as const) {
    if (!isStrOrNull(o[k])) throw bad(`\`${k}\` is not a string or null`);
  }
  if (!(o.kind === null || o.kind === 'git' || o.kind === 'dir')) throw bad('`kind` is not "git", "dir" or null');
  if (typeof o.lastAttemptAt !== 'string') throw bad('`lastAttemptAt` is not a string');
  if (!(o.lastResult === 'published' || o.lastResult === 'unchanged' || o.lastResult === 'failed')) throw bad('`lastResult` is not published, unchanged or failed');
  const e = o.lastError;
  if (e !== null) {
    if (typeof e !== 'object' || e === undefined) throw bad('`lastError` is not an object or null');
    const r = e as Record<string, unknown>;
    if (typeof r.code !== 'string' || typeof r.message !== 'string' || typeof r.at !== 'string') throw bad('`lastError` needs code, message and at');
  }
  return data as SyncState;
}

/**
 * Reads a state file: undefined when there is none (glow sync never ran with this repository), the state when it
 * is one, GLOW_E_SYNC_STATE when it cannot be read or is not of this shape.
 */
export function readSyncState(path: string): SyncState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GlowError('GLOW_E_SYNC_STATE', `${path}: ${(e as Error).message}`, { cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new GlowError('GLOW_E_SYNC_STATE', `${path}: not JSON (${(e as Error).message})`, { cause: e });
  }
  return parseSyncState(data, path);
}

export function writeSyncState(path: string, state: SyncState): void {
  writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

/** The code of an error for the state file: Glow's own, or GLOW_E_SYNC_WRITE for anything else. */
export function syncErrorOf(e: unknown, at: Date): SyncError {
  const code = e instanceof GlowError ? e.code : isGlowCode((e as { code?: unknown })?.code) ? String((e as { code: unknown }).code) : 'GLOW_E_SYNC_WRITE';
  return { code, message: e instanceof Error ? e.message : String(e), at: at.toISOString() };
}
