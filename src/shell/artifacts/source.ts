/**
 * Where an artifact comes from: glow.yaml `artifacts` is an http(s) URL base (the tarball is
 * `<base>/<image>/<version>.tar.gz`), or a directory — absolute, relative to the config repository, or a `file://`
 * URL — that holds `<image>/<version>.tar.gz` or, on developer boxes, an unpacked `<image>/<version>/`.
 */
import { redactUrl } from '../../base/redact.js';
import { stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GlowError } from '../../base/errors.js';
import { errorCode, reason } from './failure-reason.js';
import { isDirectory } from './fs-probe.js';
import { label } from './names.js';

export type Source = { kind: 'http'; url: string } | { kind: 'dir'; dir: string };

export interface SourceRequest {
  /** glow.yaml `artifacts`. */
  source: string;
  /** The config repository, against which a relative directory is resolved. */
  repoDir?: string | undefined;
  image: string;
  version: string;
}

/** The tarball's URL, or the directory to look in. */
export function parseSource(req: SourceRequest): Source {
  const s = req.source;
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
    const path = [...req.image.split('/'), `${req.version}.tar.gz`].map(encodeURIComponent).join('/');
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path}`;
    return { kind: 'http', url: url.href };
  }
  if (isAbsolute(s)) return { kind: 'dir', dir: s };
  if (req.repoDir === undefined) {
    throw new GlowError('GLOW_E_ARTIFACT_MISSING', `the artifact source ${JSON.stringify(s)} is a relative directory, and no config repository was given to resolve it against`);
  }
  return { kind: 'dir', dir: resolve(req.repoDir, s) };
}

/** The tarball of a directory source, or else its unpacked directory. */
export async function findInDirectory(dir: string, req: SourceRequest): Promise<{ kind: 'tarball' | 'tree'; path: string }> {
  const base = join(dir, ...req.image.split('/'));
  const tarball = join(base, `${req.version}.tar.gz`);
  const tree = join(base, req.version);
  for (const [kind, path] of [['tarball', tarball], ['tree', tree]] as const) {
    try {
      const st = await stat(path);
      if (kind === 'tarball' ? st.isFile() : st.isDirectory()) return { kind, path };
    } catch (e) {
      if (errorCode(e) !== 'ENOENT' && errorCode(e) !== 'ENOTDIR') {
        throw new GlowError('GLOW_E_ARTIFACT_FETCH', `artifact ${label(req)}: cannot read ${path}: ${reason(e)}`, { cause: e });
      }
    }
  }
  const where = (await isDirectory(dir)) ? '' : ` (the directory ${dir} does not exist)`;
  throw new GlowError('GLOW_E_ARTIFACT_MISSING', `artifact ${label(req)} is not in the artifact directory: neither ${tarball} nor ${tree}/ exists${where}`);
}

/** A URL fit for a log: no user name or password (the one redactor of src/base). */
export const redact = redactUrl;
