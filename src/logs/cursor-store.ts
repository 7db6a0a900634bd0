/**
 * A sink's journal cursor on disk, `<state>/logs/<sink>.cursor`: one line, the cursor of the last record the sink
 * acknowledged (`journalctl --after-cursor="$(cat …)"` shows what follows). Written atomically — a temporary file,
 * fsync, rename, fsync of the directory — so that after a crash or power loss it is the old or the new cursor,
 * never half of one.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsyncDir } from '../fs/atomic.js';

export function cursorPath(stateDir: string, sink: string): string {
  return join(stateDir, 'logs', `${sink}.cursor`);
}

/** The stored cursor, or undefined when there is none (first start). Other read errors throw. */
export async function readCursor(path: string): Promise<string | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return text === '' ? undefined : text;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function writeCursor(path: string, cursor: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(`${cursor}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
}

/** Moves a cursor that journalctl refuses aside (`.cursor.bad`), for an operator to look at. */
export async function quarantineCursor(path: string): Promise<void> {
  await rename(path, `${path}.bad`).catch(() => rm(path, { force: true }));
}
