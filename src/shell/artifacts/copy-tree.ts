/**
 * Copying the unpacked `<image>/<version>/` of a directory source (developer boxes), with the same checks and
 * modes as an archive: the directory is listed, the list checked (src/shell/artifacts/entries.ts) and bounded
 * (src/shell/artifacts/limits.ts), then copied.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GlowError } from '../../base/errors.js';
import type { Entry } from './entries.js';
import { checkEntries, Refused } from './entries.js';
import { reason } from './failure-reason.js';
import type { UnpackLimits } from './limits.js';
import { Budget, DEFAULT_LIMITS } from './limits.js';
import { writeTree } from './tree-writer.js';

/** Copies the directory `from` into `root` (which must not exist). Throws GLOW_E_ARTIFACT_UNPACK or _FETCH. */
export async function copyTree(from: string, root: string, signal: AbortSignal, ctx: { label: string; store: string }, limits: UnpackLimits = DEFAULT_LIMITS): Promise<void> {
  const entries: (Entry & { source: string })[] = [];
  try {
    const budget = await Budget.of(dirname(root), ctx.store, limits);
    const add = (e: Entry & { source: string }) => {
      budget.add(e);
      entries.push(e);
    };
    const walk = async (dir: string, rel: string): Promise<void> => {
      for (const name of (await readdir(dir)).sort()) {
        signal.throwIfAborted();
        const source = join(dir, name);
        const path = rel ? `${rel}/${name}` : name;
        const st = await lstat(source);
        if (st.isDirectory()) {
          add({ path, type: 'dir', target: '', executable: true, size: 0, source });
          await walk(source, path);
        } else if (st.isFile()) {
          add({ path, type: 'file', target: '', executable: (st.mode & 0o111) !== 0, size: st.size, source });
        } else if (st.isSymbolicLink()) {
          add({ path, type: 'symlink', target: await readlink(source), executable: false, size: 0, source });
        } else {
          throw new Refused(`${source} is neither a file, a directory nor a symbolic link`);
        }
      }
    };
    await walk(from, '');
    checkEntries(entries);
    await writeTree(root, async (w) => {
      for (const e of entries) {
        signal.throwIfAborted();
        await w.entry(e, null, e.type === 'file' ? e.source : undefined);
      }
    });
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    if (e instanceof Refused) {
      throw new GlowError('GLOW_E_ARTIFACT_UNPACK', `artifact ${ctx.label} from ${from} cannot be copied: ${e.message}; nothing was installed`);
    }
    if (e instanceof GlowError) throw e;
    throw new GlowError('GLOW_E_ARTIFACT_FETCH', `could not copy artifact ${ctx.label} from ${from}: ${reason(e)}`, { cause: e });
  }
}
