/**
 * The journalctl command lines, built by pure functions (as Vector's journald source does), so that what glowd and
 * `glow logs` run is tested without a journal.
 *
 * What the forwarder follows: every entry with `GLOW_NODE=<this node>` — exactly the lines of Glow's instance
 * units on this node, whose units attach GLOW_APP/GLOW_VERSION/GLOW_INSTANCE/GLOW_NODE with `LogExtraFields=`.
 * The match never changes while glowd runs (apps come and go without a restart of the reader, so no line of a
 * starting or stopping instance falls between two filters), and journald answers it from its field index. The
 * proxy's lines (its access log; unit `glow-proxy.service`, without GLOW_* fields) join as a second match
 * group, ORed with `+`: `GLOW_NODE=n + _SYSTEMD_UNIT=glow-proxy.service [SYSLOG_IDENTIFIER=…]`.
 *
 * Traps of journalctl 252 (measured on Debian 12) that the arguments avoid: `--follow` alone prints only
 * the last 10 lines, so `--no-tail` is always given; `--cursor-file` is never written under `--follow`, so the
 * cursor is read from each entry and passed back as `--after-cursor`; fields over 4096 bytes print as `null`
 * without `--all`. The same match is used on every restart, as a cursor is only meaningful with its filter.
 */
import { OUTPUT_FIELDS } from './journal-entry.js';

export interface FollowQuery {
  /** This node's name: the GLOW_NODE match. */
  readonly node: string;
  /** Resume after this cursor; without one, start at the beginning of the current boot. */
  readonly after?: string;
  /** Also follow this unit's lines (the proxy's access log), optionally only those with this identifier. */
  readonly proxy?: { readonly unit: string; readonly identifier?: string };
  /** Read a journal directory instead of the system journal (benchmarks, tests from outside a node). */
  readonly directory?: string;
  /** Follow (the daemon) or stop at the end (tests, catch-up). */
  readonly follow: boolean;
}

const COMMON = ['--output=json', '--all', '--no-pager', '--quiet'];

export function followArgs(q: FollowQuery): string[] {
  const args = [...COMMON, `--output-fields=${OUTPUT_FIELDS.join(',')}`];
  if (q.directory !== undefined) args.push(`--directory=${q.directory}`);
  if (q.follow) args.push('--follow', '--no-tail');
  if (q.after !== undefined) args.push(`--after-cursor=${q.after}`);
  else args.push('--boot');
  args.push(`GLOW_NODE=${q.node}`);
  if (q.proxy) {
    args.push('+', `_SYSTEMD_UNIT=${q.proxy.unit}`);
    if (q.proxy.identifier !== undefined) args.push(`SYSLOG_IDENTIFIER=${q.proxy.identifier}`);
  }
  return args;
}

export interface LogsQuery {
  readonly app: string;
  readonly instance?: number;
  /** journalctl's --since: `2024-05-01 12:00`, `-1h`, `yesterday`, `today`… */
  readonly since?: string;
  readonly follow: boolean;
  /** Show only the last N lines (with --follow and without --since: 10, as journalctl does). */
  readonly lines?: number;
  readonly directory?: string;
}

/** `glow logs APP`: an app's lines on this node, read straight from the journal. */
export function logsArgs(q: LogsQuery): string[] {
  const args = [...COMMON, `--output-fields=${OUTPUT_FIELDS.join(',')}`];
  if (q.directory !== undefined) args.push(`--directory=${q.directory}`);
  if (q.since !== undefined) args.push(`--since=${q.since}`);
  const lines = q.lines ?? (q.follow && q.since === undefined ? 10 : undefined);
  if (lines !== undefined) args.push(`--lines=${lines}`);
  else if (q.follow) args.push('--no-tail');
  if (q.follow) args.push('--follow');
  args.push(`GLOW_APP=${q.app}`);
  if (q.instance !== undefined) args.push(`GLOW_INSTANCE=${q.instance}`);
  return args;
}
