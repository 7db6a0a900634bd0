/**
 * How much an artifact may hold, checked entry by entry while the archive (or directory) is listed, before
 * anything is written: at most `maxEntries` entries, and no more bytes of files than the store's file system has
 * free. An entry whose declared size alone exceeds the free space is refused at its header, without reading its
 * (claimed) content: better than filling the disk the instances and the journal write to.
 */
import { statfs } from 'node:fs/promises';
import type { Entry } from './entries.js';
import { Refused } from './entries.js';

export interface UnpackLimits {
  /** Entries of any type (files, directories, links); default MAX_ENTRIES. */
  maxEntries: number;
}

/** Far above any real application (a node_modules tree has tens of thousands of files), far below memory trouble. */
export const MAX_ENTRIES = 1_000_000;

export const DEFAULT_LIMITS: UnpackLimits = { maxEntries: MAX_ENTRIES };

/** Counts the entries and bytes of a listing against the limits and the free space of `dir`'s file system. */
export class Budget {
  private entries = 0;
  private bytes = 0;
  private constructor(
    private readonly limits: UnpackLimits,
    private readonly free: number,
    private readonly where: string,
  ) {}

  /** `dir`: a directory on the file system the artifact is written to; `where`: how a message names it. */
  static async of(dir: string, where: string, limits: UnpackLimits = DEFAULT_LIMITS): Promise<Budget> {
    const fs = await statfs(dir);
    return new Budget(limits, fs.bavail * fs.bsize, where);
  }

  /** Takes one entry (as soon as its header is read) or refuses the artifact. */
  add(e: Pick<Entry, 'path' | 'size'>): void {
    if (++this.entries > this.limits.maxEntries) {
      throw new Refused(`it holds more than ${this.limits.maxEntries} entries`);
    }
    if (!Number.isSafeInteger(e.size) || e.size < 0) throw new Refused(`the entry ${JSON.stringify(e.path)} has an invalid size`);
    this.bytes += e.size;
    if (this.bytes > this.free) {
      throw new Refused(`it holds at least ${this.bytes} bytes of files (the entry ${JSON.stringify(e.path)} declares ${e.size}) and only ${this.free} bytes are free in ${this.where}`);
    }
  }
}
