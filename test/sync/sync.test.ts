/**
 * `glow sync` as a node runs it: the real binary, real git (file:// and a `git daemon` on 127.0.0.1), real
 * directories, real ssh signatures (ssh-keygen), real SIGKILLs. Each test has its own repository link, so its own
 * revisions, lock and state; every child and daemon is bounded and stopped.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readSyncState } from '../../src/sync/state.js';
import { commit, git, gitDaemon, gitEnv, glow, glowHeld, linkOf, readIn, sourceRepo, workDir, writeTree } from './helpers.js';

const T = { timeout: 120_000 };
const work = workDir('cli');
after(() => rmSync(work, { recursive: true, force: true }));
const env = gitEnv(work);
const noEnvFile = join(work, 'empty.env');
writeFileSync(noEnvFile, '');

let n = 0;
/** A fresh node: its repository link's directory, and the flags that point glow sync there. */
function node() {
  const base = join(work, `node-${++n}`);
  mkdirSync(base);
  const repo = join(base, 'repo');
  return { base, repo, revisions: join(base, 'revisions'), state: join(base, 'sync/state.json'), flags: ['--repo', repo, '--sync-env', noEnvFile] };
}
const sync = (flags: string[], ...more: string[]) => glow(env, ['sync', ...flags, ...more]);
const CURRENT = /^current: (r-\d{8}-\d{6}-\d{6}-[0-9a-f]{12}) \((commit [0-9a-f]{40}|content sha256:[0-9a-f]{64}); ([^)]*)\)\n$/;
const revs = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

