/**
 * Certificates and keys of the repository, delivered to the proxy.
 *
 * The proxy runs as a dynamic user with the state directory read-only, so it can own nothing there. It is given
 * the supplementary group `glow-tls` instead: a system group that the package's sysusers.d file creates, and glowd
 * at start if it is missing (`systemd-sysusers`). (Not `glow-proxy`: a static group with the name of the unit's
 * dynamic user makes systemd refuse to start it, 217/USER.) Repository files named by an exposure's
 * `tls` are written to `<state>/tls/<path in the repository>`, owned by root and that group, mode 0640, in
 * directories of mode 0750: the proxy can read them, no other user can, and nobody but root can change them.
 * Each file is written to a temporary name, given its owner and mode, synced and renamed, so the proxy (which
 * polls the files, src/proxy/certificates.ts) never reads half a key; a certificate and its key change in two
 * renames, and a proxy that looks in between keeps its previous pair until the second one lands.
 */
import { tlsDir } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { GlowError } from '../base/errors.js';
import { walkFiles, writeFileAtomic } from '../fs/atomic.js';

export { PROXY_GROUP } from '../base/names.js';
import { PROXY_GROUP } from '../base/names.js';
export const TLS_FILE_MODE = 0o640;
export const TLS_DIR_MODE = 0o750;

/** The gid of `glow-tls` in /etc/group, or undefined. */
export function proxyGroupId(groupFile = '/etc/group'): number | undefined {
  let text: string;
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === PROXY_GROUP && gid !== undefined && /^[0-9]+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/** The gid of `glow-tls`, creating the group with systemd-sysusers when it is missing. */
export function ensureProxyGroup(): number {
  const known = proxyGroupId();
  if (known !== undefined) return known;
  const r = spawnSync('systemd-sysusers', ['-'], { input: `g ${PROXY_GROUP} -\n`, encoding: 'utf8', timeout: 30_000 });
  const gid = proxyGroupId();
  if (gid === undefined) {
    throw new GlowError('GLOW_E_PROXY_GROUP', `the group \`${PROXY_GROUP}\` does not exist and systemd-sysusers could not create it (${r.error?.message ?? (r.stderr || `exit ${r.status}`).trim()}); the proxy cannot start without it`);
  }
  return gid;
}

/** Writes one delivered file: owner root:glow-tls, mode 0640, atomically; directories 0750 root:glow-tls. */
export function writeTlsFile(env: NodePaths, storePath: string, bytes: Uint8Array, gid: number): void {
  const root = tlsDir(env);
  mkdirSync(dirname(root), { recursive: true, mode: 0o755 }); // the state directory, as glowd.service makes it
  // Every directory from <state>/tls down to the file's: the proxy's group may enter, others may not.
  const dirs: string[] = [];
  for (let d = dirname(storePath); d.length >= root.length; d = dirname(d)) {
    dirs.unshift(d);
    if (d === root) break;
  }
  for (const d of dirs) {
    mkdirSync(d, { recursive: true, mode: TLS_DIR_MODE });
    chownSync(d, 0, gid);
    chmodSync(d, TLS_DIR_MODE);
  }
  writeFileAtomic(storePath, bytes, TLS_FILE_MODE, gid);
}

/**
 * Every delivered file under `<state>/tls/`, with its sha256 — or an empty digest when its owner, group or mode is
 * not what writeTlsFile gives (so that reconcile writes it again).
 */
export function readTlsStore(env: NodePaths, gid = proxyGroupId()): Map<string, { sha256: string }> {
  const out = new Map<string, { sha256: string }>();
  walkFiles(tlsDir(env), (p, st) => {
    const right = st.uid === 0 && st.gid === gid && (st.mode & 0o777) === TLS_FILE_MODE;
    out.set(p, { sha256: right ? createHash('sha256').update(readFileSync(p)).digest('hex') : '' });
  });
  return out;
}

/** Removes a delivered file and the directories it leaves empty (never `<state>/tls` itself). */
export function removeTlsFile(env: NodePaths, storePath: string): void {
  rmSync(storePath, { force: true });
  const root = tlsDir(env);
  for (let d = dirname(storePath); d !== root && relative(root, d) && !relative(root, d).startsWith('..'); d = dirname(d)) {
    try {
      if (readdirSync(d).length > 0) break;
      rmdirSync(d);
    } catch {
      break;
    }
  }
}
