/**
 * The status of a node as `glow status` shows it, the same shape for glowd and the developer box: the revision
 * applied, the errors of the repository and of the last pass, the proxy, every instance, the log sinks.
 */
import type { GlowCode } from '../base/codes.js';
import type { SinkStatus } from '../logs/forwarder.js';
import type { FrontendStatus } from '../proxy/proxy.js';

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
  /** The revision last read, good or not. */
  readonly loadedRevision: string | undefined;
  readonly loadedAt: string | undefined;
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

