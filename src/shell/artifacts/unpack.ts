/**
 * Unpacking a tarball into a new directory, all or nothing. The archive is read twice: once to list every entry
 * and check the whole list (src/shell/artifacts/entries.ts) and its size (src/shell/artifacts/limits.ts) — one bad
 * entry refuses the artifact before anything is written — then once to write exactly the entries that were
 * checked. The digest was checked before either (src/shell/artifacts/install.ts).
 */
import { dirname } from 'node:path';
import { GlowError } from '../../base/errors.js';
import type { Entry } from './entries.js';
import { checkEntries, Refused } from './entries.js';
import { reason, zlibReason } from './failure-reason.js';
import type { UnpackLimits } from './limits.js';
import { Budget, DEFAULT_LIMITS } from './limits.js';
import { readTar } from './tar-reader.js';
import { writeTree } from './tree-writer.js';

export interface UnpackContext {
  /** `image version`. */
  label: string;
  /** Where the tarball came from (a URL or a path), for messages. */
  where: string;
  /** How messages name the store's file system (the state directory). */
  store: string;
}

/** Unpacks the tar.gz `tarball` into `root` (which must not exist; its parent must). Throws GLOW_E_ARTIFACT_UNPACK. */
export async function unpackTarball(tarball: string, root: string, signal: AbortSignal, ctx: UnpackContext, limits: UnpackLimits = DEFAULT_LIMITS): Promise<void> {
  try {
    // First pass: list and check everything.
    const budget = await Budget.of(dirname(root), ctx.store, limits);
    const entries: Entry[] = [];
    await readTar(tarball, signal, async (e) => {
      budget.add(e);
      entries.push(e);
    });
    checkEntries(entries);
    // Second pass: write exactly the entries that were checked.
    let i = 0;
    await writeTree(root, (w) =>
      readTar(tarball, signal, async (e, body) => {
        const listed = entries[i++];
        if (!listed || listed.path !== e.path || listed.type !== e.type || listed.target !== e.target || listed.size !== e.size) {
          throw new Refused('the archive changed while it was unpacked');
        }
        await w.entry(e, body);
      }),
    );
    if (i !== entries.length) throw new Refused('the archive changed while it was unpacked');
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    const why = e instanceof Refused ? e.message : e instanceof GlowError ? null : zlibReason(e) ?? tarReason(e) ?? reason(e);
    if (why === null) throw e;
    throw new GlowError('GLOW_E_ARTIFACT_UNPACK', `artifact ${ctx.label} from ${ctx.where} cannot be unpacked: ${why}; nothing was installed`, { cause: e });
  }
}

/** The tar parser's errors (strict mode), said in Glow's words. */
function tarReason(e: unknown): string | undefined {
  const tarCode = typeof e === 'object' && e !== null && 'tarCode' in e ? String(e.tarCode) : undefined;
  if (tarCode === undefined) return undefined;
  const message = e instanceof Error ? e.message.replace(/^TAR_[A-Z_]+: /, '') : String(e);
  if (/checksum/i.test(message)) return 'a header has a wrong checksum (is this a tar archive?)';
  if (/truncated/i.test(message)) return `the archive is truncated (${message})`;
  if (/unrecognized archive format/i.test(message)) return 'not a tar archive inside the gzip stream';
  if (/decompression ratio/i.test(message)) return `it inflates to more than 1000 times its size (${message})`;
  return `a damaged or unsupported archive (${message})`;
}
