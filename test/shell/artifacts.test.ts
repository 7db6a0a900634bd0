/**
 * The exec runtime's artifact store against real things: tarballs built with the system `tar`, a real HTTP server
 * on 127.0.0.1, real directories. Every test has its own state directory and is bounded in time; every server is
 * stopped.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, createReadStream, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync,
  readlinkSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ARTIFACT_CODES } from '../../src/base/codes.js';
import { ensureArtifact } from '../../src/shell/artifacts/ensure.js';
import type { EnsureArtifactOptions } from '../../src/shell/artifacts/ensure.js';
import { GlowError } from '../../src/base/errors.js';

const T = { timeout: 30_000 };
const work = mkdtempSync(join(tmpdir(), 'glow-artifacts-'));
after(() => rmSync(work, { recursive: true, force: true }));

let counter = 0;
const fresh = (name: string) => {
  const d = join(work, `${name}-${++counter}`);
  mkdirSync(d, { recursive: true });
  return d;
};

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

type Spec = Record<string, string | Buffer | { content: string | Buffer; mode: number } | { link: string } | { dir: number }>;

function makeTree(root: string, spec: Spec): string {
  for (const [path, v] of Object.entries(spec)) {
    const p = join(root, path);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof v === 'string' || Buffer.isBuffer(v)) writeFileSync(p, v);
    else if ('link' in v) symlinkSync(v.link, p);
    else if ('dir' in v) {
      mkdirSync(p, { recursive: true });
      chmodSync(p, v.dir);
    } else {
      writeFileSync(p, v.content);
      chmodSync(p, v.mode);
    }
  }
  return root;
}

/** tar -czf out [args] in cwd, with the system tar (GNU tar on Debian). */
function tgz(out: string, cwd: string, args: string[]): string {
  mkdirSync(dirname(out), { recursive: true });
  execFileSync('tar', ['-cz', '-f', out, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  return out;
}

const sha256 = (file: string) => `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;

const LONG = `deep/${'d'.repeat(60)}/${'f'.repeat(90)}.txt`; // > 100 bytes: GNU long name, pax path, ustar prefix
const BIG = randomBytes(3 * 1024 * 1024 + 17); // several gzip and tar chunks, not a multiple of 512

/** An app as a build would produce it: an executable, private modes, links, a long name, a big file. */
function appTree(root: string): string {
  makeTree(root, {
    'bin/app': { content: '#!/bin/sh\necho hello\n', mode: 0o700 },
    'lib/data.txt': { content: 'data\n', mode: 0o600 },
    'private': { dir: 0o700 },
    'private/secret.txt': { content: 'not so secret\n', mode: 0o400 },
    'current': { link: 'lib' },
    'empty.txt': '',
    'block.bin': Buffer.alloc(512, 7),
    'big.bin': BIG,
    [LONG]: 'long\n',
    'données/é.txt': 'utf-8\n',
  });
  linkSync(join(root, 'lib/data.txt'), join(root, 'lib/copy.txt')); // a hard link entry in the archive
  chmodSync(join(root, 'private'), 0o700);
  return root;
}

/** What a tree holds, with the modes Glow must give it: dirs 0755, files 0644 or 0755. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o7777).toString(8)}`;
        walk(p, r);
      } else out[r] = `file ${(st.mode & 0o7777).toString(8)} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`;
    }
  };
  walk(root, '');
  return out;
}

