/**
 * The status of a node as `glow status` shows it, the same shape for glowd and the developer box: the revision
 * applied, the errors of the repository and of the last pass, the proxy, every instance, the log sinks.
 */
import type { GlowCode } from '../base/codes.js';
import { GlowError } from '../base/errors.js';
import { syncLayout } from '../sync/layout.js';
import { readSyncState } from '../sync/state.js';
import type { SinkStatus } from '../logs/forwarder.js';
import type { FrontendStatus } from '../proxy/proxy.js';
import type { SyncState } from '../sync/state.js';

/** The tree a revision was read from: the repository, or the target of its link, resolved once for the pass. */
export interface RepoTree {
  /** The directory read (a link's target, resolved: `/var/lib/glow/revisions/r-…`). */
  readonly path: string;
  /** The revision of `glow sync` (`r-…`), when the tree is one (its `.glow-sync.json` says so). */
  readonly syncRevision?: string;
  /** The source's commit (a git source) or content hash (`sha256:…`, a directory source) glow sync published. */
  readonly commit?: string;
  /** When glow sync published the tree. */
  readonly publishedAt?: string;
}

/**
 * `glow sync` on this node, from its state file beside the repository (src/sync/layout.ts, src/sync/state.ts):
 * the state as the last run wrote it, or why the file cannot be read. Absent when glow sync never ran here.
 */
export type SyncStatus = (SyncState & { readonly file: string }) | { readonly file: string; readonly unreadable: { readonly code: GlowCode; readonly message: string } };

/** The sync status of the repository `repo` (its state file: `<dirname(repo)>/sync/state.json`). */
export function readSyncStatus(repo: string): SyncStatus | undefined {
  const file = syncLayout(repo).state;
  try {
    const state = readSyncState(file);
    return state ? { ...state, file } : undefined;
  } catch (e) {
    const code = e instanceof GlowError ? e.code : 'GLOW_E_SYNC_STATE';
    return { file, unreadable: { code, message: (e as Error).message } };
  }
}

/** One error, as `glow status` shows it: always a registered Glow code (src/base/codes.ts), with the system's
 * errno underneath when there is one (`GLOW_E_APPLY` with errno `EACCES`). */
export interface ProblemReport {
  readonly code: GlowCode;
  readonly message: string;
  readonly errno?: string;
  readonly unit?: string;
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
  readonly at: string;
}

export interface InstanceStatus {
  readonly unit: string;
  readonly app: string;
  readonly instance: number;
  readonly version: string | undefined;
  readonly activeState: string;
  readonly subState: string;
  readonly mainPid: number;
  /** ISO time of the last state change. */
  readonly since: string | undefined;
  readonly desired: boolean;
  readonly stopAt?: string;
  /** The version the repository asks for, when it is not `version`, the one that runs (the developer box). */
  readonly wanted?: string;
  /** Why what the repository asks for this instance is not started: the failure that blocked its app. */
  readonly blocked?: { readonly code: GlowCode; readonly message: string };
}

export interface AgentStatus {
  readonly node: string;
  readonly repo: string;
  /** The revision applied (the last good one), and when it was first applied. */
  readonly revision: string | undefined;
  readonly appliedAt: string | undefined;
  /** The tree the applied revision was read from, with its commit when glow sync published it. */
  readonly appliedFrom?: RepoTree;
  /** The revision last read, good or not. */
  readonly loadedRevision: string | undefined;
  readonly loadedAt: string | undefined;
  readonly loadedFrom?: RepoTree;
  /**
   * The last pass that ended: why it ran, when it read the repository and when its last step was done, and the
   * revision (with its commit) it applied. `revision` above is the one being applied from the moment it is read;
   * this says a pass carried it out.
   */
  readonly lastPass?: { readonly reason: string; readonly startedAt: string; readonly endedAt: string; readonly revision?: string; readonly commit?: string };
  /** The instances the applied revision plans on this node (glowd). */
  readonly instancesPlanned?: number;
  /** The last run of `glow sync` on this node (glowd; absent when it never ran). */
  readonly sync?: SyncStatus;
  /** Errors of the repository as last read (it is not applied while there are any). */
  readonly configErrors: readonly ProblemReport[];
  /** Errors of the last reconcile (a unit that failed to start, an artifact refused, …). */
  readonly applyErrors: readonly ProblemReport[];
  /** The proxy's unit state, and (read from its admin socket by the control server) its listeners. */
  readonly proxy: { readonly activeState: string; readonly since: string | undefined; readonly frontends?: readonly FrontendStatus[] } | undefined;
  readonly instances: readonly InstanceStatus[];
  /** The log sinks of the applied revision: state, last error, lag (src/logs/). */
  readonly sinks: readonly SinkStatus[];
}