describe('glow sync from git', () => {
  const src = join(work, 'src.git-work');
  const first = sourceRepo(env, src, { 'glow.yaml': 'name: one\n', 'nodes/n1.yaml': 'marker: 1\n', 'files/web/a.txt': 'a1\n' });
  const url = `file://${src}`;

  test('publishes the commit as a revision beside the link; nothing new is exit 0 and changes nothing', T, async () => {
    const nd = node();
    const r1 = await sync(nd.flags, '--source', url);
    assert.equal(r1.status, 0, r1.stderr);
    const m = CURRENT.exec(r1.stdout);
    assert.ok(m, r1.stdout);
    assert.equal(m[2], `commit ${first}`);
    assert.match(m[3]!, /^published, the first$/);
    assert.ok(m[1]!.endsWith(first.slice(0, 12)));
    // The link is relative, to a complete tree of its own; the tree is the commit's.
    assert.ok(lstatSync(nd.repo).isSymbolicLink());
    assert.equal(linkOf(nd.repo), `revisions/${m[1]}`);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: 1\n');
    assert.equal(readIn(nd.repo, 'files/web/a.txt'), 'a1\n');
    const meta = JSON.parse(readIn(nd.repo, '.glow-sync.json'));
    assert.deepEqual([meta.kind, meta.id, meta.ref, meta.source], ['git', first, 'HEAD', url]);
    const st = readSyncState(nd.state)!;
    assert.deepEqual([st.lastResult, st.revision, st.commit, st.kind, st.lastError], ['published', m[1], first, 'git', null]);

    const inode = statSync(join(nd.repo, 'nodes/n1.yaml')).ino;
    const r2 = await sync(nd.flags, '--source', url);
    assert.equal(r2.status, 0, r2.stderr);
    assert.equal(r2.stdout, `current: ${m[1]} (commit ${first}; nothing new)\n`);
    assert.equal(linkOf(nd.repo), `revisions/${m[1]}`);
    assert.equal(statSync(join(nd.repo, 'nodes/n1.yaml')).ino, inode);
    assert.deepEqual(revs(nd.revisions), [m[1]]);
    assert.equal(readSyncState(nd.state)!.lastResult, 'unchanged');

    const second = commit(env, src, { 'nodes/n1.yaml': 'marker: 2\n', 'files/web/a.txt': null }, 'second');
    const r3 = await sync(nd.flags, '--source', url);
    assert.equal(r3.status, 0, r3.stderr);
    const m3 = CURRENT.exec(r3.stdout)!;
    assert.equal(m3[2], `commit ${second}`);
    assert.equal(m3[3], `published, was ${m[1]}`);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: 2\n');
    assert.ok(!existsSync(join(nd.repo, 'files/web/a.txt')));
    // The previous tree is as it was: a published tree is never changed.
    assert.equal(readFileSync(join(nd.revisions, m[1]!, 'nodes/n1.yaml'), 'utf8'), 'marker: 1\n');
    assert.equal(readFileSync(join(nd.revisions, m[1]!, 'files/web/a.txt'), 'utf8'), 'a1\n');
  });

  test('--ref: a branch and a tag', T, async () => {
    git(env, src, 'checkout', '--quiet', '-b', 'canary');
    const canary = commit(env, src, { 'nodes/n1.yaml': 'marker: canary\n' }, 'canary');
    git(env, src, 'tag', '-a', '-m', 'v1', 'v1', 'HEAD~1');
    git(env, src, 'checkout', '--quiet', 'main');
    const nd = node();
    const r = await sync(nd.flags, '--source', url, '--ref', 'canary');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`commit ${canary}; published`));
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: canary\n');
    const t = await sync(nd.flags, '--source', url, '--ref', 'refs/tags/v1');
    assert.equal(t.status, 0, t.stderr);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: 2\n'); // the tag is on main's second commit, peeled
    const none = await sync(nd.flags, '--source', url, '--ref', 'no-such-branch');
    assert.equal(none.status, 1);
    assert.match(none.stderr, /GLOW_E_SYNC_FETCH git could not fetch no-such-branch of file:\/\//);
  });

  test('over git:// from a git daemon on 127.0.0.1', T, async () => {
    const served = join(work, 'served');
    mkdirSync(served);
    git(env, work, 'clone', '--quiet', '--bare', src, join(served, 'config.git'));
    const daemon = await gitDaemon(env, served, 'config.git');
    try {
      const nd = node();
      const r = await sync(nd.flags, '--source', `git://127.0.0.1:${daemon.port}/config.git`, '--ref', 'main');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`commit ${git(env, src, 'rev-parse', 'main')}; published, the first`));
      assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: 2\n');
      const again = await sync(nd.flags, '--source', `git://127.0.0.1:${daemon.port}/config.git`, '--ref', 'main');
      assert.match(again.stdout, /; nothing new\)\n$/);
    } finally {
      await daemon.stop();
    }
  });

  test('a failed fetch is exit 1, says which revision stays current, and leaves it untouched', T, async () => {
    const nd = node();
    const ok = await sync(nd.flags, '--source', url);
    assert.equal(ok.status, 0, ok.stderr);
    const name = CURRENT.exec(ok.stdout)![1]!;
    const inode = statSync(join(nd.repo, 'nodes/n1.yaml')).ino;
    const okState = readSyncState(nd.state)!;
    for (const bad of [`file://${join(work, 'missing.git')}`, 'git://127.0.0.1:9/none.git']) {
      const r = await sync(nd.flags, '--source', bad, '--timeout', '20s');
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^current: ${name} \\(commit [0-9a-f]{40}; kept: this run failed\\)\n$`));
      assert.match(r.stderr, /^glow: GLOW_E_SYNC_FETCH git could not fetch HEAD of /m);
      assert.equal(linkOf(nd.repo), `revisions/${name}`);
      assert.equal(statSync(join(nd.repo, 'nodes/n1.yaml')).ino, inode);
      assert.deepEqual(revs(nd.revisions), [name]); // no leftover
      const st = readSyncState(nd.state)!;
      assert.equal(st.lastResult, 'failed');
      assert.equal(st.lastError?.code, 'GLOW_E_SYNC_FETCH');
      assert.equal(st.revision, name);
      assert.equal(st.lastSuccessAt, okState.lastSuccessAt);
    }
  });

  test('credentials of a URL appear neither in messages nor in the state', T, async () => {
    const nd = node();
    const r = await sync(nd.flags, '--source', 'http://bot:s3cret@127.0.0.1:9/x.git', '--timeout', '20s');
    assert.equal(r.status, 1);
    assert.doesNotMatch(r.stdout + r.stderr + readFileSync(nd.state, 'utf8'), /s3cret/);
  });
});

describe('signatures (ssh allowed signers)', () => {
  const dir = join(work, 'keys');
  mkdirSync(dir);
  for (const k of ['ops', 'stranger']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', join(dir, k)], { timeout: 30_000 });
  const signers = join(dir, 'allowed_signers');
  writeFileSync(signers, `ops@glow.invalid namespaces="git" ${readFileSync(join(dir, 'ops.pub'), 'utf8')}`);
  const signedBy = (key: string) => ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${join(dir, key)}`];
  const src = join(work, 'signed');
  sourceRepo(env, src, { 'nodes/n1.yaml': 'marker: unsigned\n' });

  test('a commit signed by an allowed signer is published; an unsigned one and a stranger\'s are refused', T, async () => {
    const nd = node();
    const flags = [...nd.flags, '--source', `file://${src}`, '--verify-signers', signers];
    const unsigned = await sync(flags);
    assert.equal(unsigned.status, 1);
    assert.match(unsigned.stderr, /GLOW_E_SYNC_VERIFY commit [0-9a-f]{40} is not signed/);
    assert.ok(!existsSync(nd.repo));

    const good = commit(env, src, { 'nodes/n1.yaml': 'marker: ops\n' }, 'signed by ops', ...signedBy('ops'), '-c', 'commit.gpgSign=true');
    const r = await sync(flags);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`commit ${good}; published, the first; signed by ops@glow.invalid, key SHA256:`));
    const name = CURRENT.exec(r.stdout)![1]!;
    assert.equal(JSON.parse(readIn(nd.repo, '.glow-sync.json')).signedBy.startsWith('ops@glow.invalid'), true);

    commit(env, src, { 'nodes/n1.yaml': 'marker: stranger\n' }, 'signed by a stranger', ...signedBy('stranger'), '-c', 'commit.gpgSign=true');
    const s = await sync(flags);
    assert.equal(s.status, 1);
    assert.match(s.stderr, /GLOW_E_SYNC_VERIFY commit [0-9a-f]{40} does not verify \(its key is not in the allowed signers file\)/);
    assert.equal(linkOf(nd.repo), `revisions/${name}`);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: ops\n');
    assert.equal(readSyncState(nd.state)!.lastError?.code, 'GLOW_E_SYNC_VERIFY');

    commit(env, src, { 'nodes/n1.yaml': 'marker: unsigned again\n' }, 'unsigned');
    const u = await sync(flags);
    assert.equal(u.status, 1);
    assert.match(u.stderr, /is not signed/);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: ops\n');
  });
});