/** The snapshot of the source tree with the modes rewritten as Glow must write them. */
function expected(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(snapshot(root))) {
    const m = /^(dir|file) ([0-7]+)(.*)$/.exec(v);
    if (!m) out[k] = v;
    else if (m[1] === 'dir') out[k] = 'dir 755';
    else out[k] = `file ${parseInt(m[2]!, 8) & 0o111 ? '755' : '644'}${m[3]}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// A real HTTP server

interface Server {
  base: string;
  requests: string[];
  /** The authorization header of each request. */
  auth: (string | undefined)[];
  close(): Promise<void>;
}

/** Serves the files under root at /store/…; paths under /hang/ are never answered. */
async function serve(root: string, opts: { delayMs?: number } = {}): Promise<Server> {
  const requests: string[] = [];
  const auth: (string | undefined)[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    auth.push(req.headers.authorization);
    const answer = () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      if (path.startsWith('/hang/')) return;
      const file = join(root, path.replace(/^\/store\//, ''));
      if (!path.startsWith('/store/') || !file.startsWith(`${root}/`) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
    };
    if (opts.delayMs) {
      const t = setTimeout(() => {
        timers.delete(t);
        answer();
      }, opts.delayMs);
      timers.add(t);
    } else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/store`,
    requests,
    auth,
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

// ---------------------------------------------------------------------------------------------------------------
// Assertions

async function rejectsWith(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<GlowError> {
  let caught: unknown;
  await assert.rejects(p, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof GlowError, `not a GlowError: ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(code in ARTIFACT_CODES);
  for (const re of patterns) assert.match(caught.message, re);
  return caught;
}

/** Nothing of the artifact is left: no directory, no record, no temporary. */
function assertNothingLeft(state: string, image = 'acme_worker', version = '1.0.0'): void {
  const store = join(state, 'artifacts');
  assert.equal(existsSync(join(store, image, version)), false, 'the artifact directory exists');
  assert.equal(existsSync(join(store, image)), false, 'the image directory exists');
  assert.equal(existsSync(join(store, '.meta', image, `${version}.json`)), false, 'a record exists');
  const tmp = join(store, '.tmp');
  assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], [], 'temporaries are left');
}

/** Waits (bounded) until the store's temporaries are gone: an aborted fetch cleans up after its callers gave up. */
async function tmpEmpty(state: string): Promise<void> {
  const tmp = join(state, 'artifacts', '.tmp');
  for (let i = 0; i < 200 && existsSync(tmp) && readdirSync(tmp).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
}

function opts(state: string, source: string, more: Partial<EnsureArtifactOptions> = {}): EnsureArtifactOptions {
  return { stateDir: state, source, image: 'acme/worker', version: '1.0.0', timeoutMs: 10_000, ...more };
}

// ---------------------------------------------------------------------------------------------------------------

describe('ensureArtifact over HTTP', { timeout: 120_000 }, () => {
  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    test(`fetches and unpacks a ${format} tarball once, readable by any user, exec bits kept`, T, async (t) => {
      const src = appTree(fresh('app'));
      const served = fresh('served');
      tgz(join(served, 'acme/worker/1.0.0.tar.gz'), src, [`--format=${format}`, '.']);
      const server = await serve(served);
      t.after(() => server.close());
      const state = fresh('state');
      const umask = process.umask(0o077); // even a strict umask gives files any user can read
      let r;
      try {
        r = await ensureArtifact(opts(state, server.base));
      } finally {
        process.umask(umask);
      }
      assert.deepEqual(r, { dir: join(state, 'artifacts/acme_worker/1.0.0'), fetched: true });
      assert.deepEqual(server.requests, ['/store/acme/worker/1.0.0.tar.gz']);
      assert.deepEqual(snapshot(r.dir), expected(src));
      const modes = snapshot(r.dir);
      assert.match(modes['bin/app']!, /^file 755 /);
      assert.match(modes['lib/data.txt']!, /^file 644 /);
      assert.match(modes['private/secret.txt']!, /^file 644 /);
      assert.equal(modes['private'], 'dir 755');
      assert.equal(statSync(join(r.dir, 'lib/copy.txt')).ino, statSync(join(r.dir, 'lib/data.txt')).ino, 'hard link');
      assert.equal((statSync(r.dir).mode & 0o777).toString(8), '755');
      for (const d of ['artifacts', 'artifacts/acme_worker']) assert.equal((statSync(join(state, d)).mode & 0o777).toString(8), '755', d);
      assert.equal(execFileSync(join(r.dir, 'bin/app'), { encoding: 'utf8' }), 'hello\n');
      assert.deepEqual(readdirSync(join(state, 'artifacts/.tmp')), []);
      const record = JSON.parse(readFileSync(join(state, 'artifacts/.meta/acme_worker/1.0.0.json'), 'utf8'));
      assert.equal(record.sha256, sha256(join(served, 'acme/worker/1.0.0.tar.gz')));

      // Unpacked once: the next call does not touch the network at all (even a source that is down).
      const again = await ensureArtifact(opts(state, server.base));
      assert.deepEqual(again, { dir: r.dir, fetched: false });
      const down = await ensureArtifact(opts(state, `http://127.0.0.1:${await closedPort()}/x`));
      assert.deepEqual(down, { dir: r.dir, fetched: false });
      assert.equal(server.requests.length, 1, 'the server saw a second request');
    });
  }

  test('a digest that matches is accepted; one that does not leaves nothing behind', T, async (t) => {
    const served = fresh('served');
    const tarball = tgz(join(served, 'acme/worker/1.0.0.tar.gz'), makeTree(fresh('app'), { 'bin/app': { content: 'x', mode: 0o755 } }), ['.']);
    const server = await serve(served);
    t.after(() => server.close());

    const ok = fresh('state');
    const r = await ensureArtifact(opts(ok, server.base, { digest: sha256(tarball) }));
    assert.equal(r.fetched, true);
    assert.ok(existsSync(join(r.dir, 'bin/app')));

    const bad = fresh('state');
    const wrong = `sha256:${'0'.repeat(64)}`;
    const e = await rejectsWith(
      ensureArtifact(opts(bad, server.base, { digest: wrong })),
      'GLOW_E_ARTIFACT_DIGEST',
      /acme\/worker 1\.0\.0/,
      new RegExp(`expected ${wrong}`),
      new RegExp(`got ${sha256(tarball)}`),
      /1\.0\.0\.tar\.gz/,
    );
    assert.doesNotMatch(e.message, /\n/);
    assertNothingLeft(bad);

    // Already unpacked, and the app now names another digest for the same version: said, without network.
    const before = server.requests.length;
    await rejectsWith(ensureArtifact(opts(ok, server.base, { digest: wrong })), 'GLOW_E_ARTIFACT_DIGEST', /already unpacked/, new RegExp(wrong));
    assert.equal(server.requests.length, before);
  });

  test('HTTP 404 and a refused connection are fetch errors naming the URL; nothing is left', T, async (t) => {
    const server = await serve(fresh('served'));
    t.after(() => server.close());
    const state = fresh('state');
    await rejectsWith(
      ensureArtifact(opts(state, server.base)),
      'GLOW_E_ARTIFACT_FETCH',
      new RegExp(`${server.base}/acme/worker/1\\.0\\.0\\.tar\\.gz`),
      /HTTP 404/,
    );
    assertNothingLeft(state);

    const port = await closedPort();
    await rejectsWith(
      ensureArtifact(opts(state, `http://127.0.0.1:${port}/store/`)),
      'GLOW_E_ARTIFACT_FETCH',
      new RegExp(`http://127\\.0\\.0\\.1:${port}/store/acme/worker/1\\.0\\.0\\.tar\\.gz`),
      /ECONNREFUSED/,
    );
    assertNothingLeft(state);
  });

  test('a server that never answers is a fetch error after timeoutMs', T, async (t) => {
    const server = await serve(fresh('served'));
    t.after(() => server.close());
    const state = fresh('state');
    const started = Date.now();
    await rejectsWith(
      ensureArtifact(opts(state, server.base.replace('/store', '/hang'), { timeoutMs: 300 })),
      'GLOW_E_ARTIFACT_FETCH',
      /within 300 ms/,
    );
    assert.ok(Date.now() - started < 5_000);
    assertNothingLeft(state);
  });

  test('a user and password in the URL are sent as Basic authorization and never shown', T, async (t) => {
    const served = fresh('served');
    tgz(join(served, 'acme/worker/1.0.0.tar.gz'), makeTree(fresh('app'), { 'bin/app': 'x' }), ['.']);
    const server = await serve(served);
    t.after(() => server.close());
    const base = server.base.replace('http://', 'http://u:hunter%322@');
    const r = await ensureArtifact(opts(fresh('state'), base));
    assert.equal(r.fetched, true);
    assert.deepEqual(server.auth, [`Basic ${Buffer.from('u:hunter22').toString('base64')}`]);
    const e = await rejectsWith(ensureArtifact(opts(fresh('state'), base, { version: '9.9.9' })), 'GLOW_E_ARTIFACT_FETCH', /HTTP 404/);
    assert.doesNotMatch(e.message, /hunter/);
  });

  test('two concurrent calls share one fetch', T, async (t) => {
    const served = fresh('served');
    tgz(join(served, 'acme/worker/1.0.0.tar.gz'), appTree(fresh('app')), ['.']);
    const server = await serve(served, { delayMs: 200 });
    t.after(() => server.close());
    const state = fresh('state');
    const [a, b] = await Promise.all([ensureArtifact(opts(state, server.base)), ensureArtifact(opts(state, server.base))]);
    assert.deepEqual(a, b);
    assert.equal(a.fetched, true);
    assert.equal(server.requests.length, 1);
  });

  test('an aborted caller stops waiting, the other still gets it; the last one to abort stops the fetch', T, async (t) => {
    const served = fresh('served');
    tgz(join(served, 'acme/worker/1.0.0.tar.gz'), appTree(fresh('app')), ['.']);
    const server = await serve(served, { delayMs: 300 });
    t.after(() => server.close());

    const state = fresh('state');
    const quitter = new AbortController();
    const a = ensureArtifact(opts(state, server.base, { signal: quitter.signal }));
    const b = ensureArtifact(opts(state, server.base));
    setTimeout(() => quitter.abort(), 50);
    await assert.rejects(a, { name: 'AbortError' });
    assert.equal((await b).fetched, true);
    assert.equal(server.requests.length, 1);

    const alone = fresh('state');
    const c = new AbortController();
    const p = ensureArtifact(opts(alone, server.base, { signal: c.signal }));
    setTimeout(() => c.abort(), 50);
    await assert.rejects(p, { name: 'AbortError' });
    await tmpEmpty(alone);
    assertNothingLeft(alone);
  });
});

