/**
 * One run of `glow sync`: take the lock, clean what a killed run left, fetch (git) or snapshot (directory) the
 * source into a new tree beside the published ones, and publish it only if it is new: fsync, rename to its final
 * name, switch the link in one rename, write the state file, prune. On any failure the current revision stays as it
 * is (the link is the last thing that changes) and the error is kept in the state file with its code.
 *
 * Test hook (the only one): with GLOW_SYNC_TEST_HOLD=<stage>, the run stops at that stage — prints
 * `glow sync: holding at <stage> (pid N)` on stderr and sleeps for 10 minutes — so that a test can kill it
 * there or run a second one beside it. Stages: `locked` (the lock is held, nothing written yet), `staged` (the new
 * tree is complete under its `.tmp-` name), `renamed` (the tree has its final name, the link is not switched).
 */
import { rmSync } from 'node:fs';
import { GlowError } from '../base/errors.js';
import { snapshotDir } from './dir.js';
import { ensureMirror, exportTree, fetchCommit, verifyCommit } from './git.js';
import { syncLayout } from './layout.js';
import type { SyncLayout } from './layout.js';
import { acquireLock } from './lock.js';
import type { Lock } from './lock.js';
import type { SyncOptions } from './options.js';
import { describeSource } from './options.js';
import { cleanLeftovers, finishTree, makeStaging, prune, readCurrent, revisionNames, switchLink } from './publish.js';
import type { Current, RevisionMeta } from './publish.js';
import { nextSeq, revisionName } from './revisions.js';
import { readSyncState, syncErrorOf, writeSyncState } from './state.js';
import type { SyncState } from './state.js';

export type HoldStage = 'locked' | 'staged' | 'renamed';

export interface SyncOutcome {
  readonly result: 'published' | 'unchanged' | 'failed';
  readonly layout: SyncLayout;
  /** The current revision after the run (the one that stayed, when it failed). */
  readonly current: {
    readonly name: string | undefined;
    readonly id: string | undefined;
    readonly kind: 'git' | 'dir' | undefined;
    readonly publishedAt: string | undefined;
  };
  readonly previous?: string | undefined;
  /** Details for the one line: signer, files linked and written. */
  readonly notes: readonly string[];
  readonly pruned: readonly string[];
  readonly error?: GlowError;
}

