/**
 * Where Glow keeps things on a node, and the defaults of glowd, in one place. The daemon's flags set the
 * directories and programs (tests point them elsewhere); everything under the state directory is derived here.
 *
 *   /var/lib/glow/repo                      the config repository (a directory, or a link to the current revision)
 *   /var/lib/glow/artifacts/<image>/<ver>/  unpacked exec artifacts
 *   /var/lib/glow/files/<app>/<dir>/        delivered config files, bind-mounted onto <dir>
 *   /var/lib/glow/tls/<path>                delivered certificates and keys
 *   /var/lib/glow/proxy/routes.json         the proxy's routes
 *   /var/lib/glow/logs/                     the log sinks' cursors
 *   /run/glow/glowd.sock                    glowd's control socket
 *   /run/glow-proxy/admin.sock              the proxy's admin socket
 */
import { posix } from 'node:path';

/** The host paths and programs that units and the daemon name. */
export interface NodePaths {
  /** Glow's state: artifacts/, files/, tls/, proxy/, logs/ (default /var/lib/glow). */
  readonly stateDir: string;
  /** The command that runs `glow` (["/usr/bin/glow"], or ["/usr/bin/node", "/opt/glow/dist/src/cli/glow.js"]). */
  readonly glowCommand: readonly string[];
  readonly podman: string;
}

export const STATE_DIR = '/var/lib/glow';

export const DEFAULT_PATHS: NodePaths = {
  stateDir: STATE_DIR,
  glowCommand: ['/usr/bin/glow'],
  podman: '/usr/bin/podman',
};

/** glowd's defaults, each a flag too (`glowd --help`). */
export const AGENT_DEFAULTS = {
  repo: posix.join(STATE_DIR, 'repo'),
  unitDir: '/etc/systemd/system',
  stateDir: STATE_DIR,
  socket: '/run/glow/glowd.sock',
  podman: '/usr/bin/podman',
  /** Quiet time after the last change before the repository is read (an rsync or checkout in progress). */
  debounce: '50ms',
  /** Re-plan this often even without changes. */
  tick: '30s',
  /** How long a restarted instance may take to become healthy during a rolling restart. */
  healthTimeout: '60s',
} as const;

/** The proxy's admin socket (metrics and status, read by glowd as root); in its unit's RuntimeDirectory. */
export const PROXY_ADMIN_SOCKET = '/run/glow-proxy/admin.sock';

export const routesFile = (p: NodePaths): string => posix.join(p.stateDir, 'proxy', 'routes.json');

/** Where an exec artifact is unpacked. */
export function artifactDir(p: NodePaths, image: string, version: string): string {
  return posix.join(p.stateDir, 'artifacts', image.replace(/[^A-Za-z0-9._-]/g, '_'), version);
}

/** The root of the delivered config files. */
export const filesRoot = (p: NodePaths): string => posix.join(p.stateDir, 'files');

/** Where glow keeps an app's delivered config files: a directory per mounted directory. */
export function configStoreDir(p: NodePaths, app: string, path: string): string {
  return posix.join(filesRoot(p), app, posix.dirname(path));
}

/** The delivered copy of one config file. */
export function configStorePath(p: NodePaths, app: string, path: string): string {
  return posix.join(configStoreDir(p, app, path), posix.basename(path));
}

/** The app a delivered config file belongs to ('' for a path outside the store). */
export function appOfStorePath(p: NodePaths, storePath: string): string {
  const root = `${filesRoot(p)}/`;
  return storePath.startsWith(root) ? storePath.slice(root.length).split('/')[0]! : '';
}

/** Where glowd delivers the certificates and keys of the repository. */
export const tlsDir = (p: NodePaths): string => posix.join(p.stateDir, 'tls');

/** The delivered path of a repository file named by an exposure's `tls`. */
export const tlsStorePath = (p: NodePaths, source: string): string => posix.join(tlsDir(p), source);

/** The log sinks' cursors and state. */
export const logsDir = (stateDir: string): string => posix.join(stateDir, 'logs');