describe('ensureArtifact from a directory', { timeout: 60_000 }, () => {
  test('a tarball in a directory relative to the repository, or a file:// URL', T, async () => {
    const store = fresh('store');
    const src = appTree(fresh('app'));
    const tarball = tgz(join(store, 'acme/worker/1.0.0.tar.gz'), src, ['.']);
    const repo = join(dirname(store), `repo-${counter}`);
    mkdirSync(repo);
    const state = fresh('state');
    const r = await ensureArtifact(opts(state, `../${store.split('/').pop()}`, { repoDir: repo, digest: sha256(tarball) }));
    assert.equal(r.fetched, true);
    assert.deepEqual(snapshot(r.dir), expected(src));

    const viaUrl = await ensureArtifact(opts(fresh('state'), `file://${store}`));
    assert.deepEqual(snapshot(viaUrl.dir), expected(src));

    await rejectsWith(ensureArtifact(opts(fresh('state'), 'relative/store')), 'GLOW_E_ARTIFACT_MISSING', /relative/);
  });

  test('an unpacked directory is copied, with the same modes and the same checks', T, async () => {
    const store = fresh('store');
    const src = appTree(join(store, 'acme/worker/1.0.0'));
    const state = fresh('state');
    const r = await ensureArtifact(opts(state, store));
    assert.equal(r.fetched, true);
    const want = expected(src);
    delete want['lib/copy.txt']; // a hard link in a directory is copied as a file
    const got = snapshot(r.dir);
    assert.equal(got['lib/copy.txt'], want['lib/data.txt']);
    delete got['lib/copy.txt'];
    assert.deepEqual(got, want);
    assert.equal(execFileSync(join(r.dir, 'bin/app'), { encoding: 'utf8' }), 'hello\n');

    // A digest cannot be checked against a directory: refused rather than ignored.
    await rejectsWith(
      ensureArtifact(opts(fresh('state'), store, { digest: `sha256:${'a'.repeat(64)}` })),
      'GLOW_E_ARTIFACT_DIGEST',
      /unpacked directory/,
    );
    // A link leading out of it refuses it.
    makeTree(join(store, 'acme/worker/2.0.0'), { 'bin/app': 'x', 'etc': { link: '../../../../../../etc' } });
    const bad = fresh('state');
    await rejectsWith(ensureArtifact(opts(bad, store, { version: '2.0.0' })), 'GLOW_E_ARTIFACT_UNPACK', /"etc"/, /leads out/);
    assertNothingLeft(bad, 'acme_worker', '2.0.0');
  });

  test('neither a tarball nor a directory: GLOW_E_ARTIFACT_MISSING naming both', T, async () => {
    const store = fresh('store');
    const state = fresh('state');
    await rejectsWith(
      ensureArtifact(opts(state, store)),
      'GLOW_E_ARTIFACT_MISSING',
      new RegExp(`${store}/acme/worker/1\\.0\\.0\\.tar\\.gz`),
      new RegExp(`${store}/acme/worker/1\\.0\\.0/`),
    );
    await rejectsWith(ensureArtifact(opts(state, join(store, 'nope'))), 'GLOW_E_ARTIFACT_MISSING', /does not exist/);
    assertNothingLeft(state);
  });
});

