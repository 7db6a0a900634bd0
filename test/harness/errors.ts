/**
 * Errors of the systemd test harness: one class, a stable `code`, the details that explain the failure.
 * Assert on `code`, read `message` (it carries the node's failed units, journal tail or command output).
 */

export type HarnessErrorCode =
  /** something the harness needs is missing: root, a Debian package, a kernel feature */
  | 'HARNESS_PREREQUISITE'
  /** an option is invalid (name, address, state directory) */
  | 'HARNESS_BAD_OPTION'
  /** the node's init script or systemd died, or the boot ended neither running nor (allowed) degraded */
  | 'HARNESS_BOOT_FAILED'
  /** `systemctl is-system-running --wait` did not answer within the boot timeout */
  | 'HARNESS_BOOT_TIMEOUT'
  /** a command run inside a node did not end within its timeout (it was killed) */
  | 'HARNESS_EXEC_TIMEOUT'
  /** a command that had to succeed (ip, podman import, …) failed */
  | 'HARNESS_COMMAND_FAILED'
  /** waiting for something (journal text, a process to die, a cgroup to empty) took too long */
  | 'HARNESS_WAIT_TIMEOUT'
  /** the node is stopped: it cannot run anything any more */
  | 'HARNESS_NODE_STOPPED';

export class HarnessError extends Error {
  readonly code: HarnessErrorCode;

  constructor(code: HarnessErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'HarnessError';
    this.code = code;
  }
}
