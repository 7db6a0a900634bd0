/** What names an artifact: its image and version, checked so that they cannot lead out of the store. */
import { GlowError } from '../../base/errors.js';

const VERSION = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/; // as the app schema
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** `image version`, as every artifact message names the artifact. */
export function label(a: { image: string; version: string }): string {
  return `${a.image} ${a.version}`;
}

/** Refuses an image or version that is empty, has a `.`/`..` segment, or would be a hidden directory of the store. */
export function checkName(image: string, version: string): void {
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

/** Refuses a `digest` that is not `sha256:` and 64 lower-case hex digits. */
export function checkDigest(a: { image: string; version: string; digest?: string | undefined }): void {
  if (a.digest !== undefined && !DIGEST.test(a.digest)) {
    throw new GlowError('GLOW_E_ARTIFACT_DIGEST', `the digest ${JSON.stringify(a.digest)} of artifact ${label(a)} is not sha256: followed by 64 lower-case hex digits`);
  }
}
