/**
 * The exec runtime's artifact store: `<artifacts>/<image>/<version>.tar.gz`, fetched and unpacked once into
 * `<stateDir>/artifacts/<image with / as _>/<version>/` (artifactDir() of src/render/units.ts), where the instances
 * run it from.
 *
 * - Sources: glow.yaml `artifacts` is an http(s) URL base, or a directory (absolute, or relative to the config
 *   repository). A directory source may also hold an unpacked `<image>/<version>/` directory (developer boxes);
 *   it is copied. A `file://` URL is a directory.
 * - Atomic: the tarball is downloaded (or copied) to a temporary file, hashed on the way, checked against the app's
 *   `digest`, then unpacked into a temporary directory; every file and directory is fsynced and the directory is
 *   renamed into place. Temporaries live in `<stateDir>/artifacts/.tmp/<pid>-<random>/`; after a crash there is
 *   either nothing or the whole directory, and the leftover temporary is removed by a later call.
 * - Once there, an artifact is never fetched or changed again: a version is immutable. A small record in
 *   `<stateDir>/artifacts/.meta/<image>/<version>.json` (image, source, sha256) lets a later call notice, without
 *   network, a changed `digest` for the same version, or two images that map to the same directory.
 * - Unpacking is done by a small tar reader here, not the system `tar`: the entries that are checked are exactly
 *   the entries that are written (no parsing of `tar -tv` text, no second interpretation of the archive), and
 *   ownership, permissions and file types are ours to decide. The archive is read twice: once to list and check
 *   every entry — an absolute path, a `..`, a link leading out (following the archive's own symbolic links), a
 *   device or fifo refuses the whole artifact — then once to write. Formats: ustar, GNU (long names) and pax, as
 *   GNU tar and bsdtar write them; sparse and multi-volume archives are refused.
 * - Permissions: instances run as systemd DynamicUsers, so directories are 0755, files 0644, and files with any
 *   executable bit 0755, whatever the archive or the umask say; the owner is the agent (root). No set-id bits.
 * - Concurrent calls for one artifact in one process share one fetch. An aborted caller stops waiting; the fetch
 *   itself is aborted only when every caller waiting for it has aborted.
 */
import { DEFAULT_PATHS, artifactDir } from '../base/paths.js';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, stat, statfs, symlink, link } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pipeline } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { GlowError } from '../base/errors.js';

/** The codes ensureArtifact() throws (GlowError.code), each with its meaning in one line. */


export interface EnsureArtifactOptions {
  /** Glow's state directory (NodePaths.stateDir, /var/lib/glow). */
  stateDir: string;
  /** glow.yaml `artifacts`: an http(s) URL base or a directory. */
  source: string;
  /** The config repository, against which a relative directory `source` is resolved. */
  repoDir?: string;
  image: string;
  version: string;
  /** `sha256:<64 hex>`: the tarball must have this digest. */
  digest?: string;
  signal?: AbortSignal;
  /** Bound on the download (connection, headers and body); default 10 minutes. */
  timeoutMs?: number;
}

export interface EnsureArtifactResult {
  /** The unpacked artifact: artifactDir() of src/render/units.ts. */
  dir: string;
  /** True if this call (or the fetch it shared) downloaded or copied it; false if it was already there. */
  fetched: boolean;
}

export const DEFAULT_ARTIFACT_TIMEOUT_MS = 10 * 60_000;

const VERSION = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/; // as the app schema
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const TMP = '.tmp';
const META = '.meta';
const TMP_NAME = /^(\d+)-[0-9a-f]+$/;

interface Flight {
  image: string;
  promise: Promise<EnsureArtifactResult>;
  controller: AbortController;
  waiters: number;
}

/** Fetches in progress in this process, by artifact directory. */
const flights = new Map<string, Flight>();
/** Temporary directories of this process that are in use (the others under .tmp/ are leftovers). */
const activeTemps = new Set<string>();
/** State directories whose leftovers this process has already cleaned once. */
const cleanedOnce = new Set<string>();

/**
 * Makes sure the artifact `image` `version` is unpacked on this node and returns its directory. Throws a GlowError
 * with one of ARTIFACT_CODES (src/base/codes.ts), or the signal's reason when aborted.
 */
