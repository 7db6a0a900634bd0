/**
 * Following a repository that `glow sync` switches (src/shell/repo-loop.ts, src/shell/pass.ts) with real chokidar
 * watchers and real links: a switch is followed within the debounce, not on the tick; edits of the new tree are
 * seen and edits of the old one are not; a link removed and made again, a directory replaced by a link (the
 * migration of operations.md) and in-place edits of a plain directory all lead to a pass. A pass reads one tree:
 * while another process switches the link as fast as it can, every snapshot is all of one revision, and the
 * status names the commit of the tree it was read from (its `.glow-sync.json`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Snapshot } from '../../src/config/model.js';
import { AgentMetrics } from '../../src/shell/metrics.js';
import { Pass } from '../../src/shell/pass.js';
import type { PassRuntime, Rejection, StepApp } from '../../src/shell/pass.js';
import { RepoLoop } from '../../src/shell/repo-loop.js';
import type { InstanceStatus } from '../../src/shell/status.js';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function base(): string {
  const root = mkdtempSync(join(tmpdir(), 'glow-follow-'));
  roots.push(root);
  return root;
}

function write(root: string, files: Record<string, string>): void {
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
}

/** A tree as glow sync publishes it: `revisions/<name>/` with its meta file. */
function tree(root: string, name: string, files: Record<string, string>, commit = name.padEnd(40, '0')): string {
  const dir = join(root, 'revisions', name);
  write(dir, { ...files, '.glow-sync.json': JSON.stringify({ version: 1, name, kind: 'git', source: 'git://x/y', ref: 'main', id: commit, publishedAt: new Date().toISOString() }) });
  return dir;
}

/** The link switched in one rename, as src/fs/atomic.ts symlinkAtomic does. */
function point(repo: string, target: string): void {
  const tmp = `${repo}.tmp-link`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, repo);
}

/** A loop whose passes are recorded with their reason and time. */
function loopOn(repo: string) {
  const passes: { reason: string; at: number }[] = [];
  const waiters: (() => void)[] = [];
  const loop = new RepoLoop({ repo, debounceMs: 50, tickMs: 600_000, onError: (e) => assert.fail(e as Error) }, async (reason) => {
    passes.push({ reason, at: Date.now() });
    waiters.splice(0).forEach((w) => w());
  });
  /** Resolves with the first pass after `since` (ms), or rejects after `ms`. */
  const next = (since: number, ms = 3000) =>
    new Promise<{ reason: string; at: number }>((resolve, reject) => {
      const check = () => {
        const p = passes.find((x) => x.at >= since);
        if (p) return resolve(p);
        if (Date.now() - since > ms) return reject(new Error(`no pass within ${ms} ms; passes: ${JSON.stringify(passes)}`));
        waiters.push(check);
        setTimeout(check, 50);
      };
      check();
    });
  return { loop, passes, next };
}

const settle = () => new Promise((r) => setTimeout(r, 300)); // chokidar's watchers are ready

describe('following a switched repository', { timeout: 60_000 }, () => {
  test('a switch is followed within the debounce; the new tree is watched, the old one no more', async (t) => {
    const root = base();
    const a = tree(root, 'r-a', { 'glow.yaml': 'a: 1\n' });
    const b = tree(root, 'r-b', { 'glow.yaml': 'b: 1\n' });
    const repo = join(root, 'repo');
    point(repo, 'revisions/r-a');
    const { loop, next } = loopOn(repo);
    await loop.start();
    await settle();
    try {
      assert.equal(loop.watching, a);
      let t0 = Date.now();
      point(repo, 'revisions/r-b');
      const p = await next(t0, 2000);
      t.diagnostic(`switch → pass: ${p.at - t0} ms (${p.reason})`);
      assert.equal(p.reason, 'switch');
      assert.equal(loop.watching, b);
      await settle();

      t0 = Date.now();
      write(b, { 'glow.yaml': 'b: 2\n' });
      const e = await next(t0, 2000);
      t.diagnostic(`edit of the new tree → pass: ${e.at - t0} ms`);

      await settle();
      t0 = Date.now();
      write(a, { 'glow.yaml': 'a: 2\n' });
      await assert.rejects(next(t0, 800), /no pass/, 'an edit of the old tree is not a change of the repository');

      // Removed, then made again: both are passes (the first one reads a missing repository).
      t0 = Date.now();
      rmSync(repo);
      await next(t0, 2000);
      assert.equal(loop.watching, '');
      await settle();
      t0 = Date.now();
      point(repo, 'revisions/r-a');
      await next(t0, 2000);
      assert.equal(loop.watching, a);
    } finally {
      await loop.stop();
    }
  });

  test('a plain directory: in-place edits as before; replaced by a link (migration), the link is followed', async () => {
    const root = base();
    const repo = join(root, 'repo');
    write(repo, { 'glow.yaml': 'x: 1\n' });
    const { loop, next } = loopOn(repo);
    await loop.start();
    await settle();
    try {
      assert.equal(loop.watching, repo);
      let t0 = Date.now();
      write(repo, { 'nodes/a.yaml': 'address: 10.0.0.1\n' });
      await next(t0, 2000);
      await settle();

      const b = tree(root, 'r-b', { 'glow.yaml': 'b: 1\n' });
      t0 = Date.now();
      renameSync(repo, `${repo}.old`);
      point(repo, 'revisions/r-b');
      await next(t0, 2000);
      assert.equal(loop.watching, b);
      await settle();
      t0 = Date.now();
      write(`${repo}.old`, { 'glow.yaml': 'x: 2\n' });
      await assert.rejects(next(t0, 800), /no pass/, 'the old directory is not followed');
    } finally {
      await loop.stop();
    }
  });
});

