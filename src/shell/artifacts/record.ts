/**
 * The record of an installed artifact, `<stateDir>/artifacts/.meta/<image>/<version>.json` (image, source,
 * sha256): it lets a later call notice, without network, a changed `digest` for the same version, or two images
 * that map to the same directory. The record is written before the directory is renamed into place, so a
 * directory that exists always has its record.
 */
import { readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GlowError } from '../../base/errors.js';
import { createFileDurable, fsyncDir } from '../../fs/atomic.js';
import { mkdirReadable } from './fs-probe.js';
import { label } from './names.js';

export const META = '.meta';

export interface ArtifactRecord {
  image: string;
  version: string;
  /** Where it came from: a URL (without credentials) or a path. */
  source: string;
  /** `sha256:<hex>` of the tarball, or null for an unpacked directory. */
  sha256: string | null;
}

/** The record's path; `dir` is `<storeDir>/<sanitised image>/<version>`. */
export function metaPath(storeDir: string, dir: string): string {
  return join(storeDir, META, `${dir.slice(storeDir.length + 1)}.json`);
}

/** Writes the record durably: in the temporary directory `tmp` first, then renamed into `.meta/`. */
export async function writeRecord(storeDir: string, dir: string, tmp: string, record: ArtifactRecord): Promise<void> {
  const path = metaPath(storeDir, dir);
  const staged = join(tmp, 'record.json');
  await createFileDurable(staged, `${JSON.stringify(record, null, 2)}\n`);
  await mkdirReadable(dirname(path));
  await rename(staged, path);
  await fsyncDir(dirname(path));
}

/** An artifact that is already there: its record against what is asked (no network). */
export async function checkInstalled(storeDir: string, dir: string, want: { image: string; version: string; digest?: string | undefined }): Promise<void> {
  let record: Partial<ArtifactRecord>;
  try {
    record = JSON.parse(await readFile(metaPath(storeDir, dir), 'utf8')) as Partial<ArtifactRecord>;
  } catch {
    return; // no record (put there by hand): nothing to compare
  }
  if (typeof record.image === 'string' && record.image !== want.image) throw collision(dir, record.image, want.image);
  if (want.digest !== undefined) {
    if (record.sha256 === null) {
      throw new GlowError(
        'GLOW_E_ARTIFACT_DIGEST',
        `artifact ${label(want)} has a digest, but ${dir} was copied from an unpacked directory (${record.source ?? '?'}) whose digest cannot be checked: remove ${dir} to fetch it again`,
      );
    }
    if (typeof record.sha256 === 'string' && record.sha256 !== want.digest) {
      throw new GlowError(
        'GLOW_E_ARTIFACT_DIGEST',
        `artifact ${label(want)} is already unpacked in ${dir} from a tarball with digest ${record.sha256}, but the app now expects ${want.digest}: a version is never fetched twice, so publish the new build as a new version (or remove ${dir})`,
      );
    }
  }
}

/** Two images whose names map to one directory (`acme/worker` and `acme_worker`). */
export function collision(dir: string, theirs: string, ours: string): GlowError {
  return new GlowError(
    'GLOW_E_ARTIFACT_NAME',
    `the images ${JSON.stringify(theirs)} and ${JSON.stringify(ours)} share the artifact directory ${dir} (characters other than letters, digits, ".", "_" and "-" become "_"): rename one of them`,
  );
}