export async function ensureArtifact(opts: EnsureArtifactOptions): Promise<EnsureArtifactResult> {
  checkName(opts.image, opts.version);
  if (opts.digest !== undefined && !DIGEST.test(opts.digest)) {
    throw new GlowError('GLOW_E_ARTIFACT_DIGEST', `the digest ${JSON.stringify(opts.digest)} of artifact ${label(opts)} is not sha256: followed by 64 lower-case hex digits`);
  }
  opts.signal?.throwIfAborted();
  const dir = artifactDir({ ...DEFAULT_PATHS, stateDir: opts.stateDir }, opts.image, opts.version);
  const store = join(opts.stateDir, 'artifacts');

  let flight = flights.get(dir);
  if (!flight) {
    if (await isDirectory(dir)) {
      if (!cleanedOnce.has(store)) {
        cleanedOnce.add(store);
        await cleanLeftovers(store);
      }
      await checkInstalled(store, dir, opts);
      return { dir, fetched: false };
    }
    flight = flights.get(dir); // another call may have started while we looked
  }
  if (!flight) {
    const controller = new AbortController();
    const f: Flight = { image: opts.image, controller, waiters: 0, promise: Promise.resolve(null as never) };
    f.promise = install(store, dir, opts, controller.signal).finally(() => {
      if (flights.get(dir) === f) flights.delete(dir);
    });
    f.promise.catch(() => {}); // observed by the callers; not an unhandled rejection when they all gave up
    flights.set(dir, f);
    flight = f;
  } else if (flight.image !== opts.image) {
    throw collision(dir, flight.image, opts.image);
  }
  return wait(dir, flight, opts.signal);
}

