/**
 * The exec runtime's artifacts, the entry point: `ensureArtifact()` makes sure that `<artifacts>/<image>/<version>`
 * (a `.tar.gz`, or an unpacked directory of a directory source) is unpacked once into
 * `<stateDir>/artifacts/<image with / as _>/<version>/` (artifactDir() of src/base/paths.ts), where the instances
 * run it from. Both runtimes' `ensure-artifact` step (src/systemd/runtime.ts, src/box/runtime.ts) and `glow dev`
 * (src/cli/dev.ts) call it.
 *
 * The parts, one concept each, in src/shell/artifacts/:
 * - store.ts: one store per state directory — fetches in progress shared by concurrent callers, temporaries;
 * - install.ts: fetch, digest, unpack, layout check, record, one atomic rename;
 * - source.ts, fetch.ts: http(s) and directory sources, downloaded or copied and hashed;
 * - tar-reader.ts (the `tar` package's parser), entries.ts (the rules every entry passes), limits.ts,
 *   unpack.ts, copy-tree.ts, tree-writer.ts: from an archive or a directory to a checked, durable tree;
 * - layout.ts: the tarball that holds its build directory instead of its content;
 * - record.ts: `.meta/<image>/<version>.json`; names.ts: image, version and digest.
 *
 * Once there, an artifact is never fetched or changed again: a version is immutable.
 */
import { GlowError } from '../../base/errors.js';
import type { Snapshot } from '../../config/model.js';
import type { EnsureArtifactOptions, EnsureArtifactResult } from './options.js';
import { storeFor } from './store.js';

export { DEFAULT_ARTIFACT_TIMEOUT_MS } from './fetch.js';

export type { EnsureArtifactOptions, EnsureArtifactResult } from './options.js';

/**
 * Makes sure the artifact `image` `version` is unpacked on this node and returns its directory. Throws a GlowError
 * with one of ARTIFACT_CODES (src/base/codes.ts), or the signal's reason when aborted.
 */
export function ensureArtifact(opts: EnsureArtifactOptions): Promise<EnsureArtifactResult> {
  return storeFor(opts.stateDir).ensure(opts);
}

/** The `ensure-artifact` step of a pass (either runtime): the artifact of `app` from glow.yaml's `artifacts`. */
export function ensureStepArtifact(
  snapshot: Snapshot,
  step: { readonly app: string; readonly image: string; readonly version: string; readonly digest?: string },
  where: { readonly stateDir: string; readonly repoDir: string },
): Promise<EnsureArtifactResult> {
  const source = snapshot.settings.artifacts;
  if (source === undefined) throw new GlowError('GLOW_E_ARTIFACT_SOURCE', `app \`${step.app}\` uses the exec runtime but glow.yaml names no \`artifacts\``);
  return ensureArtifact({
    stateDir: where.stateDir,
    source,
    repoDir: where.repoDir,
    image: step.image,
    version: step.version,
    command: snapshot.apps.get(step.app)?.command,
    ...(step.digest ? { digest: step.digest } : {}),
  });
}
