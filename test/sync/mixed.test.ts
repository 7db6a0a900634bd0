/**
 * The guarantee of a switch: a reader that resolves the link once and then reads every file (as glowd's loader
 * does, test/sync/reader.ts) sees one revision or the next, never a mix, while `glow sync` publishes new commits
 * one after the other. Every commit writes the same marker into every file, so a read that mixes two revisions
 * shows two markers.
 *
 * A control first shows that the reader does catch a mix: the same files rewritten in place, the way a checkout in
 * place updates them.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { ReaderResult } from './reader.js';
import { commit, gitEnv, glow, sourceRepo, workDir } from './helpers.js';

const work = workDir('mixed');
after(() => rmSync(work, { recursive: true, force: true }));
const env = gitEnv(work);
const emptyEnv = join(work, 'empty.env');
writeFileSync(emptyEnv, '');

/** 40 files where the loader reads: glow.yaml, the kind directories, files/ (two levels). */
const PATHS = [
  'glow.yaml',
  ...Array.from({ length: 5 }, (_, i) => `nodes/node-${i}.yaml`),
  ...Array.from({ length: 12 }, (_, i) => `apps/app-${i}.yaml`),
  ...Array.from({ length: 12 }, (_, i) => `deployments/app-${i}-1.yaml`),
  ...Array.from({ length: 10 }, (_, i) => `files/app-${i}/conf/app.toml`),
];
const tree = (marker: string) => Object.fromEntries(PATHS.map((p) => [p, `# ${p}\nmarker: ${marker}\n${'padding '.repeat(64)}\n`]));

function startReader(repo: string, maxMs: number): { stop: () => Promise<ReaderResult> } {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('./reader.js', import.meta.url), { workerData: { repo, files: PATHS.length, maxMs, stop: flag } });
  const result = new Promise<ReaderResult>((resolvePromise, reject) => {
    worker.once('message', (m: ReaderResult) => resolvePromise(m));
    worker.once('error', reject);
  });
  return {
    stop: async () => {
      Atomics.store(new Int32Array(flag), 0, 1);
      const r = await result;
      await worker.terminate();
      return r;
    },
  };
}

describe('a reader during continuous glow sync runs', () => {
  test('control: rewriting the files in place, the reader sees mixed revisions', { timeout: 60_000 }, async (t) => {
    const dir = join(work, 'in-place');
    mkdirSync(dir);
    for (const [p, c] of Object.entries(tree('0'))) {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), c);
    }
    const reader = startReader(dir, 20_000);
    const until = Date.now() + 1500;
    let k = 0;
    while (Date.now() < until) {
      k++;
      for (const [p, c] of Object.entries(tree(String(k)))) writeFileSync(join(dir, p), c);
      await new Promise((r) => setImmediate(r));
    }
    const r = await reader.stop();
    t.diagnostic(`in place: ${k} rewrites, ${r.reads} reads, ${r.mixed} mixed, ${r.failed} failed`);
    assert.ok(r.mixed + r.failed > 0, `the reader must be able to see a mix: ${JSON.stringify(r)}`);
  });

  test('0 mixed and 0 failed reads while glow sync publishes commit after commit', { timeout: 120_000 }, async (t) => {
    const src = join(work, 'src');
    sourceRepo(env, src, tree('0'));
    const repo = join(work, 'node/repo');
    mkdirSync(join(work, 'node'));
    const flags = ['sync', '--source', `file://${src}`, '--repo', repo, '--sync-env', emptyEnv];
    const first = await glow(env, flags);
    assert.equal(first.status, 0, first.stderr);

    const reader = startReader(repo, 60_000);
    const started = Date.now();
    let published = 0;
    let k = 0;
    const failures: string[] = [];
    // At least 5 s and 4 publishes (a loaded machine starts processes slowly), at most 40 s.
    while ((Date.now() - started < 5000 || published < 4) && Date.now() - started < 40_000) {
      k++;
      commit(env, src, tree(String(k)), `marker ${k}`);
      const r = await glow(env, flags);
      if (r.status === 0 && /; published, was /.test(r.stdout)) published++;
      else failures.push(r.stdout + r.stderr);
    }
    const seconds = (Date.now() - started) / 1000;
    const r = await reader.stop();
    t.diagnostic(
      `${published} revisions published in ${seconds.toFixed(1)} s; the reader: ${r.reads} reads, ${r.mixed} mixed, ${r.failed} failed, ${r.markers.length} revisions seen`,
    );
    assert.deepEqual(failures, []);
    assert.ok(published >= 4, `at least 4 publishes (${published} in ${seconds.toFixed(1)} s)`);
    assert.equal(r.mixed, 0, r.examples.join('\n'));
    assert.equal(r.failed, 0, r.examples.join('\n'));
    assert.ok(r.reads > 100, `the reader kept reading (${r.reads})`);
    assert.ok(r.markers.length >= 3, `the reader saw the revisions change (${r.markers.join(' ')})`);
  });
});
