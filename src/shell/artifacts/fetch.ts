/**
 * Getting the tarball into the store's temporary directory, hashed on the way: downloaded from an http(s) source,
 * or copied from a directory source (so that what is checked against the digest is what is unpacked).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { GlowError } from '../../base/errors.js';
import { writeAll } from '../../fs/atomic.js';
import { isFsError, reason } from './failure-reason.js';
import { redact } from './source.js';

/** The bound on a download (connection, headers and body) when the caller gives none. */
export const DEFAULT_ARTIFACT_TIMEOUT_MS = 10 * 60_000;

/** Downloads url into file (which must not exist) and returns its `sha256:<hex>`. */
export async function download(url: string, file: string, signal: AbortSignal, timeoutMs: number, label: string): Promise<string> {
  const shown = redact(url);
  const timeout = AbortSignal.timeout(timeoutMs);
  const both = AbortSignal.any([signal, timeout]);
  const fail = (e: unknown): never => {
    if (signal.aborted) throw signal.reason;
    const why = timeout.aborted ? `no complete answer within ${timeoutMs} ms` : reason(e);
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not fetch artifact ${label} from ${shown}: ${why}`, { cause: e });
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
      `could not fetch artifact ${label} from ${shown}: the server answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${res.status === 404 ? ' (no such artifact)' : ''}`,
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
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not store artifact ${label} from ${shown} in ${file}: ${reason(e)}`, { cause: e });
  } finally {
    await fh.close();
  }
  const length = res.headers.get('content-length');
  if (length !== null && !res.headers.get('content-encoding') && Number(length) !== bytes) {
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not fetch artifact ${label} from ${shown}: got ${bytes} bytes of ${length}`);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Copies the tarball of a directory source into file, hashing what is copied, and returns its `sha256:<hex>`. */
export async function copyHashing(from: string, file: string, signal: AbortSignal, label: string): Promise<string> {
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
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not copy artifact ${label} from ${from}: ${reason(e)}`, { cause: e });
  } finally {
    await fh.close();
  }
  return `sha256:${hash.digest('hex')}`;
}
