/**
 * The README's first command, run as a new user runs it: on a clean checkout (the files a clone has: no
 * node_modules, no dist), as a user without root (nobody, when the tests run as root) with a home of its own and
 * no XDG variables, the command exactly as the README's quick start writes it. It must install, build, start the
 * quick start, print where to look, serve the exposed URL, and stop cleanly on Ctrl-C (SIGINT to the whole
 * foreground process group, as a terminal sends it).
 *
 * npm installs from the npm cache of this machine when it can (the CI's own `npm ci` filled it), from the
 * registry otherwise.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { groupAlive, killGroup } from '../../src/box/supervisor.js';
import { machineLock } from './machine-lock.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PORTS = [8080, 8800, 9000, 9100, 9464, 19000, 19100];
const NOBODY = 65534;

const work = mkdtempSync(join(tmpdir(), 'glow-readme-'));
let child: ChildProcess | undefined;
const groups = new Set<number>();
let unlock: (() => void) | undefined;

after(() => {
  if (child?.pid) killGroup(child.pid, 'SIGKILL');
  for (const g of groups) killGroup(g, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
  if (unlock) rmSync('/tmp/glow-quickstart', { recursive: true, force: true });
  unlock?.();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** What a clone of this repository holds: the tracked files and the new ones that are not ignored. */
function cleanCheckout(to: string): void {
  const r = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `git ls-files: ${r.stderr}`);
  for (const f of r.stdout.split('\0').filter(Boolean)) {
    const from = join(ROOT, f);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(dirname(join(to, f)), { recursive: true });
    cpSync(from, join(to, f), { preserveTimestamps: true });
  }
}

function chownTree(path: string, uid: number): void {
  chownSync(path, uid, uid);
  if (lstatSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n), uid);
}

test('README: `npm ci && npm start` on a clean checkout, as a new user, works as written', { timeout: 480_000 }, async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const quick = /## Quick start\n[\s\S]*?```sh\n([^\n]+)\n```/.exec(readme);
  assert.ok(quick, 'the README has a quick start with a sh block');
  const command = quick[1]!;
  assert.equal(command, 'npm ci && npm start');

  // The quick start's ports and /tmp/glow-quickstart are the machine's: one test run at a time (machine-lock.ts).
  unlock = await machineLock('glow-quickstart-test', 180_000);
  const taken: number[] = [];
  for (const p of PORTS) if (await portTaken(p)) taken.push(p);
  assert.deepEqual(taken, [], `the quick start's ports must be free for this test; in use: ${taken.join(', ')}`);
  rmSync('/tmp/glow-quickstart', { recursive: true, force: true });

  const clone = join(work, 'glow');
  const home = join(work, 'home');
  cleanCheckout(clone);
  assert.equal(existsSync(join(clone, 'node_modules')), false);
  assert.equal(existsSync(join(clone, 'dist')), false);
  mkdirSync(home);
  const npmCache = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).stdout.trim();
  if (npmCache && existsSync(join(npmCache, '_cacache'))) cpSync(join(npmCache, '_cacache'), join(home, '.npm', '_cacache'), { recursive: true });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    chownTree(work, NOBODY);
  }

  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' };
  const argv = asRoot ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '/bin/sh', '-c', command] : ['/bin/sh', '-c', command];
  // Its own process group, like a terminal's foreground job: Ctrl-C goes to all of it.
  child = spawn(argv[0]!, argv.slice(1), { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));

  const deadline = Date.now() + 240_000;
  while (!/Ctrl-C stops everything/.test(out)) {
    assert.ok(Date.now() < deadline, `no banner within 240 s:\n${out}`);
    assert.equal(child.exitCode, null, `the command ended early:\n${out}`);
    await sleep(250);
  }
  // Where to look: the exposed URL, the metrics, how to try a live change.
  assert.match(out, /www +http:\/\/127\.0\.0\.1:8800\/ {2}→ web:8080/);
  assert.match(out, /metrics +http:\/\/127\.0\.0\.1:9464\/metrics/);
  assert.match(out, /try +edit examples\/quickstart\/files\/web\/web\.json/);
  // No root, no XDG variables: the state in the user's home.
  assert.match(out, new RegExp(`state in ${home}/\\.local/state/glow/up/quickstart-[0-9a-f]{8}`));

  let page: { web?: string; api?: { api?: string } } = {};
  while (!page.api?.api) {
    assert.ok(Date.now() < deadline, `the exposed URL does not answer:\n${out}`);
    try {
      page = (await (await fetch('http://127.0.0.1:8800/json', { signal: AbortSignal.timeout(2000) })).json()) as typeof page;
    } catch {
      await sleep(250);
    }
  }
  assert.equal(page.web, 'web #1 on devbox');
  assert.equal(page.api.api, 'api #1 on devbox');

  const pids = [...out.matchAll(/started \S+ \(.*, pid (\d+)\)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 4, out);
  for (const p of pids) groups.add(p);
  process.kill(-child.pid!, 'SIGINT');
  const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout' as const)]);
  assert.notEqual(code, 'timeout', `no exit within 20 s of Ctrl-C:\n${out}`);
  assert.match(out, /glow +│ stopped/);
  for (const p of [...pids, child.pid!]) assert.equal(groupAlive(p), false, `process group ${p} is gone`);
});
