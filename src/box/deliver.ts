/**
 * Config files on a dev box: written at their real `path` (there is no mount namespace to put them in), by
 * write-then-rename like glowd's, so that an app never reads half a file. A directory the user may not write is
 * an error that says how to make it theirs, once.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../fs/atomic.js';
import { GlowError } from '../base/errors.js';

/** Writes `content` at `path` atomically; throws GLOW_E_DEVBOX_PATH with the fix when it may not. */
export function deliverFile(path: string, content: Uint8Array, mode: number, user: string): void {
  try {
    writeFileAtomic(path, content, mode);
  } catch (e) {
    throw pathError(path, e as NodeJS.ErrnoException, user);
  }
}

/** The nearest directory of `path`'s that exists: the one that must be writable for the file to be written (the
 * directories below it are made). */
export function nearestDir(path: string): string {
  let at = dirname(path);
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  return at;
}

/** Whether this user may write `path` now (make its directories, and write and rename a file in the last). */
export function canWrite(path: string): boolean {
  try {
    accessSync(nearestDir(path), constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function pathError(path: string, e: NodeJS.ErrnoException, user: string): GlowError {
  const dir = dirname(path);
  // The nearest directory that exists says why: mkdir of a missing directory only says ENOENT.
  const at = nearestDir(path);
  let code = e.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM') {
    try {
      accessSync(at, constants.W_OK);
    } catch (a) {
      code = (a as NodeJS.ErrnoException).code ?? code;
    }
  }
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? `${at} is not writable by ${user}. The dev box writes config files at their real path, where the app reads them; make the directory yours once: sudo install -d -o ${user} ${dir}`
      : code === 'EROFS'
        ? `${at} is on a read-only file system; the dev box writes config files at their real path, so give the app a path it can write (docs/devbox.md)`
        : e.message;
  return new GlowError('GLOW_E_DEVBOX_PATH', `cannot write the config file ${path}: ${why}`, { cause: e });
}

/** sha256 of the file at `path`, or undefined when there is none (or it cannot be read). */
export function sha256OfFile(path: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
}
