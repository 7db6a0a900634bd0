/**
 * `glow up --plan` and `glow dev` as a user runs them, where they end at once: the plan of the box, and the
 * errors of a wrong command line. (The long-running forms are in quickstart.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deliverFile, pathError, sha256OfFile } from '../../src/box/deliver.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GLOW = join(ROOT, 'dist/src/cli/glow.js');
const work = mkdtempSync(join(tmpdir(), 'glow-devbox-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function glow(...args: string[]) {
  const r = spawnSync(process.execPath, [GLOW, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', XDG_STATE_HOME: work, XDG_RUNTIME_DIR: work }, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('glow up --plan', () => {
  test('the quick start: what the box would run, and what it folds', () => {
    const r = glow('up', join(ROOT, 'examples/quickstart'), '--plan');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^node devbox \(127\.0\.0\.1\), revision [0-9a-f]{16}\n/);
    assert.match(r.stdout, /www +127\.0\.0\.1:8800 http → web:8080 → 127\.0\.0\.1:8080 \(devbox, local\)/);
    assert.match(r.stdout, /folded \(1\)\n {2}api #1 runs for #2 \(node-2, deployments\/api-2\.yaml\) too\n$/);
  });

  test('--node: that node\'s share', () => {
    const r = glow('up', join(ROOT, 'examples/quickstart'), '--plan', '--node', 'node-2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^node node-2 \(10\.0\.0\.12\)/);
    assert.match(r.stdout, /api #2 +api:1\.0\.0 \(exec\)/);
    assert.doesNotMatch(r.stdout, /folded/);
  });

  test('a directory that does not exist', () => {
    const r = glow('up', join(work, 'nope'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^glow: GLOW_E_REPO_MISSING there is no repository at /);
  });
});

describe('glow dev', () => {
  test('an app that does not exist, with a suggestion; no app at all', () => {
    const r = glow('dev', 'wbe', join(ROOT, 'examples/quickstart'));
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'glow: GLOW_E_DEVBOX_APP_UNKNOWN there is no app `wbe` (no apps/wbe.yaml); did you mean `web`?\n');
    const none = glow('dev');
    assert.equal(none.status, 2);
    assert.match(none.stderr, /Usage\n {2}glow dev APP \[DIR\]/);
  });
});

describe('config files at their real path', () => {
  test('written whole with their mode; a directory the user may not write says how to make it theirs', () => {
    const path = join(work, 'etc/web/web.json');
    deliverFile(path, Buffer.from('{"a": 1}\n'), 0o640, 'alice');
    assert.equal(readFileSync(path, 'utf8'), '{"a": 1}\n');
    assert.equal(statSync(path).mode & 0o777, 0o640);
    assert.equal(sha256OfFile(path), createHash('sha256').update('{"a": 1}\n').digest('hex'));
    assert.equal(sha256OfFile(join(work, 'nothing')), undefined);
    const e = pathError('/etc/web/web.toml', Object.assign(new Error('EACCES: permission denied, mkdir \'/etc/web\''), { code: 'EACCES' }), 'alice');
    assert.equal(e.code, 'GLOW_E_DEVBOX_PATH');
    assert.match(e.message, /^cannot write the config file \/etc\/web\/web\.toml: \/etc(\/web)? is not writable by alice\. The dev box writes config files at their real path, where the app reads them; make the directory yours once: sudo install -d -o alice \/etc\/web$/);
  });
});
