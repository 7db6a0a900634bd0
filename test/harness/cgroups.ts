/**
 * The nodes' cgroups. Every node gets `<mount><own>/glow/<run>/<node>` in every mounted hierarchy (cgroup v1
 * controllers, name=systemd, and the cgroup2 of a hybrid or unified host), where `<own>` is the test process's
 * own cgroup in that hierarchy: on a plain host that is `/`, in a sandbox that confines the test process (here:
 * the memory controller) the nodes stay inside the same limits. Nothing is created at a hierarchy's root or
 * beside the `glow` directory.
 */
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from './errors.js';
import { sleep } from './proc.js';

export interface Hierarchy {
  /** where the hierarchy is mounted, e.g. /sys/fs/cgroup/cpuset */
  mount: string;
  /** controllers (v1), `name=systemd`, or empty for cgroup2 */
  controllers: string[];
  version: 1 | 2;
  /** the test process's own cgroup directory in this hierarchy */
  own: string;
}

/** The mounted cgroup hierarchies and this process's place in each (from /proc/self/mountinfo and cgroup). */
export function hierarchies(): Hierarchy[] {
  const membership = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const first = l.indexOf(':');
      const second = l.indexOf(':', first + 1);
      return { controllers: l.slice(first + 1, second), path: l.slice(second + 1) };
    });
  const result: Hierarchy[] = [];
  const seen = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const pre = line.slice(0, dash).split(' ');
    const post = line.slice(dash + 3).split(' ');
    const fstype = post[0];
    const superOptions = post[2] ?? '';
    const device = pre[2];
    const root = unescapeMount(pre[3] ?? '/');
    const mount = unescapeMount(pre[4] ?? '');
    if ((fstype !== 'cgroup' && fstype !== 'cgroup2') || device === undefined || seen.has(device)) continue;
    seen.add(device);
    const version = fstype === 'cgroup2' ? 2 : 1;
    const controllers =
      version === 2
        ? []
        : superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro' && !o.startsWith('release_agent') && o !== 'clone_children' && o !== 'noprefix' && o !== 'xattr' && o !== 'cpuset_v2_mode');
    const key = [...controllers].sort().join(',');
    const entry = membership.find((m) =>
      version === 2 ? m.controllers === '' : [...m.controllers.split(',')].sort().join(',') === key,
    );
    if (entry === undefined) continue;
    // the mount may show only a subtree (a cgroup namespace, a bind): own path relative to the mount's root
    const rel = root === '/' ? entry.path : entry.path.startsWith(root) ? entry.path.slice(root.length) : undefined;
    if (rel === undefined) continue;
    result.push({ mount, controllers, version, own: join(mount, rel) });
  }
  if (result.length === 0) {
    throw new HarnessError('HARNESS_PREREQUISITE', 'no cgroup hierarchy is mounted (see /proc/self/mountinfo)');
  }
  return result;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Creates `<own>/glow/<run>/<node>` in every hierarchy and returns the node directories (one per hierarchy) and
 * the run directories. In a v1 cpuset hierarchy a new cgroup has no CPUs until told: copy `cpuset.cpus` and
 * `cpuset.mems` down each level.
 */
export async function createNodeCgroups(run: string, node: string): Promise<{ nodeDirs: string[]; runDirs: string[] }> {
  const nodeDirs: string[] = [];
  const runDirs: string[] = [];
  for (const h of hierarchies()) {
    const levels = [join(h.own, 'glow'), join(h.own, 'glow', run), join(h.own, 'glow', run, node)];
    let parent = h.own;
    for (const dir of levels) {
      // another test process may remove an empty `glow` between our mkdirs: retry a few times
      for (let attempt = 0; ; attempt++) {
        try {
          await mkdir(dir);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') break;
          if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) {
            await mkdir(parent).catch(() => undefined);
            continue;
          }
          throw new HarnessError('HARNESS_PREREQUISITE', `cannot create cgroup ${dir}: ${String(e)}`, { cause: e });
        }
      }
      if (h.controllers.includes('cpuset')) {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) {
          const mine = (await readFile(join(dir, f), 'utf8')).trim();
          if (mine === '') await writeFile(join(dir, f), await readFile(join(parent, f), 'utf8'));
        }
      }
      parent = dir;
    }
    runDirs.push(levels[1] as string);
    nodeDirs.push(levels[2] as string);
  }
  return { nodeDirs, runDirs };
}

/**
 * Removes a cgroup directory and everything below it, deepest first. A cgroup whose last process has just been
 * killed stays busy for a moment: retry until `timeoutMs`. A directory that does not exist is fine.
 */
export async function removeCgroupTree(dir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await removeOnce(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (Date.now() > deadline) {
        const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '?');
        throw new HarnessError(
          'HARNESS_WAIT_TIMEOUT',
          `cannot remove cgroup ${dir} after ${timeoutMs} ms (${String(e)}); processes left: ${procs.trim() || 'none'}`,
          { cause: e },
        );
      }
      await sleep(25);
    }
  }
}

async function removeOnce(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) {
    if (e.isDirectory()) await removeOnce(join(dir, e.name));
  }
  await rmdir(dir);
}

/** Removes directories if they are empty cgroups; leaves them (silently) when another node still uses them. */
export async function removeIfEmpty(dirs: readonly string[]): Promise<void> {
  for (const d of dirs) {
    await rmdir(d).catch(() => undefined);
  }
}
