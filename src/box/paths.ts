/**
 * Where a dev box keeps its things, for a user without root: the XDG base directories.
 *
 *   $XDG_STATE_HOME/glow/up/<repo>-<hash>/     (default ~/.local/state/glow/up/…) one per repository:
 *       artifacts/<image>/<version>/           exec artifacts, unpacked or copied once (as /var/lib/glow/artifacts)
 *       tls/<source>                           certificates and keys of exposures, from the repository
 *       dev/<app>.env                          `glow dev`'s environment of an app, for an IDE
 *       pids.json                              the process groups it started (to clean up after a SIGKILL)
 *   $XDG_RUNTIME_DIR/glow/up.sock              the control socket of the one `glow up` of this user, answering
 *                                              GET /status like glowd's; without XDG_RUNTIME_DIR, in the state
 *                                              directory: ~/.local/state/glow/up/up.sock
 *
 * Config files are not here: the box writes them at their real `path`, where the app reads them.
 */
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';

export interface DevboxPaths {
  /** The state of every repository's box. */
  readonly root: string;
  readonly socket: string;
}

export function devboxPaths(env: Readonly<Record<string, string | undefined>>, home: string): DevboxPaths {
  const state = env.XDG_STATE_HOME ? join(env.XDG_STATE_HOME, 'glow', 'up') : join(home, '.local', 'state', 'glow', 'up');
  const socket = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'glow', 'up.sock') : join(state, 'up.sock');
  return { root: state, socket };
}

/** The state directory of one repository's box: its name and a hash of its real path (two clones never share). */
export function repoStateDir(root: string, realRepoPath: string): string {
  const name = basename(realRepoPath).replace(/[^A-Za-z0-9._-]/g, '_') || 'repo';
  return join(root, `${name}-${createHash('sha256').update(realRepoPath).digest('hex').slice(0, 8)}`);
}