describe('glow sync from a directory', () => {
  test('a snapshot: unchanged files are hard links to the current revision, dot names are skipped, nothing new is exit 0', T, async () => {
    const push = join(work, 'push');
    writeTree(push, {
      'glow.yaml': 'name: d\n',
      'nodes/n1.yaml': 'marker: 1\n',
      'apps/web.yaml': 'image: web\n',
      'files/web/big.bin': 'x'.repeat(100_000),
      '.git/HEAD': 'ref: refs/heads/main\n',
      'apps/.web.yaml.swp': 'swap',
      'files/web/.a.txt.Xy12Ab': 'rsync temporary',
    });
    symlinkSync('web.yaml', join(push, 'apps/alias.yaml'));
    const nd = node();
    const r1 = await sync(nd.flags, '--source', push);
    assert.equal(r1.status, 0, r1.stderr);
    const m1 = CURRENT.exec(r1.stdout)!;
    assert.equal(m1[3], 'published, the first; 4 files: 0 linked to the previous revision, 4 written');
    assert.ok(!existsSync(join(nd.repo, '.git')));
    assert.ok(!existsSync(join(nd.repo, 'apps/.web.yaml.swp')));
    assert.ok(!existsSync(join(nd.repo, 'files/web/.a.txt.Xy12Ab')));
    assert.equal(linkOf(join(nd.repo, 'apps/alias.yaml')), 'web.yaml');

    const again = await sync(nd.flags, '--source', push);
    assert.equal(again.stdout, `current: ${m1[1]} (${m1[2]}; nothing new)\n`);
    assert.deepEqual(revs(nd.revisions), [m1[1]]);

    writeTree(push, { 'nodes/n1.yaml': 'marker: 2\n' });
    const r2 = await sync(nd.flags, '--source', push);
    assert.equal(r2.status, 0, r2.stderr);
    const m2 = CURRENT.exec(r2.stdout)!;
    assert.match(m2[3]!, /; 4 files: 3 linked to the previous revision, 1 written$/);
    const old = join(nd.revisions, m1[1]!);
    const cur = join(nd.revisions, m2[1]!);
    for (const p of ['glow.yaml', 'apps/web.yaml', 'files/web/big.bin']) {
      assert.equal(statSync(join(cur, p)).ino, statSync(join(old, p)).ino, `${p} shares its inode`);
      assert.ok(statSync(join(cur, p)).nlink >= 2);
      assert.notEqual(statSync(join(cur, p)).ino, statSync(join(push, p)).ino, `${p} is not linked to the source`);
    }
    assert.notEqual(statSync(join(cur, 'nodes/n1.yaml')).ino, statSync(join(old, 'nodes/n1.yaml')).ino);
    assert.equal(readFileSync(join(old, 'nodes/n1.yaml'), 'utf8'), 'marker: 1\n');
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: 2\n');
    // An rsync push that rewrites a file in place (--inplace) does not reach into a published tree.
    writeFileSync(join(push, 'glow.yaml'), 'name: changed in place\n');
    assert.equal(readIn(nd.repo, 'glow.yaml'), 'name: d\n');
  });

  test('a missing, empty or bare-git source is refused with the current revision kept', T, async () => {
    const nd = node();
    const d = join(work, 'dir-src');
    writeTree(d, { 'nodes/n1.yaml': 'marker: 1\n' });
    assert.equal((await sync(nd.flags, '--source', d)).status, 0);
    const target = linkOf(nd.repo);
    const missing = await sync(nd.flags, '--source', join(work, 'nothing-here'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /GLOW_E_SYNC_SOURCE the source directory .* cannot be read/);
    const empty = join(work, 'empty-src');
    mkdirSync(join(empty, '.only-dot'), { recursive: true });
    const e = await sync(nd.flags, '--source', empty);
    assert.equal(e.status, 1);
    assert.match(e.stderr, /GLOW_E_SYNC_SOURCE .* holds nothing/);
    const bare = join(work, 'bare.git');
    git(env, work, 'init', '--quiet', '--bare', bare);
    const b = await sync(nd.flags, '--source', bare);
    assert.match(b.stderr, /is a bare git repository: name it file:\/\//);
    assert.equal(linkOf(nd.repo), target);
    assert.deepEqual(revs(nd.revisions), [target.replace('revisions/', '')]);
  });
});

describe('revisions kept', () => {
  test('--keep N keeps the last N published, by publish order and not by mtime', T, async () => {
    const src = join(work, 'keep-src');
    sourceRepo(env, src, { 'nodes/n1.yaml': 'marker: 0\n' });
    const nd = node();
    const names: string[] = [];
    for (let i = 1; i <= 5; i++) {
      commit(env, src, { 'nodes/n1.yaml': `marker: ${i}\n` }, `c${i}`);
      const r = await sync(nd.flags, '--source', `file://${src}`, '--keep', '2');
      assert.equal(r.status, 0, r.stderr);
      names.push(CURRENT.exec(r.stdout)![1]!);
      // Trap: the current revision's tree looks the oldest and the older ones the newest (tar keeps mtimes).
      utimesSync(join(nd.revisions, names.at(-1)!), new Date(0), new Date(0));
      if (names.length > 1) utimesSync(join(nd.revisions, names.at(-2)!), new Date('2099-01-01'), new Date('2099-01-01'));
    }
    assert.deepEqual(revs(nd.revisions), names.slice(-2));
    assert.equal(linkOf(nd.repo), `revisions/${names.at(-1)}`);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: 5\n');
  });
});

describe('one run at a time, and runs that die', () => {
  const src = join(work, 'lock-src');
  sourceRepo(env, src, { 'nodes/n1.yaml': 'marker: 1\n' });
  const url = `file://${src}`;

  test('a second run exits at once with --wait 0, or waits and then runs', T, async () => {
    const nd = node();
    const held = await glowHeld(env, ['sync', ...nd.flags, '--source', url], 'locked');
    try {
      const busy = await sync(nd.flags, '--source', url, '--wait', '0');
      assert.equal(busy.status, 1);
      assert.match(busy.stderr, new RegExp(`GLOW_E_SYNC_BUSY another glow sync \\(pid ${held.child.pid}\\) holds .*sync/lock \\(--wait 0: not waiting\\); this run changed nothing`));
      assert.match(busy.stdout, /^current: none \(kept: this run failed\)\n$/);
      assert.ok(!existsSync(nd.state), 'a run without the lock writes no state');
      const short = await sync(nd.flags, '--source', url, '--wait', '1s');
      assert.equal(short.status, 1);
      assert.match(short.stderr, /waiting up to 1s for it\n[^]*GLOW_E_SYNC_BUSY .* still did after waiting 1s/);

      const waiting = sync(nd.flags, '--source', url, '--wait', '60s');
      await new Promise((r) => setTimeout(r, 1000));
      held.child.kill('SIGKILL'); // the kernel drops its lock with it
      const w = await waiting;
      assert.equal(w.status, 0, w.stderr);
      assert.match(w.stderr, new RegExp(`another glow sync \\(pid ${held.child.pid}\\) is running; waiting up to 60s`));
      assert.match(w.stdout, /published, the first/);
    } finally {
      held.child.kill('SIGKILL');
      await held.done;
    }
  });

  test('two runs started together: both exit 0, one publishes, the other finds nothing new', T, async () => {
    const nd = node();
    const [a, b] = await Promise.all([sync(nd.flags, '--source', url), sync(nd.flags, '--source', url)]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    const results = [a.stdout, b.stdout].map((s) => CURRENT.exec(s)![3]).sort();
    assert.deepEqual(results, ['nothing new', 'published, the first']);
    assert.equal(revs(nd.revisions).length, 1);
  });

  for (const stage of ['staged', 'renamed'] as const) {
    test(`SIGKILL at ${stage}: the current revision is untouched, the next run cleans up and publishes`, T, async () => {
      const nd = node();
      const r0 = await sync(nd.flags, '--source', url);
      assert.equal(r0.status, 0, r0.stderr);
      const name = CURRENT.exec(r0.stdout)![1]!;
      const next = commit(env, src, { 'nodes/n1.yaml': `marker: after ${stage}\n` }, `after ${stage}`);
      const before = readIn(nd.repo, 'nodes/n1.yaml');
      const held = await glowHeld(env, ['sync', ...nd.flags, '--source', url], stage);
      held.child.kill('SIGKILL');
      const killed = await held.done;
      assert.equal(killed.signal, 'SIGKILL');
      assert.equal(linkOf(nd.repo), `revisions/${name}`);
      assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), before);
      const left = revs(nd.revisions).filter((x) => x !== name);
      assert.equal(left.length, 1, `one leftover: ${left}`);
      assert.ok(stage === 'staged' ? left[0]!.startsWith('.tmp-') : left[0]!.endsWith(next.slice(0, 12)), left[0]);
      assert.equal(readSyncState(nd.state)!.revision, name);

      const r = await sync(nd.flags, '--source', url, '--wait', '5s');
      assert.equal(r.status, 0, r.stderr);
      const m = CURRENT.exec(r.stdout)!;
      assert.equal(m[2], `commit ${next}`);
      assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), `marker: after ${stage}\n`);
      assert.deepEqual(revs(nd.revisions), [name, m[1]].sort());
    });
  }
});