function hold(stage: HoldStage): void {
  if (process.env.GLOW_SYNC_TEST_HOLD !== stage) return;
  process.stderr.write(`glow sync: holding at ${stage} (pid ${process.pid})\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600_000);
}

const curInfo = (c: Current): SyncOutcome['current'] => ({ name: c.name ?? c.dir, id: c.meta?.id, kind: c.meta?.kind, publishedAt: c.meta?.publishedAt });

export async function runSync(opts: SyncOptions, onWait: (holder: number | undefined, waitMs: number) => void): Promise<SyncOutcome> {
  const layout = syncLayout(opts.repo);
  let lock: Lock;
  try {
    lock = acquireLock(layout.lock, opts.waitMs, (h) => onWait(h, opts.waitMs));
  } catch (e) {
    // Busy or no lock: this run owns nothing, not even the state file.
    let current: SyncOutcome['current'] = { name: undefined, id: undefined, kind: undefined, publishedAt: undefined };
    try {
      current = curInfo(readCurrent(layout));
    } catch {
      // reported by the run that holds the lock
    }
    return { result: 'failed', layout, current, notes: [], pruned: [], error: e instanceof GlowError ? e : new GlowError('GLOW_E_SYNC_WRITE', String(e)) };
  }
  let current: Current = { dir: undefined, name: undefined, meta: undefined };
  let staging: string | undefined;
  try {
    hold('locked');
    current = readCurrent(layout);
    cleanLeftovers(layout, current, readSyncStateQuietly(layout.state)?.revision);
    const out = await syncLocked(opts, layout, current, (s) => (staging = s));
    writeState(layout, opts, out, undefined);
    return out;
  } catch (e) {
    const error = e instanceof GlowError ? e : new GlowError('GLOW_E_SYNC_WRITE', (e as Error)?.message ?? String(e), { cause: e });
    if (staging !== undefined) rmSync(staging, { recursive: true, force: true });
    let after = current;
    try {
      after = readCurrent(layout);
    } catch {
      after = { dir: layout.repo, name: undefined, meta: undefined }; // not a link: the directory stays what it is
    }
    const out: SyncOutcome = { result: 'failed', layout, current: curInfo(after), notes: [], pruned: [], error };
    try {
      writeState(layout, opts, out, error);
    } catch {
      // the error itself is what the run reports
    }
    return out;
  } finally {
    lock.release();
  }
}

async function syncLocked(opts: SyncOptions, layout: SyncLayout, current: Current, setStaging: (s: string | undefined) => void): Promise<SyncOutcome> {
  const source = describeSource(opts.source);
  const notes: string[] = [];
  let id: string;
  let signedBy: string | undefined;
  let staging: string;
  if (opts.source.kind === 'git') {
    ensureMirror(layout.mirror, opts.gitEnv);
    id = fetchCommit(layout.mirror, opts.source.url, opts.ref, opts.gitEnv, opts.timeoutMs);
    if (opts.verify !== 'none') {
      signedBy = verifyCommit(layout.mirror, id, opts.verify, opts.allowedSigners, opts.gitEnv);
      notes.push(`signed by ${signedBy}`);
    }
    if (current.name !== undefined && current.meta?.kind === 'git' && current.meta.id === id) {
      return { result: 'unchanged', layout, current: curInfo(current), notes, pruned: [] };
    }
    staging = makeStaging(layout);
    setStaging(staging);
    await exportTree(layout.mirror, id, staging, opts.gitEnv, opts.timeoutMs);
  } else {
    staging = makeStaging(layout);
    setStaging(staging);
    const previous = current.name !== undefined ? current.dir : undefined;
    const snap = snapshotDir(opts.source.path, staging, previous, opts.timeoutMs);
    id = snap.id;
    if (current.name !== undefined && current.meta?.kind === 'dir' && current.meta.id === id) {
      rmSync(staging, { recursive: true, force: true });
      return { result: 'unchanged', layout, current: curInfo(current), notes, pruned: [] };
    }
    notes.push(`${snap.files} files: ${snap.linked} linked to the previous revision, ${snap.copied} written`);
  }
  hold('staged');
  const now = new Date();
  const name = revisionName(nextSeq(revisionNames(layout)), now, id.replace(/^sha256:/, ''));
  const meta: RevisionMeta = {
    version: 1,
    name,
    kind: opts.source.kind,
    source,
    ref: opts.source.kind === 'git' ? opts.ref : null,
    id,
    publishedAt: now.toISOString(),
    ...(signedBy !== undefined ? { signedBy } : {}),
  };
  try {
    finishTree(layout, staging, meta);
  } catch (e) {
    throw e instanceof GlowError ? e : new GlowError('GLOW_E_SYNC_WRITE', `the new revision ${name} could not be written: ${(e as Error).message}`, { cause: e });
  }
  setStaging(undefined);
  hold('renamed');
  try {
    switchLink(layout, name);
  } catch (e) {
    throw new GlowError('GLOW_E_SYNC_WRITE', `the link ${layout.repo} could not be switched to revisions/${name}: ${(e as Error).message}`, { cause: e });
  }
  let pruned: string[] = [];
  try {
    pruned = prune(layout, name, opts.keep);
  } catch (e) {
    notes.push(`pruning failed (${(e as Error).message}); the next run tries again`);
  }
  return { result: 'published', layout, current: { name, id, kind: opts.source.kind, publishedAt: meta.publishedAt }, previous: current.name ?? current.dir, notes, pruned };
}

function writeState(layout: SyncLayout, opts: SyncOptions, out: SyncOutcome, error: GlowError | undefined): void {
  let before: SyncState | undefined;
  try {
    before = readSyncState(layout.state);
  } catch {
    before = undefined; // a broken state file is replaced
  }
  const now = new Date();
  const state: SyncState = {
    version: 1,
    source: describeSource(opts.source),
    kind: opts.source.kind,
    ref: opts.source.kind === 'git' ? opts.ref : null,
    revision: out.current.name ?? null,
    commit: out.current.id ?? null,
    publishedAt: out.current.publishedAt ?? null,
    lastAttemptAt: now.toISOString(),
    lastResult: out.result,
    lastSuccessAt: error === undefined ? now.toISOString() : (before?.lastSuccessAt ?? null),
    lastError: error !== undefined ? syncErrorOf(error, now) : (before?.lastError ?? null),
  };
  writeSyncState(layout.state, state);
}

/** The state file, or nothing when it is missing or unreadable (its own errors are reported where it is read). */
function readSyncStateQuietly(path: string): ReturnType<typeof readSyncState> {
  try {
    return readSyncState(path);
  } catch {
    return undefined;
  }
}
