/** Small questions to the file system that the artifact store asks. */
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Whether `path` is a directory (following links); false when it cannot be stat-ed. */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Whether `path` exists (following links). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** mkdir -p, every directory it creates 0755 whatever the umask: the instances' users must traverse them. */
export async function mkdirReadable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  for (let d = dir; d.length >= first.length; d = dirname(d)) {
    await chmod(d, 0o755);
    if (d === first) break;
  }
}