/** A runtime that records, for every pass, the versions of the apps it was given (all equal: one tree). */
class Recorder implements PassRuntime<string[], undefined, never> {
  readonly seen: string[][] = [];
  plan(snapshot: Snapshot) {
    const versions = [...snapshot.apps.values()].map((a) => a.version);
    this.seen.push(versions);
    return { plan: versions, conflicts: [] };
  }
  async observe() {
    return undefined;
  }
  diff(): never[] {
    return [];
  }
  appOf(): StepApp | undefined {
    return undefined;
  }
  async execute() {}
  unitOf() {
    return undefined;
  }
  instances(): InstanceStatus[] {
    return [];
  }
  rejected(r: Rejection) {
    assert.fail(`rejected: ${r.errors.map((e) => e.message).join('; ')}`);
  }
  stepFailed() {}
}

const APPS = 40;
function revisionFiles(version: string): Record<string, string> {
  const files: Record<string, string> = { 'nodes/node-a.yaml': 'address: 10.0.0.1\n' };
  for (let i = 0; i < APPS; i++) files[`apps/app${i}.yaml`] = `image: app${i}\nversion: "${version}"\n`;
  return files;
}

describe('a pass reads one tree', { timeout: 60_000 }, () => {
  test('while the link is switched again and again, every pass sees one revision, and status names its commit', async (t) => {
    const root = base();
    tree(root, 'r-one', revisionFiles('one'), '1'.repeat(40));
    tree(root, 'r-two', revisionFiles('two'), '2'.repeat(40));
    const repo = join(root, 'repo');
    point(repo, 'revisions/r-one');
    const rt = new Recorder();
    const pass = new Pass({ repo, debounceMs: 10, tickMs: 600_000, onError: (e) => assert.fail(e as Error) }, rt, new AgentMetrics('node-a'));

    await pass.run('start');
    const st = pass.status({ node: 'node-a', proxy: undefined, sinks: [] });
    assert.deepEqual(st.appliedFrom, { path: join(root, 'revisions/r-one'), syncRevision: 'r-one', commit: '1'.repeat(40), publishedAt: st.appliedFrom?.publishedAt });

    // Another process switches the link back and forth for as long as the passes run.
    const flipper = spawn(process.execPath, ['-e', `
      const fs = require('fs');
      const repo = ${JSON.stringify(repo)};
      const end = Date.now() + 20000;
      let n = 0;
      while (Date.now() < end) {
        fs.symlinkSync(n % 2 ? 'revisions/r-one' : 'revisions/r-two', repo + '.tmp');
        fs.renameSync(repo + '.tmp', repo);
        n++;
      }
    `], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 40; i++) await pass.run('tick');
    } finally {
      flipper.kill('SIGKILL');
      await new Promise((r) => flipper.once('close', r));
    }
    const mixed = rt.seen.filter((v) => new Set(v).size !== 1);
    const kinds = new Set(rt.seen.map((v) => v[0]));
    t.diagnostic(`${rt.seen.length} passes, revisions seen: ${[...kinds].join(', ')}, mixed: ${mixed.length}`);
    assert.equal(mixed.length, 0, `passes that read two revisions: ${JSON.stringify(mixed.slice(0, 3))}`);
    const last = pass.status({ node: 'node-a', proxy: undefined, sinks: [] });
    const version = rt.seen.at(-1)![0]!;
    assert.equal(last.appliedFrom?.commit, version === 'one' ? '1'.repeat(40) : '2'.repeat(40), 'the commit is the tree the revision was read from');
    await pass.stop();
  });
});