describe('archives that lead out are refused whole', { timeout: 60_000 }, () => {
  /** Builds the archive with `build(dir)` → tar arguments, serves it from a directory source, expects a refusal. */
  async function refused(build: (dir: string, out: string) => void, ...patterns: RegExp[]): Promise<string> {
    const store = fresh('store');
    const dir = fresh('evil');
    const out = join(store, 'acme/worker/1.0.0.tar.gz');
    mkdirSync(dirname(out), { recursive: true });
    build(dir, out);
    const state = fresh('state');
    await rejectsWith(ensureArtifact(opts(state, store)), 'GLOW_E_ARTIFACT_UNPACK', ...patterns);
    assertNothingLeft(state);
    return state;
  }

  test('an entry ../evil (and nothing is written, not even the entries before it)', T, async () => {
    const state = await refused(
      (dir, out) => {
        makeTree(dir, { 'pkg/bin/app': 'x', 'evil': 'evil' });
        tgz(out, join(dir, 'pkg'), ['-P', 'bin/app', '../evil']);
      },
      /"\.\.\/evil"/,
      /"\.\."/,
    );
    assert.equal(existsSync(join(state, 'artifacts/acme_worker/evil')), false);
    assert.equal(existsSync(join(state, 'artifacts/evil')), false);
  });

  test('an absolute path', T, async () => {
    await refused((dir, out) => {
      makeTree(dir, { 'abs.txt': 'x' });
      tgz(out, dir, ['-P', join(dir, 'abs.txt')]);
    }, /absolute/);
  });

  test('an absolute symbolic link', T, async () => {
    await refused((dir, out) => {
      makeTree(dir, { 'bin/app': 'x', 'passwd': { link: '/etc/passwd' } });
      tgz(out, dir, ['.']);
    }, /"passwd" → "\/etc\/passwd" leads out/);
  });

  test('a relative symbolic link that climbs out', T, async () => {
    await refused((dir, out) => {
      makeTree(dir, { 'a/b/up': { link: '../../../outside' } });
      tgz(out, dir, ['.']);
    }, /"a\/b\/up"/);
  });

  test('symbolic links that lead out only together (a → ., b → a/..)', T, async () => {
    await refused((dir, out) => {
      makeTree(dir, { 'b': { link: 'a/..' }, 'a': { link: '.' } });
      tgz(out, dir, ['b', 'a']);
    }, /"b" → "a\/\.\." leads out/);
  });

  test('an entry written through a symbolic link of the archive', T, async () => {
    await refused((dir, out) => {
      makeTree(dir, { 'sub/keep': 'k', 'cur': { link: 'sub' }, 'other': 'o' });
      tgz(out, dir, ['sub', 'cur', 'other', '--transform', 's,^other$,cur/x,']);
    }, /"cur\/x" lies under the symbolic link "cur"/);
  });

  test('hard links to a path outside or absolute', T, async () => {
    for (const target of ['../outside', '/etc/passwd']) {
      await refused((dir, out) => {
        makeTree(dir, { 'a': 'a' });
        linkSync(join(dir, 'a'), join(dir, 'b'));
        tgz(out, dir, ['-P', 'a', 'b', '--transform', `s,^a$,${target},R`]); // only the link's target is rewritten
      }, /hard link "b"/);
    }
  });

  test('not a gzip file, and a truncated one', T, async () => {
    await refused((_dir, out) => writeFileSync(out, 'this is not a tarball\n'), /gzip/);
    await refused((dir, out) => {
      makeTree(dir, { 'big.bin': BIG });
      tgz(out, dir, ['.']);
      const bytes = readFileSync(out);
      writeFileSync(out, bytes.subarray(0, bytes.length >> 1));
    });
  });
});

