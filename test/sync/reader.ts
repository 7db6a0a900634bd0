/**
 * A reader of the repository as glowd's loader reads it (a worker thread of test/sync/mixed.test.ts): readRepo()
 * (src/config/source.ts) resolves the link once, then reads every file under that one tree. In a tight loop until
 * told to stop (or its bound), it counts reads whose files do not all carry the same marker (mixed) and reads that
 * failed (no repository, a file missing or unreadable, a count of files other than expected).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readRepo } from '../../src/config/source.js';

export interface ReaderInput {
  readonly repo: string;
  readonly files: number;
  readonly maxMs: number;
  /** Int32Array over a SharedArrayBuffer: [0] != 0 means stop. */
  readonly stop: SharedArrayBuffer;
}

export interface ReaderResult {
  reads: number;
  mixed: number;
  failed: number;
  /** The distinct markers seen, in the order first seen. */
  markers: string[];
  examples: string[];
}

const input = workerData as ReaderInput;
const stop = new Int32Array(input.stop);
const out: ReaderResult = { reads: 0, mixed: 0, failed: 0, markers: [], examples: [] };
const deadline = Date.now() + input.maxMs;
const decoder = new TextDecoder();
while (Atomics.load(stop, 0) === 0 && Date.now() < deadline) {
  const src = readRepo(input.repo);
  out.reads++;
  const files = src.entries.filter((e) => e.kind === 'file');
  const broken = src.entries.filter((e) => e.kind !== 'file' && e.kind !== 'dir');
  if (!src.exists || broken.length > 0 || files.length !== input.files || files.some((f) => f.bytes === undefined)) {
    out.failed++;
    if (out.examples.length < 5) out.examples.push(`failed: exists ${src.exists}, ${files.length} files, ${broken.map((b) => `${b.path}: ${b.error ?? b.kind}`).join(', ')}`);
    continue;
  }
  const markers = new Set(files.map((f) => /marker: (\S*)/.exec(decoder.decode(f.bytes))?.[1] ?? ''));
  if (markers.size !== 1) {
    out.mixed++;
    if (out.examples.length < 5) out.examples.push(`mixed: ${[...markers].join(' ')}`);
    continue;
  }
  const m = [...markers][0]!;
  if (out.markers.at(-1) !== m && !out.markers.includes(m)) out.markers.push(m);
}
parentPort!.postMessage(out);