describe('the repository path and sync.env', () => {
  test('a repository that is a real directory is refused, untouched, with how to migrate', T, async () => {
    const nd = node();
    writeTree(nd.repo, { 'nodes/n1.yaml': 'marker: hand-made\n' });
    const d = join(work, 'mig-src');
    writeTree(d, { 'nodes/n1.yaml': 'marker: 1\n' });
    const r = await sync(nd.flags, '--source', d);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /GLOW_E_SYNC_REPO_NOT_LINK .*repo is a directory, not a symbolic link.* Migrate: .*mv .*repo .*repo\.old && glow sync/);
    assert.match(r.stdout, /^current: .*repo \(unknown content; kept: this run failed\)\n$/);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: hand-made\n');
    assert.ok(!existsSync(nd.revisions) || revs(nd.revisions).length === 0);
    assert.equal(readSyncState(nd.state)!.lastError?.code, 'GLOW_E_SYNC_REPO_NOT_LINK');
  });

  test('defaults from the env file, flags win; a typo in it is an error with its line', T, async () => {
    const nd = node();
    const d = join(work, 'env-src');
    writeTree(d, { 'nodes/n1.yaml': 'marker: from env\n' });
    const file = join(nd.base, 'sync.env');
    writeFileSync(file, `# glow sync\nGLOW_SYNC_SOURCE=${d}\nGLOW_SYNC_REPO="${nd.repo}"\nGLOW_SYNC_KEEP=1\n`);
    const r = await glow(env, ['sync', '--sync-env', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: from env\n');
    const other = join(work, 'env-src-2');
    writeTree(other, { 'nodes/n1.yaml': 'marker: from the flag\n' });
    const f = await glow(env, ['sync', '--sync-env', file, '--source', other]);
    assert.equal(f.status, 0, f.stderr);
    assert.equal(readIn(nd.repo, 'nodes/n1.yaml'), 'marker: from the flag\n');
    assert.equal(revs(nd.revisions).length, 1); // GLOW_SYNC_KEEP=1
    writeFileSync(file, `GLOW_SYNC_SOURCE=${d}\nGLOW_SYNC_INTERVAL=5m\n`);
    const bad = await glow(env, ['sync', '--sync-env', file]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /GLOW_E_SYNC_USAGE .*sync\.env:2: unknown key GLOW_SYNC_INTERVAL; the interval is glow-sync\.timer's/);
    const missing = await glow(env, ['sync', '--sync-env', join(nd.base, 'nope.env'), '--source', d]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /GLOW_E_SYNC_USAGE .*nope\.env cannot be read/);
  });
});