describe('the layout of a tarball: command paths are relative to its root', { timeout: 60_000 }, () => {
  const web = (root: string) => makeTree(root, { 'web-1.0.0/bin/web': { content: '#!/bin/sh\necho web\n', mode: 0o755 }, 'web-1.0.0/lib/x': 'x' });

  test('a tarball of the build directory itself is refused with the fix; repacked, the same version installs', T, async () => {
    const build = web(fresh('build'));
    const store = fresh('store');
    tgz(join(store, 'acme/worker/1.0.0.tar.gz'), build, ['web-1.0.0']); // the mistake: web-1.0.0/bin/web
    const state = fresh('state');
    const e = await rejectsWith(
      ensureArtifact(opts(state, store, { command: ['bin/web', '--serve'] })),
      'GLOW_E_ARTIFACT_LAYOUT',
      /acme\/worker 1\.0\.0/,
      /the command bin\/web is not at the root of the tarball but inside its one top-level directory web-1\.0\.0\/ \(web-1\.0\.0\/bin\/web\)/,
      /tar -czf 1\.0\.0\.tar\.gz -C web-1\.0\.0 \./,
      /nothing was installed/,
    );
    assert.doesNotMatch(e.message, /\n/);
    assertNothingLeft(state);

    // As the message says: the content of the directory at the root, published again under the same version.
    tgz(join(store, 'acme/worker/1.0.0.tar.gz'), join(build, 'web-1.0.0'), ['.']);
    const r = await ensureArtifact(opts(state, store, { command: ['bin/web', '--serve'] }));
    assert.equal(r.fetched, true);
    assert.equal(execFileSync(join(r.dir, 'bin/web'), { encoding: 'utf8' }), 'web\n');
  });

  test('already unpacked with the wrong layout (before the command was known): said, with how to replace it', T, async () => {
    const store = fresh('store');
    tgz(join(store, 'acme/worker/1.0.0.tar.gz'), web(fresh('build')), ['web-1.0.0']);
    const state = fresh('state');
    const r = await ensureArtifact(opts(state, store)); // no command: nothing to check against
    assert.equal(r.fetched, true);
    await rejectsWith(ensureArtifact(opts(state, store, { command: ['bin/web'] })), 'GLOW_E_ARTIFACT_LAYOUT', /already unpacked in/, /new version/);
  });

  test('a right layout with one top-level directory, a command found nowhere, and no command are not layout errors', T, async () => {
    const store = fresh('store');
    tgz(join(store, 'acme/worker/1.0.0.tar.gz'), makeTree(fresh('build'), { 'bin/web': { content: 'x', mode: 0o755 } }), ['.']);
    const state = fresh('state');
    assert.equal((await ensureArtifact(opts(state, store, { command: ['bin/web'] }))).fetched, true); // its one directory is bin/
    tgz(join(store, 'acme/worker/2.0.0.tar.gz'), web(fresh('build')), ['web-1.0.0']);
    const missing = await ensureArtifact(opts(state, store, { version: '2.0.0', command: ['bin/other'] })); // left to the instance
    assert.equal(missing.fetched, true);
  });

  test('two callers sharing one fetch: each is checked against its own command', T, async () => {
    const store = fresh('store');
    tgz(join(store, 'acme/worker/1.0.0.tar.gz'), web(fresh('build')), ['web-1.0.0']);
    const state = fresh('state');
    const [plain, checked] = await Promise.allSettled([
      ensureArtifact(opts(state, store)),
      ensureArtifact(opts(state, store, { command: ['bin/web'] })),
    ]);
    assert.equal(plain.status, 'fulfilled');
    assert.equal(checked.status, 'rejected');
    assert.equal((checked as PromiseRejectedResult).reason.code, 'GLOW_E_ARTIFACT_LAYOUT');
  });
});

