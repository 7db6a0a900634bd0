/**
 * Writes checked entries (src/shell/artifacts/entries.ts) under a new root directory, durably, with the modes the
 * instances need: they run as systemd DynamicUsers, so directories are 0755, files 0644, and files with any
 * executable bit 0755, whatever the archive or the umask say; no set-id bits; the owner is the agent (root).
 *
 * Small files are written (and fsynced) a few at a time, because an artifact of thousands of small files otherwise
 * waits for thousands of fsyncs one after the other; large files are streamed one at a time. Files are created
 * with O_EXCL, which never follows a link.
 */
import { chmod, link, mkdir, open, readdir, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { copyFileDurable, createFileDurable, fsyncDir } from '../../fs/atomic.js';
import type { Entry } from './entries.js';

const SMALL_FILE = 256 * 1024;
const PARALLEL_WRITES = 8;

export class TreeWriter {
  private readonly dirs = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private constructor(
    private readonly root: string,
    /** Whether files must be chmod-ed after creation: only if the umask takes bits from 0755 (not the usual 022). */
    private readonly chmod: boolean,
  ) {
    this.dirs.add(root);
  }

  /** A writer into `root`, which must exist and be empty. */
  static async create(root: string): Promise<TreeWriter> {
    const probe = join(root, '.glow-umask-probe');
    const fh = await open(probe, 'wx', 0o755);
    try {
      return new TreeWriter(root, ((await fh.stat()).mode & 0o777) !== 0o755);
    } finally {
      await fh.close();
      await rm(probe);
    }
  }

  /** Writes one entry: its content is `body`, or the file `source` (a directory source). */
  async entry(e: Entry, body: AsyncIterable<Buffer> | null, source?: string): Promise<void> {
    if (this.failure) throw this.failure.error;
    if (e.path === '') return;
    const path = join(this.root, e.path);
    await this.dir(dirname(path));
    const mode = e.executable ? 0o755 : 0o644;
    switch (e.type) {
      case 'dir':
        return this.dir(path);
      case 'symlink':
        return this.start(() => symlink(e.target, path));
      case 'hardlink':
        await this.drain(); // its target must be there
        return link(join(this.root, e.target), path);
      case 'file':
        if (source !== undefined) return this.start(() => copyFileDurable(source, path, mode));
        if (e.size <= SMALL_FILE && body) {
          const chunks: Buffer[] = [];
          for await (const c of body) chunks.push(c);
          return this.start(() => createFileDurable(path, Buffer.concat(chunks), mode, { chmod: this.chmod }));
        }
        return createFileDurable(path, body ?? [], mode, { chmod: this.chmod });
    }
  }

  /** Waits for every write started; throws the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    if (this.failure) throw this.failure.error;
  }

  /** Waits for every write started (their failures are recorded, not thrown). */
  async settle(): Promise<void> {
    await Promise.all(this.running);
  }

  private async dir(path: string): Promise<void> {
    if (this.dirs.has(path)) return;
    await mkdir(path, { recursive: true, mode: 0o755 });
    for (let d = path; !this.dirs.has(d); d = dirname(d)) this.dirs.add(d);
  }

  private async start(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= PARALLEL_WRITES) await Promise.race(this.running);
    if (this.failure) throw this.failure.error;
    const p: Promise<void> = task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }
}

/** Creates `root` (0700 until finishTree) and lets `write` fill it; when this returns or throws, no write is running. */
export async function writeTree(root: string, write: (w: TreeWriter) => Promise<void>): Promise<void> {
  await mkdir(root, { mode: 0o700 });
  const w = await TreeWriter.create(root);
  try {
    await write(w);
    await w.drain();
  } catch (e) {
    await w.settle(); // nothing may still be writing when the temporary is removed
    throw e;
  }
}

/** Every directory of the tree 0755 and fsynced, deepest first (files were fsynced when written). */
export async function finishTree(root: string): Promise<void> {
  for (const ent of await readdir(root, { withFileTypes: true })) {
    if (ent.isDirectory()) await finishTree(join(root, ent.name));
  }
  await chmod(root, 0o755);
  await fsyncDir(root);
}
