/**
 * The .deb of this tree, built by `npm run package` (packaging/build-deb.sh) once per tree and version: the
 * build is cached in /var/cache/glow-test/debs/ (GLOW_TEST_CACHE) under a hash of its inputs (the tracked files
 * of INPUTS as they are in the work tree, as build-deb.sh exports them) and the version, so the test files
 * share one build, and a CI run on an unchanged tree reuses the last one. The last 6 builds are kept.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './machine.js';

const CACHE = join(process.env.GLOW_TEST_CACHE ?? '/var/cache/glow-test', 'debs');

/** What the package is built from (packaging/build-deb.sh's export; the tests are not in the package). */
const INPUTS = ['src', 'native', 'binding.gyp', 'packaging', 'units', 'docs', 'README.md', 'CHANGELOG.md', 'package.json', 'package-lock.json', 'tsconfig.json'];

/** The package's architecture: this host's (it carries the proxy's native relay, compiled when it is built). */
export const debArch = (): string => execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();

/** The package's file name: glow_<version>_<arch>.deb. */
export const debName = (version = baseVersion()): string => `glow_${version}_${debArch()}.deb`;

/** A hash of the package's inputs as build-deb.sh would export them now. */
export function exportTree(): string {
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=glow', '-c', 'user.email=glow@localhost', ...args], { cwd: ROOT, encoding: 'utf8' }).trim();
  const commit = git('stash', 'create') || 'HEAD';
  return createHash('sha256').update(git('ls-tree', '-r', commit, '--', ...INPUTS)).digest('hex');
}

export const baseVersion = (): string => (JSON.parse(execFileSync('node', ['-p', 'JSON.stringify(require("./package.json").version)'], { cwd: ROOT, encoding: 'utf8' })) as string).replace(/-/g, '~');

/** The path of glow_<version>_<arch>.deb built from this tree; builds it when the cache has none. */
export function buildDeb(version = baseVersion()): string {
  const dir = join(CACHE, `${exportTree().slice(0, 16)}-${version}`);
  const deb = join(dir, debName(version));
  if (existsSync(deb)) return deb;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const out = execFileSync('npm', ['run', '--silent', 'package', '--', '--version', version, '--out', tmp], { cwd: ROOT, encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'inherit'] });
  const built = out.trim().split('\n').pop()!;
  if (built !== join(tmp, debName(version))) throw new Error(`npm run package printed ${built} last`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  // Keep the newest six builds.
  const builds = readdirSync(CACHE)
    .filter((d) => !d.includes('.tmp-'))
    .map((d) => ({ d, t: statSync(join(CACHE, d)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { d } of builds.slice(6)) rmSync(join(CACHE, d), { recursive: true, force: true });
  return deb;
}