describe('crashes and names', { timeout: 60_000 }, () => {
  test('leftover temporaries of a crash are cleaned, and a record without its directory is no artifact', T, async () => {
    const store = fresh('store');
    const src = appTree(fresh('app'));
    tgz(join(store, 'acme/worker/1.0.0.tar.gz'), src, ['.']);
    const state = fresh('state');
    const tmp = join(state, 'artifacts/.tmp');
    // A crashed process (a pid above pid_max), this process earlier (a failed attempt), and something unknown.
    makeTree(tmp, {
      '4194305-deadbeef/artifact.tar.gz': 'partial',
      '4194305-deadbeef/root/bin/app': 'half',
      [`${process.pid}-cafe/root/x`]: 'x',
      'junk': 'j',
    });
    // A crash between the record and the rename: a record, no directory.
    makeTree(join(state, 'artifacts/.meta'), { 'acme_worker/1.0.0.json': '{"image":"acme/worker","sha256":"sha256:00"}' });
    const r = await ensureArtifact(opts(state, store));
    assert.equal(r.fetched, true);
    assert.deepEqual(snapshot(r.dir), expected(src));
    assert.deepEqual(readdirSync(tmp), []);

    // After a restart where everything is installed, the first call cleans too (no fetch needed).
    const installed = fresh('state');
    makeTree(join(installed, 'artifacts/acme_worker/1.0.0'), { 'bin/app': 'x' });
    makeTree(join(installed, 'artifacts/.tmp'), { '4194305-0123/root/x': 'x' });
    const again = await ensureArtifact(opts(installed, '/nonexistent'));
    assert.deepEqual(again, { dir: join(installed, 'artifacts/acme_worker/1.0.0'), fetched: false });
    assert.deepEqual(readdirSync(join(installed, 'artifacts/.tmp')), []);
  });

  test('images and versions that would lead out of the store are refused', T, async () => {
    const state = fresh('state');
    for (const image of ['../x', 'a/../../x', '/abs', '.tmp', 'a//b', '..']) {
      await rejectsWith(ensureArtifact(opts(state, '/nonexistent', { image })), 'GLOW_E_ARTIFACT_NAME', /image/);
    }
    for (const version of ['..', '../1', '1/2', '.1']) {
      await rejectsWith(ensureArtifact(opts(state, '/nonexistent', { version })), 'GLOW_E_ARTIFACT_NAME', /version/);
    }
    assert.equal(existsSync(join(state, 'artifacts')), false);
  });

  test('two images that share a directory (acme/worker, acme_worker) are not mistaken for each other', T, async () => {
    const store = fresh('store');
    tgz(join(store, 'acme/worker/1.0.0.tar.gz'), makeTree(fresh('app'), { 'which': 'acme/worker' }), ['.']);
    tgz(join(store, 'acme_worker/1.0.0.tar.gz'), makeTree(fresh('app'), { 'which': 'acme_worker' }), ['.']);
    const state = fresh('state');
    const r = await ensureArtifact(opts(state, store));
    assert.equal(readFileSync(join(r.dir, 'which'), 'utf8'), 'acme/worker');
    await rejectsWith(ensureArtifact(opts(state, store, { image: 'acme_worker' })), 'GLOW_E_ARTIFACT_NAME', /"acme\/worker" and "acme_worker"/);
  });

  test('every code has a one-line meaning', T, () => {
    for (const [code, meaning] of Object.entries(ARTIFACT_CODES)) {
      assert.match(code, /^GLOW_E_ARTIFACT_[A-Z]+$/);
      assert.ok(meaning.length > 10 && !meaning.includes('\n'));
    }
  });
});