/** Waits for a shared fetch; aborting stops this caller's wait, and the fetch once nobody waits for it. */
function wait(dir: string, f: Flight, signal: AbortSignal | undefined): Promise<EnsureArtifactResult> {
  f.waiters++;
  if (!signal) return f.promise;
  return new Promise((resolvePromise, reject) => {
    const onAbort = () => {
      f.waiters--;
      if (f.waiters === 0) {
        if (flights.get(dir) === f) flights.delete(dir); // a new caller starts afresh
        f.controller.abort(signal.reason);
      }
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    f.promise.then(
      (r) => {
        signal.removeEventListener('abort', onAbort);
        resolvePromise(r);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Installing

interface ArtifactRecord {
  image: string;
  version: string;
  source: string;
  /** `sha256:<hex>` of the tarball, or null for an unpacked directory. */
  sha256: string | null;
}

async function install(store: string, dir: string, opts: EnsureArtifactOptions, signal: AbortSignal): Promise<EnsureArtifactResult> {
  cleanedOnce.add(store);
  await cleanLeftovers(store);
  const source = parseSource(opts);
  const tmp = join(store, TMP, `${process.pid}-${randomBytes(8).toString('hex')}`);
  activeTemps.add(tmp);
  try {
    await mkdirReadable(store);
    await mkdir(join(store, TMP), { recursive: true, mode: 0o700 });
    await mkdir(tmp, { mode: 0o700 });
    const tarball = join(tmp, 'artifact.tar.gz');
    const root = join(tmp, 'root');
    let sha256: string | null;
    let where: string;
    if (source.kind === 'http') {
      where = redact(source.url);
      sha256 = await download(source.url, tarball, signal, opts.timeoutMs ?? DEFAULT_ARTIFACT_TIMEOUT_MS, opts);
    } else {
      const found = await findInDirectory(source.dir, opts);
      where = found.path;
      if (found.kind === 'tarball') {
        sha256 = await copyHashing(found.path, tarball, signal, opts);
      } else {
        if (opts.digest !== undefined) {
          throw new GlowError(
            'GLOW_E_ARTIFACT_DIGEST',
            `artifact ${label(opts)} has a digest, but ${found.path} is an unpacked directory whose digest cannot be checked: put ${opts.version}.tar.gz there instead, or remove \`digest\``,
          );
        }
        sha256 = null;
        await copyTree(found.path, root, signal, opts);
      }
    }
    if (sha256 !== null) {
      if (opts.digest !== undefined && sha256 !== opts.digest) {
        throw new GlowError(
          'GLOW_E_ARTIFACT_DIGEST',
          `artifact ${label(opts)} from ${where} does not match its digest: expected ${opts.digest}, got ${sha256}; nothing was unpacked`,
        );
      }
      await unpack(tarball, root, signal, opts, where);
    }
    await finishTree(root);
    signal.throwIfAborted();

    // The record first, then the directory: a directory that exists always has its record.
    const record: ArtifactRecord = { image: opts.image, version: opts.version, source: where, sha256 };
    const recordPath = metaPath(store, dir);
    await writeDurably(join(tmp, 'record.json'), `${JSON.stringify(record, null, 2)}\n`);
    await mkdirReadable(dirname(recordPath));
    await rename(join(tmp, 'record.json'), recordPath);
    await syncDir(dirname(recordPath));

    await mkdirReadable(dirname(dir));
    signal.throwIfAborted();
    try {
      await rename(root, dir);
    } catch (e) {
      // Another process installed it in the meantime: theirs is as complete as ours.
      if (!(errno(e) === 'ENOTEMPTY' || errno(e) === 'EEXIST') || !(await isDirectory(dir))) throw e;
    }
    await syncDir(dirname(dir));
    return { dir, fetched: true };
  } catch (e) {
    if (e instanceof GlowError || signal.aborted) throw e;
    throw new GlowError('GLOW_E_ARTIFACT_UNPACK', `artifact ${label(opts)} could not be installed into ${dir}: ${reason(e)}`, { cause: e });
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    activeTemps.delete(tmp);
  }
}

/** An artifact that is already there: check what its record says against what is asked (no network). */
async function checkInstalled(store: string, dir: string, opts: EnsureArtifactOptions): Promise<void> {
  let record: Partial<ArtifactRecord>;
  try {
    record = JSON.parse(await readFile(metaPath(store, dir), 'utf8')) as Partial<ArtifactRecord>;
  } catch {
    return; // no record (put there by hand): nothing to compare
  }
  if (typeof record.image === 'string' && record.image !== opts.image) throw collision(dir, record.image, opts.image);
  if (opts.digest !== undefined) {
    if (record.sha256 === null) {
      throw new GlowError(
        'GLOW_E_ARTIFACT_DIGEST',
        `artifact ${label(opts)} has a digest, but ${dir} was copied from an unpacked directory (${record.source ?? '?'}) whose digest cannot be checked: remove ${dir} to fetch it again`,
      );
    }
    if (typeof record.sha256 === 'string' && record.sha256 !== opts.digest) {
      throw new GlowError(
        'GLOW_E_ARTIFACT_DIGEST',
        `artifact ${label(opts)} is already unpacked in ${dir} from a tarball with digest ${record.sha256}, but the app now expects ${opts.digest}: a version is never fetched twice, so publish the new build as a new version (or remove ${dir})`,
      );
    }
  }
}

function collision(dir: string, theirs: string, ours: string): GlowError {
  return new GlowError(
    'GLOW_E_ARTIFACT_NAME',
    `the images ${JSON.stringify(theirs)} and ${JSON.stringify(ours)} share the artifact directory ${dir} (characters other than letters, digits, ".", "_" and "-" become "_"): rename one of them`,
  );
}

function metaPath(store: string, dir: string): string {
  // dir is <store>/<sanitised image>/<version>
  return join(store, META, `${dir.slice(store.length + 1)}.json`);
}

/** Removes what crashed or failed calls left under .tmp/: anything not in use by a live process. */
async function cleanLeftovers(store: string): Promise<void> {
  const tmpRoot = join(store, TMP);
  let names: string[];
  try {
    names = await readdir(tmpRoot);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(tmpRoot, name);
    const m = TMP_NAME.exec(name);
    const pid = m ? Number(m[1]) : NaN;
    const inUse = pid === process.pid ? activeTemps.has(path) : m !== null && alive(pid);
    if (!inUse) await rm(path, { recursive: true, force: true }).catch(() => {});
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sources

type Source = { kind: 'http'; url: string } | { kind: 'dir'; dir: string };

function checkName(image: string, version: string): void {
  const segments = image.split('/');
  const bad =
    image.length === 0 ||
    /[\s\0\\]/.test(image) ||
    segments.some((s) => s === '' || s === '.' || s === '..') ||
    image.replace(/[^A-Za-z0-9._-]/g, '_').startsWith('.');
  if (bad) {
    throw new GlowError(
      'GLOW_E_ARTIFACT_NAME',
      `the image ${JSON.stringify(image)} cannot name an artifact: use names separated by "/", none empty, "." or "..", not starting with "."`,
    );
  }
  if (!VERSION.test(version)) {
    throw new GlowError(
      'GLOW_E_ARTIFACT_NAME',
      `the version ${JSON.stringify(version)} of artifact ${image} cannot name an artifact: use letters, digits, ".", "_", "+" and "-", not starting with "." or "-"`,
    );
  }
}

function parseSource(opts: EnsureArtifactOptions): Source {
  const s = opts.source;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(s)) {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      throw new GlowError('GLOW_E_ARTIFACT_FETCH', `the artifact source ${JSON.stringify(s)} is not a valid URL`);
    }
    if (url.protocol === 'file:') return { kind: 'dir', dir: fileURLToPath(url) };
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new GlowError('GLOW_E_ARTIFACT_FETCH', `the artifact source ${redact(s)} is neither http(s) nor a directory`);
    }
    const path = [...opts.image.split('/'), `${opts.version}.tar.gz`].map(encodeURIComponent).join('/');
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path}`;
    return { kind: 'http', url: url.href };
  }
  if (isAbsolute(s)) return { kind: 'dir', dir: s };
  if (opts.repoDir === undefined) {
    throw new GlowError('GLOW_E_ARTIFACT_MISSING', `the artifact source ${JSON.stringify(s)} is a relative directory, and no config repository was given to resolve it against`);
  }
  return { kind: 'dir', dir: resolve(opts.repoDir, s) };
}

async function findInDirectory(dir: string, opts: EnsureArtifactOptions): Promise<{ kind: 'tarball' | 'tree'; path: string }> {
  const base = join(dir, ...opts.image.split('/'));
  const tarball = join(base, `${opts.version}.tar.gz`);
  const tree = join(base, opts.version);
  for (const [kind, path] of [['tarball', tarball], ['tree', tree]] as const) {
    try {
      const st = await stat(path);
      if (kind === 'tarball' ? st.isFile() : st.isDirectory()) return { kind, path };
    } catch (e) {
      if (errno(e) !== 'ENOENT' && errno(e) !== 'ENOTDIR') {
        throw new GlowError('GLOW_E_ARTIFACT_FETCH', `artifact ${label(opts)}: cannot read ${path}: ${reason(e)}`, { cause: e });
      }
    }
  }
  const where = (await isDirectory(dir)) ? '' : ` (the directory ${dir} does not exist)`;
  throw new GlowError('GLOW_E_ARTIFACT_MISSING', `artifact ${label(opts)} is not in the artifact directory: neither ${tarball} nor ${tree}/ exists${where}`);
}

/** Downloads url into file (which must not exist) and returns its `sha256:<hex>`. */
async function download(url: string, file: string, signal: AbortSignal, timeoutMs: number, opts: EnsureArtifactOptions): Promise<string> {
  const shown = redact(url);
  const timeout = AbortSignal.timeout(timeoutMs);
  const both = AbortSignal.any([signal, timeout]);
  const fail = (e: unknown): never => {
    if (signal.aborted) throw signal.reason;
    const why = timeout.aborted ? `no complete answer within ${timeoutMs} ms` : reason(e);
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not fetch artifact ${label(opts)} from ${shown}: ${why}`, { cause: e });
  };
  // identity: a server that would gzip the .tar.gz again must not, so the bytes are the tarball's.
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  const u = new URL(url);
  if (u.username || u.password) {
    // fetch() refuses credentials in a URL: they become a Basic authorization header.
    const user = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
    headers.authorization = `Basic ${Buffer.from(user, 'utf8').toString('base64')}`;
    u.username = u.password = '';
  }
  let res: Response;
  try {
    res = await fetch(u.href, { signal: both, redirect: 'follow', headers });
  } catch (e) {
    return fail(e);
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new GlowError(
      'GLOW_E_ARTIFACT_FETCH',
      `could not fetch artifact ${label(opts)} from ${shown}: the server answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${res.status === 404 ? ' (no such artifact)' : ''}`,
    );
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const fh = await open(file, 'wx', 0o600);
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.length;
      await writeAll(fh, chunk);
    }
    await fh.sync();
  } catch (e) {
    if (signal.aborted || timeout.aborted || !isFsError(e)) fail(e);
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not store artifact ${label(opts)} from ${shown} in ${file}: ${reason(e)}`, { cause: e });
  } finally {
    await fh.close();
  }
  const length = res.headers.get('content-length');
  if (length !== null && !res.headers.get('content-encoding') && Number(length) !== bytes) {
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not fetch artifact ${label(opts)} from ${shown}: got ${bytes} bytes of ${length}`);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Copies a tarball of a directory source into file, hashing what is copied (so what is checked is what is unpacked). */
async function copyHashing(from: string, file: string, signal: AbortSignal, opts: EnsureArtifactOptions): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(file, 'wx', 0o600);
  try {
    for await (const chunk of createReadStream(from) as AsyncIterable<Buffer>) {
      signal.throwIfAborted();
      hash.update(chunk);
      await writeAll(fh, chunk);
    }
    await fh.sync();
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not copy artifact ${label(opts)} from ${from}: ${reason(e)}`, { cause: e });
  } finally {
    await fh.close();
  }
  return `sha256:${hash.digest('hex')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Entries: what an archive (or an unpacked directory) holds, checked before anything is written

type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink';

interface Entry {
  /** Normalised path inside the artifact: no leading "/", no "." or ".." segments, no trailing "/"; "" is the root. */
  path: string;
  type: EntryType;
  /** Symbolic link: the target as written; hard link: the normalised path of the entry it links to. */
  target: string;
  executable: boolean;
  size: number;
}

class Refused extends Error {}

/** Normalises a member name (or a hard link's target), or refuses it if it leaves the root. */
function entryPath(raw: string, what = `the entry ${JSON.stringify(raw)}`): string {
  if (raw.includes('\0')) throw new Refused(`${what} has a NUL byte in its name`);
  if (raw.startsWith('/')) throw new Refused(`${what} is an absolute path`);
  const parts = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw new Refused(`${what} has a ".." in its path`);
  return parts.join('/');
}

/**
 * Where a symbolic link at `from` leads, following the archive's own links, or null if it leads out of the root.
 * Every link in the archive is taken into account, whatever its order, because they all exist once unpacked.
 */
function resolveLink(from: string, target: string, links: ReadonlyMap<string, string>): string[] | null {
  if (target.startsWith('/')) return null;
  const stack = from.split('/').slice(0, -1).filter((s) => s !== '');
  let queue = target.split('/');
  let follows = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (stack.length === 0) return null;
      stack.pop();
      continue;
    }
    stack.push(c);
    const t = links.get(stack.join('/'));
    if (t !== undefined) {
      if (++follows > 40 || t.startsWith('/')) return null; // a loop, or out
      stack.pop();
      queue = [...t.split('/'), ...queue];
    }
  }
  return stack;
}

/** Refuses the whole set of entries if any of them would write or point outside the root. */
function checkEntries(entries: readonly Entry[]): void {
  const byPath = new Map<string, Entry>(); // the entries seen so far
  const links = new Map<string, string>(); // every symbolic link, wherever it is in the archive
  const notDirs = new Set<string>(); // every path that is not a directory
  for (const e of entries) {
    if (e.type === 'symlink') links.set(e.path, e.target);
    if (e.type !== 'dir') notDirs.add(e.path);
  }
  for (const e of entries) {
    const name = JSON.stringify(e.path);
    if (e.path === '') {
      if (e.type !== 'dir') throw new Refused('the root of the archive is not a directory');
      continue;
    }
    const seen = byPath.get(e.path);
    if (seen) {
      if (seen.type === 'dir' && e.type === 'dir') continue;
      throw new Refused(`the entry ${name} appears twice`);
    }
    byPath.set(e.path, e);
    // Every ancestor must be a directory: never write through a link or into a file.
    const parts = e.path.split('/');
    for (let n = 1; n < parts.length; n++) {
      const up = parts.slice(0, n).join('/');
      if (links.has(up)) throw new Refused(`the entry ${name} lies under the symbolic link ${JSON.stringify(up)}`);
      if (notDirs.has(up)) throw new Refused(`the entry ${name} lies under ${JSON.stringify(up)}, which is not a directory`);
    }
    if (e.type === 'symlink') {
      if (e.target === '' || e.target.includes('\0')) throw new Refused(`the symbolic link ${name} has an empty or invalid target`);
      if (resolveLink(e.path, e.target, links) === null) {
        throw new Refused(`the symbolic link ${name} → ${JSON.stringify(e.target)} leads out of the artifact (or loops)`);
      }
    }
    if (e.type === 'hardlink') {
      const t = byPath.get(e.target);
      if (!t || t === e || (t.type !== 'file' && t.type !== 'hardlink')) {
        throw new Refused(`the hard link ${name} does not link to a file before it in the archive (${JSON.stringify(e.target)})`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Tar: a reader of ustar, GNU and pax archives, in a gzip stream

/** Reads exactly what is asked from an async stream of buffers. */
class Reader {
  private chunks: Buffer[] = [];
  private it: AsyncIterator<Buffer>;
  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }
  /** Up to max bytes, or null at the end of the stream. */
  async some(max: number): Promise<Buffer | null> {
    if (this.chunks.length === 0) {
      const r = await this.it.next();
      if (r.done) return null;
      this.chunks.push(r.value);
    }
    const first = this.chunks[0]!;
    if (first.length <= max) {
      this.chunks.shift();
      return first;
    }
    this.chunks[0] = first.subarray(max);
    return first.subarray(0, max);
  }
  /** Exactly n bytes, or null if the stream ends right here. */
  async exactly(n: number): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const c = await this.some(n - got);
      if (!c) {
        if (got === 0) return null;
        throw new Refused('the archive is truncated');
      }
      parts.push(c);
      got += c.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }
  async skip(n: number): Promise<void> {
    while (n > 0) {
      const c = await this.some(Math.min(n, 1 << 20));
      if (!c) throw new Refused('the archive is truncated');
      n -= c.length;
    }
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

const BLOCK = 512;
const META_LIMIT = 1 << 20;

function field(h: Buffer, at: number, len: number): Buffer {
  const b = h.subarray(at, at + len);
  const nul = b.indexOf(0);
  return nul === -1 ? b : b.subarray(0, nul);
}

function text(b: Buffer, what: string): string {
  const s = b.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(b)) throw new Refused(`an entry's ${what} is not UTF-8`);
  return s;
}

function number(h: Buffer, at: number, len: number): number {
  const b = h.subarray(at, at + len);
  if (b[0]! & 0x80) {
    // base-256 (GNU, for sizes of 8 GiB and more)
    if (b[0] === 0xff) throw new Refused('an entry has a negative size');
    let n = b[0]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + b[i]!;
    if (!Number.isSafeInteger(n)) throw new Refused('an entry is too large');
    return n;
  }
  const s = field(h, at, len).toString('latin1').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Refused('a header has a damaged number (is this a tar archive?)');
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const want = number(h, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const sp = data.indexOf(0x20, pos);
    const len = sp === -1 ? NaN : Number(data.subarray(pos, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new Refused('a pax header is damaged');
    }
    const record = data.subarray(sp + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw new Refused('a pax header is damaged');
    out.set(record.subarray(0, eq).toString('utf8'), text(record.subarray(eq + 1), 'pax value'));
    pos += len;
  }
  return out;
}

/**
 * Reads the tar.gz `file` and calls onEntry for every member in order, with its body (files only; what is not read
 * is skipped). Throws Refused on anything it does not accept.
 */
async function readTar(
  file: string,
  signal: AbortSignal,
  onEntry: (e: Entry, body: AsyncIterable<Buffer>) => Promise<void>,
): Promise<void> {
  const gunzip = pipeline(createReadStream(file), createGunzip(), () => {});
  const r = new Reader(gunzip);
  try {
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax = new Map<string, string>();
    for (;;) {
      signal.throwIfAborted();
      const h = await r.exactly(BLOCK);
      if (!h || h.every((b) => b === 0)) break; // end of archive (GNU tar also accepts a missing end)
      if (!checksumOk(h)) throw new Refused('a header has a wrong checksum (is this a tar archive?)');
      const flag = String.fromCharCode(h[156]!);
      const ustar = h.subarray(257, 263).toString('latin1') === 'ustar\0';
      let size = number(h, 124, 12);
      if (pax.has('size')) size = Number(pax.get('size'));
      if (!Number.isSafeInteger(size) || size < 0) throw new Refused('an entry has an invalid size');
      const padded = Math.ceil(size / BLOCK) * BLOCK;

      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (size > META_LIMIT) throw new Refused('an extended header is too large');
        const data = (await r.exactly(padded)) ?? Buffer.alloc(0);
        if (data.length < padded) throw new Refused('the archive is truncated');
        const body = data.subarray(0, size);
        if (flag === 'x') pax = paxRecords(body);
        else if (flag === 'L') longName = text(field(body, 0, body.length), 'long name');
        else if (flag === 'K') longLink = text(field(body, 0, body.length), 'long link name');
        // 'g' (pax global header): nothing in it matters here
        continue;
      }

      let raw = longName ?? pax.get('path') ?? text(field(h, 0, 100), 'name');
      if (longName === undefined && !pax.has('path') && ustar) {
        const prefix = text(field(h, 345, 155), 'name');
        if (prefix) raw = `${prefix}/${raw}`;
      }
      const rawLink = longLink ?? pax.get('linkpath') ?? text(field(h, 157, 100), 'link name');
      if ([...pax.keys()].some((k) => k.startsWith('GNU.sparse'))) throw new Refused(`the entry ${JSON.stringify(raw)} is a sparse file, which Glow does not unpack`);
      const mode = number(h, 100, 8);
      longName = longLink = undefined;
      pax = new Map();

      let type: EntryType;
      let target = '';
      switch (flag) {
        case '0': case '\0': case '7':
          type = raw.endsWith('/') ? 'dir' : 'file'; // a V7 directory is a "file" whose name ends in /
          break;
        case '5':
          type = 'dir';
          break;
        case '2':
          type = 'symlink';
          target = rawLink;
          break;
        case '1':
          type = 'hardlink';
          target = entryPath(rawLink, `the hard link ${JSON.stringify(raw)} → ${JSON.stringify(rawLink)}`);
          break;
        default: {
          const what: Record<string, string> = { '3': 'a character device', '4': 'a block device', '6': 'a fifo', S: 'a sparse file', M: 'a multi-volume continuation', V: 'a volume label', D: 'a GNU dump directory' };
          throw new Refused(`the entry ${JSON.stringify(raw)} is ${what[flag] ?? `of unknown type ${JSON.stringify(flag)}`}, which Glow does not unpack`);
        }
      }
      const entry: Entry = { path: entryPath(raw), type, target, executable: (mode & 0o111) !== 0, size: type === 'file' ? size : 0 };

      let left = entry.size;
      async function* body(): AsyncGenerator<Buffer> {
        while (left > 0) {
          const c = await r.some(Math.min(left, 1 << 20));
          if (!c) throw new Refused('the archive is truncated');
          left -= c.length;
          yield c;
        }
      }
      await onEntry(entry, body());
      // Skip what onEntry did not read (and the data of links and directories, normally none).
      await r.skip(left + (padded - entry.size));
    }
  } finally {
    await r.close().catch(() => {});
    gunzip.destroy();
  }
}

async function unpack(tarball: string, root: string, signal: AbortSignal, opts: EnsureArtifactOptions, where: string): Promise<void> {
  try {
    // First pass: list and check everything, so that one bad entry refuses the whole artifact.
    const entries: Entry[] = [];
    await readTar(tarball, signal, async (e) => {
      entries.push(e);
    });
    checkEntries(entries);
    await checkSpace(root, entries.reduce((n, e) => n + e.size, 0));
    // Second pass: write exactly the entries that were checked.
    await mkdir(root, { mode: 0o700 });
    const w = await Writer.create(root);
    let i = 0;
    try {
      await readTar(tarball, signal, async (e, body) => {
        const listed = entries[i++];
        if (!listed || listed.path !== e.path || listed.type !== e.type || listed.target !== e.target) {
          throw new Refused('the archive changed while it was unpacked');
        }
        await w.entry(e, body);
      });
      await w.drain();
    } catch (e) {
      await w.settle(); // nothing may still be writing when the temporary is removed
      throw e;
    }
    if (i !== entries.length) throw new Refused('the archive changed while it was unpacked');
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    if (e instanceof GlowError) throw e;
    const why = e instanceof Refused ? e.message : zlibReason(e) ?? reason(e);
    throw new GlowError('GLOW_E_ARTIFACT_UNPACK', `artifact ${label(opts)} from ${where} cannot be unpacked: ${why}; nothing was installed`, { cause: e });
  }
}

/** Refuses an artifact that would not fit: better than filling the disk the instances and the journal write to. */
async function checkSpace(root: string, bytes: number): Promise<void> {
  const fs = await statfs(dirname(root));
  const free = fs.bavail * fs.bsize;
  if (bytes > free) {
    throw new Refused(`it holds ${bytes} bytes of files and only ${free} bytes are free in ${dirname(dirname(dirname(root)))}`);
  }
}

/**
 * Writes the entries of an artifact under root, in archive order. Small files are written (and fsynced) a few at a
 * time, because an artifact of thousands of small files otherwise waits for thousands of fsyncs one after the
 * other; large files are streamed one at a time. Files are created with O_EXCL, which never follows a link.
 */
class Writer {
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

  static async create(root: string): Promise<Writer> {
    const probe = join(root, '.glow-umask-probe');
    const fh = await open(probe, 'wx', 0o755);
    try {
      return new Writer(root, ((await fh.stat()).mode & 0o777) !== 0o755);
    } finally {
      await fh.close();
      await rm(probe);
    }
  }

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
        if (source !== undefined) return this.start(() => copyDurably(source, path, mode));
        if (e.size <= SMALL_FILE && body) {
          const chunks: Buffer[] = [];
          for await (const c of body) chunks.push(c);
          return this.start(() => writeDurably(path, Buffer.concat(chunks), mode, this.chmod));
        }
        return writeDurably(path, body ?? [], mode, this.chmod);
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

const SMALL_FILE = 256 * 1024;
const PARALLEL_WRITES = 8;

/** Creates path (which must not exist) with content, mode as given whatever the umask, fsynced. */
async function writeDurably(path: string, content: string | Buffer | AsyncIterable<Buffer> | Buffer[], mode = 0o644, chmod = true): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    if (typeof content === 'string') await writeAll(fh, Buffer.from(content, 'utf8'));
    else if (Buffer.isBuffer(content)) await writeAll(fh, content);
    else for await (const chunk of content) await writeAll(fh, chunk);
    if (chmod) await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function copyDurably(from: string, path: string, mode: number): Promise<void> {
  await copyFile(from, path, fsConstants.COPYFILE_EXCL);
  const fh = await open(path, 'r+');
  try {
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Copies an unpacked directory of a directory source, with the same checks as an archive. */
async function copyTree(from: string, root: string, signal: AbortSignal, opts: EnsureArtifactOptions): Promise<void> {
  const entries: (Entry & { source: string })[] = [];
  try {
    const walk = async (dir: string, rel: string): Promise<void> => {
      for (const name of (await readdir(dir)).sort()) {
        signal.throwIfAborted();
        const source = join(dir, name);
        const path = rel ? `${rel}/${name}` : name;
        const st = await lstat(source);
        if (st.isDirectory()) {
          entries.push({ path, type: 'dir', target: '', executable: true, size: 0, source });
          await walk(source, path);
        } else if (st.isFile()) {
          entries.push({ path, type: 'file', target: '', executable: (st.mode & 0o111) !== 0, size: st.size, source });
        } else if (st.isSymbolicLink()) {
          entries.push({ path, type: 'symlink', target: await readlink(source), executable: false, size: 0, source });
        } else {
          throw new Refused(`${source} is neither a file, a directory nor a symbolic link`);
        }
      }
    };
    await walk(from, '');
    checkEntries(entries);
    await checkSpace(root, entries.reduce((n, e) => n + e.size, 0));
    await mkdir(root, { mode: 0o700 });
    const w = await Writer.create(root);
    try {
      for (const e of entries) {
        signal.throwIfAborted();
        await w.entry(e, null, e.type === 'file' ? e.source : undefined);
      }
      await w.drain();
    } catch (e) {
      await w.settle();
      throw e;
    }
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    if (e instanceof GlowError) throw e;
    if (e instanceof Refused) {
      throw new GlowError('GLOW_E_ARTIFACT_UNPACK', `artifact ${label(opts)} from ${from} cannot be copied: ${e.message}; nothing was installed`);
    }
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not copy artifact ${label(opts)} from ${from}: ${reason(e)}`, { cause: e });
  }
}

/** Every directory of the tree 0755 and fsynced, deepest first (files were fsynced when written). */
async function finishTree(root: string): Promise<void> {
  for (const ent of await readdir(root, { withFileTypes: true })) {
    if (ent.isDirectory()) await finishTree(join(root, ent.name));
  }
  await chmod(root, 0o755);
  await syncDir(root);
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

function label(opts: { image: string; version: string }): string {
  return `${opts.image} ${opts.version}`;
}

/** A URL fit for a log: no user name or password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.href;
  } catch {
    return url;
  }
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

function isFsError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && 'syscall' in e;
}

/** Why something failed, in a few words: the innermost cause of a fetch error ("connect ECONNREFUSED …"). */
function reason(e: unknown): string {
  let cur: unknown = e;
  while (typeof cur === 'object' && cur !== null && 'cause' in cur && cur.cause instanceof Error) cur = cur.cause;
  // Connecting to several addresses fails with an AggregateError whose own message is empty.
  if (cur instanceof AggregateError && !cur.message && cur.errors[0] instanceof Error) cur = cur.errors[0];
  if (cur instanceof Error) return cur.message || errno(cur) || cur.name;
  return String(cur);
}

function zlibReason(e: unknown): string | undefined {
  const code = errno(e);
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || code === 'ERR_ZLIB_INITIALIZATION_FAILED') {
    return `not a gzip stream, or a damaged one (${(e as Error).message})`;
  }
  return undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function mkdirReadable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  // mkdir's mode is masked by the umask: make every directory it created traversable by the instances' users.
  for (let d = dir; d.length >= first.length; d = dirname(d)) {
    await chmod(d, 0o755);
    if (d === first) break;
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
