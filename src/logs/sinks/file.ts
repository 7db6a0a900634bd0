/**
 * The file sink: JSON lines appended to a path per app (`/var/log/glow/{app}.log`; also `{instance}`, `{node}`).
 * Before each batch the path is compared (device and inode) with the open file: when logrotate (or anyone) renamed
 * or removed it, the file is reopened, so the new lines go to the new file and none is lost to the old one.
 * Truncation (copytruncate) is fine too: files are opened for appending. A batch is acknowledged after
 * fdatasync(), so a stored cursor never runs ahead of what is on disk. At most `maxOpen` files stay open.
 */
import { mkdir, open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GlowError } from '../../base/errors.js';
import { jsonLine } from '../encode.js';
import { SendError } from '../errors.js';
import type { LogRecord } from '../record.js';
import type { SinkTransport } from './sink.js';

interface OpenFile {
  handle: FileHandle;
  dev: number;
  ino: number;
}

/** A placeholder's value as a safe file-name part. */
function part(v: string): string {
  const s = v.replace(/[^A-Za-z0-9._@-]/g, '_');
  return s.startsWith('.') || s === '' ? `_${s}` : s;
}

export function renderPath(template: string, r: LogRecord): string {
  return template.replace(/\{(app|instance|node)\}/g, (_, k: string) =>
    part(k === 'app' ? r.app : k === 'node' ? r.node : r.instance === undefined ? '-' : String(r.instance)),
  );
}

/** renderPath, remembered per app/instance/node (a handful per node). */
function pathCache(template: string): (r: LogRecord) => string {
  const cache = new Map<string, string>();
  return (r) => {
    const key = `${r.app}\0${r.instance ?? ''}\0${r.node}`;
    let p = cache.get(key);
    if (p === undefined) {
      if (cache.size > 10_000) cache.clear();
      cache.set(key, (p = renderPath(template, r)));
    }
    return p;
  };
}

export class FileSink implements SinkTransport {
  readonly #maxOpen: number;
  readonly #files = new Map<string, OpenFile>();
  readonly #pathOf: (r: LogRecord) => string;

  constructor(template: string, maxOpen = 128) {
    this.#maxOpen = maxOpen;
    this.#pathOf = pathCache(template);
  }

  /** Makes the directory of the path up to its first placeholder: a sink that cannot write there does not start. */
  static async open(template: string): Promise<FileSink> {
    const fixed = template.includes('{') ? template.slice(0, template.indexOf('{')) : template;
    const dir = fixed.endsWith('/') ? fixed : dirname(fixed);
    try {
      await mkdir(dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new GlowError('GLOW_E_LOG_SINK_START', `cannot create the directory ${dir}: ${(e as Error).message}`, { cause: e });
    }
    return new FileSink(template);
  }

  async send(records: readonly LogRecord[]): Promise<number> {
    const groups = new Map<string, string[]>();
    for (const r of records) {
      const p = this.#pathOf(r);
      let g = groups.get(p);
      if (!g) groups.set(p, (g = []));
      g.push(jsonLine(r));
    }
    let bytes = 0;
    for (const [path, lines] of groups) {
      const buf = Buffer.from(lines.join(''), 'utf8');
      try {
        const f = await this.#file(path);
        await f.handle.writeFile(buf);
        await f.handle.datasync();
      } catch (e) {
        await this.#drop(path);
        throw new SendError('retry', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
      }
      bytes += buf.length;
    }
    return bytes;
  }

  async #file(path: string): Promise<OpenFile> {
    let f = this.#files.get(path);
    if (f) {
      const st = await stat(path).catch(() => undefined);
      if (!st || st.ino !== f.ino || st.dev !== f.dev) {
        await this.#drop(path); // rotated away: reopen at the path
        f = undefined;
      } else {
        this.#files.delete(path); // most recently used last
        this.#files.set(path, f);
      }
    }
    if (!f) {
      await mkdir(dirname(path), { recursive: true, mode: 0o755 });
      const handle = await open(path, 'a', 0o640);
      const st = await handle.stat();
      f = { handle, dev: st.dev, ino: st.ino };
      this.#files.set(path, f);
      while (this.#files.size > this.#maxOpen) await this.#drop(this.#files.keys().next().value!);
    }
    return f;
  }

  async #drop(path: string): Promise<void> {
    const f = this.#files.get(path);
    this.#files.delete(path);
    await f?.handle.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    for (const p of [...this.#files.keys()]) await this.#drop(p);
  }
}
