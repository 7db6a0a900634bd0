/**
 * Reads the entries of a tar.gz with the `tar` package's parser (npm `tar`, the ecosystem's maintained reader of
 * ustar, GNU and pax archives), and turns each member into an Entry (src/shell/artifacts/entries.ts) — or refuses
 * the archive. The parser only parses: what is checked and what is written is decided here and in
 * src/shell/artifacts/unpack.ts, never by the library's extractor, so the entries that are checked are exactly
 * the entries that are written.
 *
 * Refused, whatever the rest of the archive holds:
 * - anything but gzip (the tarball is `<version>.tar.gz`); an archive that inflates more than 1000 times its
 *   compressed size (a gzip bomb; the parser's own bound);
 * - a damaged archive: a header with a wrong checksum, a truncated member, an unrecognisable format (the parser in
 *   strict mode turns each of its warnings into an error);
 * - a character or block device, a fifo, a GNU dump directory, a sparse file (old GNU or pax GNU.sparse), a
 *   multi-volume continuation, a volume label, or any type the parser does not know;
 * - an extended header (pax, GNU long name) over 1 MiB, a name that is not UTF-8, an invalid size.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Parser } from 'tar';
import type { ReadEntry } from 'tar';
import type { Entry, EntryType } from './entries.js';
import { entryPath, Refused } from './entries.js';

const META_LIMIT = 1 << 20;

const FILE_TYPES: Record<string, EntryType> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'dir',
  SymbolicLink: 'symlink',
  Link: 'hardlink',
};

const REFUSED_TYPES: Record<string, string> = {
  CharacterDevice: 'a character device',
  BlockDevice: 'a block device',
  FIFO: 'a fifo',
  SparseFile: 'a sparse file',
  ContinuationFile: 'a multi-volume continuation',
  TapeVolumeHeader: 'a volume label',
  GNUDumpDir: 'a GNU dump directory',
};

/** The parser replaces bytes that are not UTF-8 with U+FFFD. */
function utf8(s: string, what: string): string {
  if (s.includes('\uFFFD')) throw new Refused(`${what} ${JSON.stringify(s)} is not UTF-8`);
  return s;
}

/** One member as an Entry, or Refused. */
function toEntry(re: ReadEntry, sparse: boolean): Entry {
  const raw = utf8(re.path, 'the name');
  const type = FILE_TYPES[re.type];
  if (sparse) throw new Refused(`the entry ${JSON.stringify(raw)} is a sparse file, which Glow does not unpack`);
  if (type === undefined) {
    throw new Refused(`the entry ${JSON.stringify(raw)} is ${REFUSED_TYPES[re.type] ?? `of unknown type ${JSON.stringify(re.type)}`}, which Glow does not unpack`);
  }
  const size = re.size;
  if (!Number.isSafeInteger(size) || size < 0) throw new Refused(`the entry ${JSON.stringify(raw)} has an invalid size`);
  const rawLink = utf8(re.linkpath ?? '', 'the link target');
  const target = type === 'symlink' ? rawLink : type === 'hardlink' ? entryPath(rawLink, `the hard link ${JSON.stringify(raw)} → ${JSON.stringify(rawLink)}`) : '';
  return { path: entryPath(raw), type, target, executable: ((re.mode ?? 0) & 0o111) !== 0, size: type === 'file' ? size : 0 };
}

async function checkGzip(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    if (bytesRead < 2 || buffer[0] !== 0x1f || buffer[1] !== 0x8b) throw new Refused('not a gzip stream (a .tar.gz must be gzip-compressed)');
  } finally {
    await fh.close();
  }
}

/**
 * Reads the tar.gz `file` and calls onEntry for every member in order, one at a time, with its body (files only;
 * what onEntry does not read is skipped). Rejects with Refused on anything it does not accept, with the reader's
 * or onEntry's error otherwise, or with the signal's reason; it settles only once no onEntry is running.
 */
export async function readTar(file: string, signal: AbortSignal, onEntry: (e: Entry, body: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  await checkGzip(file);
  signal.throwIfAborted();
  const source = createReadStream(file);
  const parser = new Parser({ strict: true, brotli: false, zstd: false, maxMetaEntrySize: META_LIMIT });
  let failure: { error: unknown } | undefined;
  let current: ReadEntry | undefined;
  let sparse = false; // a pax header with GNU.sparse keys: the next member is a sparse file
  let chain = Promise.resolve();

  const done = new Promise<void>((resolvePromise, reject) => {
    const fail = (error: unknown) => {
      if (failure) return;
      failure = { error };
      source.destroy();
      current?.destroy(); // a body being read ends (with failure) rather than waiting for data that will not come
      signal.removeEventListener('abort', onAbort);
      void chain.then(() => reject(error));
    };
    const onAbort = () => fail(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    source.on('error', fail);
    parser.on('error', fail);
    parser.on('meta', (text: string) => {
      if (/(^|\n)\d+ GNU\.sparse\./.test(text)) sparse = true;
    });
    parser.on('ignoredEntry', (re: ReadEntry) => {
      if (re.meta) fail(new Refused('an extended header is too large'));
      else fail(new Refused(`the entry ${JSON.stringify(re.path)} is ${REFUSED_TYPES[re.type] ?? `of unknown type ${JSON.stringify(re.type)}`}, which Glow does not unpack`));
    });
    parser.on('entry', (re: ReadEntry) => {
      let entry: Entry;
      try {
        entry = toEntry(re, sparse);
      } catch (e) {
        fail(e);
        re.resume();
        return;
      }
      sparse = false;
      chain = chain.then(async () => {
        if (failure) return void re.resume();
        current = re;
        try {
          signal.throwIfAborted();
          await onEntry(entry, body(re));
          re.resume(); // skip what was not read
        } catch (e) {
          fail(e);
        } finally {
          current = undefined;
        }
      });
    });
    parser.on('end', () => {
      void chain.then(() => {
        if (failure) return;
        signal.removeEventListener('abort', onAbort);
        resolvePromise();
      });
    });
  });

  /** The member's content; throws the failure if the archive was refused while it was read. */
  async function* body(re: ReadEntry): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of re as AsyncIterable<Buffer>) yield chunk;
    } catch (e) {
      throw failure ? failure.error : e;
    }
    if (failure) throw failure.error;
  }

  source.pipe(parser as unknown as NodeJS.WritableStream);
  return done;
}
