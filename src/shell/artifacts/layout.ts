/**
 * The common mistake of a tarball's layout: packing the build directory itself (`web-1.0.0/bin/web`) instead of
 * its content (`bin/web`). The app's `command` is relative to the artifact's root, so the instance would fail to
 * start with ENOENT, again and again. Said instead, with the fix, before the artifact is installed (and for one
 * already installed).
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GlowError } from '../../base/errors.js';
import { exists } from './fs-probe.js';

export interface LayoutContext {
  /** `image version`. */
  label: string;
  version: string;
  /** The installed directory when the artifact is already there (the message then says how to replace it). */
  installed?: string | undefined;
}

/**
 * Throws GLOW_E_ARTIFACT_LAYOUT when the program of `command` is not found under `root` but is found under the
 * one top-level directory that `root` holds. Any other absence is left to the instance's own error.
 */
export async function checkLayout(root: string, command: readonly string[] | undefined, ctx: LayoutContext): Promise<void> {
  const program = command?.[0];
  if (!program || (await exists(join(root, program)))) return;
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  const top = names[0];
  if (names.length !== 1 || top === undefined || !(await lstat(join(root, top))).isDirectory()) return;
  if (!(await exists(join(root, top, program)))) return;
  const then = ctx.installed
    ? `; it is already unpacked in ${ctx.installed}: publish the repacked tarball as a new version (or remove ${ctx.installed} to fetch this one again)`
    : ', and publish it again; nothing was installed';
  throw new GlowError(
    'GLOW_E_ARTIFACT_LAYOUT',
    `artifact ${ctx.label}: the command ${program} is not at the root of the tarball but inside its one top-level directory ${top}/ (${join(top, program)}); command paths are relative to the tarball's root, so pack the directory's content, not the directory: tar -czf ${ctx.version}.tar.gz -C ${top} .${then}`,
  );
}
