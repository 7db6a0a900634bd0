/**
 * The command line as a user runs it: the real `glow` binary on real directories, asserting on what it prints
 * and its exit status.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GLOW = join(ROOT, 'dist/src/cli/glow.js');
const EXAMPLE = join(ROOT, 'examples/cluster');

function glow(...args: string[]) {
  const r = spawnSync(process.execPath, [GLOW, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const work = mkdtempSync(join(tmpdir(), 'glow-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('glow check', () => {
  test('the example cluster passes with a one-line summary', () => {
    const r = glow('check', EXAMPLE);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: .* revision [0-9a-f]{16}: 3 nodes, 4 apps, 2 externals, 6 instances, 1 exposure\n$/);
  });

  test('errors: file:line:col CODE sentence, an excerpt with a caret, exit 1', () => {
    const repo = join(work, 'broken');
    cpSync(EXAMPLE, repo, { recursive: true });
    writeFileSync(join(repo, 'deployments/api-1.yaml'), 'app: apy\nnode: node-b\n');
    writeFileSync(join(repo, 'apps/statsd.yaml'), 'image: statsd\nversion: "1"\nprovides: [8125/udp, 8126/tcp]\nport: 3\n');
    const r = glow('check', repo);
    assert.equal(r.status, 1);
    assert.equal(
      r.stdout,
      [
        'apps/statsd.yaml:4:1 GLOW_E_KEY_UNKNOWN unknown key `port` in this app; known keys: image, version, runtime, command, digest, provides, requires, tags, config, env, health, stop_timeout, sandbox',
        '  4 | port: 3',
        '    | ^',
        'deployments/api-1.yaml:1:6 GLOW_E_REF_UNKNOWN there is no app `apy`; did you mean `api`?',
        '  1 | app: apy',
        '    |      ^',
        '',
        `2 errors in ${repo}; nothing of this revision would be applied`,
        '',
      ].join('\n'),
    );
  });

  test('--json lists the errors as data', () => {
    const repo = join(work, 'broken-json');
    cpSync(EXAMPLE, repo, { recursive: true });
    writeFileSync(join(repo, 'deployments/web-1.yaml'), 'app: web\nnode: node-a\ninstance: 1\n');
    writeFileSync(join(repo, 'deployments/web-2.yaml'), 'app: web\nnode: node-b\ninstance: 1\n');
    const r = glow('check', repo, '--json');
    assert.equal(r.status, 1);
    const body = JSON.parse(r.stdout) as { ok: boolean; revision: string; errors: { file: string; line: number; col: number; code: string; message: string }[] };
    assert.equal(body.ok, false);
    assert.match(body.revision, /^[0-9a-f]{16}$/);
    assert.deepEqual(body.errors, [
      {
        file: 'deployments/web-2.yaml',
        line: 3,
        col: 11,
        code: 'GLOW_E_INSTANCE_DUPLICATE',
        message: 'web #1 is already deployed by deployments/web-1.yaml; give this one another number or delete one file',
      },
    ]);
  });

  test('a missing repository is an error, not an empty cluster', () => {
    const r = glow('check', join(work, 'nope'));
    assert.equal(r.status, 1);
    assert.match(r.stdout, /GLOW_E_REPO_MISSING/);
  });

  test('an unknown flag is a usage error', () => {
    const r = glow('check', EXAMPLE, '--jsn');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /jsn/);
  });
});

describe('command-line conventions', () => {
  test('an unknown flag: glow COMMAND: the flag, the nearest known one and where the help is; exit 2', () => {
    const r = glow('check', EXAMPLE, '--jsn');
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'glow: GLOW_E_USAGE glow check: unknown flag --jsn; did you mean --json? (see `glow check --help`)\n');
    assert.equal(r.stdout, '');
  });

  test('an unknown command suggests the nearest one', () => {
    const r = glow('chek', EXAMPLE);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^glow: GLOW_E_USAGE unknown command `chek`; did you mean `glow check`\?/);
  });

  test('extra arguments are refused, not ignored', () => {
    const r = glow('check', EXAMPLE, 'extra');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /glow check: takes at most 1 argument \(DIR\); left over: "extra"/);
    const s = glow('status', 'what');
    assert.equal(s.status, 2);
    assert.match(s.stderr, /glow status: takes no arguments; left over: "what"/);
  });

  test('a flag that takes a value needs one: --node alone is an error, not the node named ``', () => {
    const r = glow('plan', EXAMPLE, '--node');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /glow plan: --node needs a value/);
    const up = glow('up', EXAMPLE, '--except');
    assert.equal(up.status, 2);
    assert.match(up.stderr, /glow up: --except needs a value/);
  });

  test('with --json everything on stdout is JSON, errors included', () => {
    const usage = glow('check', EXAMPLE, '--json', '--jsn');
    assert.equal(usage.status, 2);
    assert.deepEqual(JSON.parse(usage.stdout), { ok: false, error: { code: 'GLOW_E_USAGE', message: 'glow check: unknown flag --jsn; did you mean --json? (see `glow check --help`)' } });
    const node = glow('plan', EXAMPLE, '--node', 'node-d', '--json');
    assert.equal(node.status, 1);
    const body = JSON.parse(node.stdout) as { ok: boolean; error: { code: string; message: string } };
    assert.equal(body.ok, false);
    assert.equal(body.error.code, 'GLOW_E_NODE_UNKNOWN');
  });

  test('glow help COMMAND is COMMAND --help; glow --version and glowd --version print the version', () => {
    const help = glow('help', 'check');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /glow check \[DIR\] \[--json\]/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(glow('--version').stdout, `${pkg.version}\n`);
    const glowd = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/glowd.js'), '--version'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(glowd.status, 0, glowd.stderr);
    assert.equal(glowd.stdout, `${pkg.version}\n`);
  });

  test('TERM=dumb gets no colours, even on a terminal', () => {
    const r = spawnSync('script', ['-qec', `${process.execPath} ${GLOW} check ${join(work, 'nope')}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '', TERM: 'dumb' }, timeout: 30_000 });
    assert.match(r.stdout, /GLOW_E_REPO_MISSING/);
    assert.doesNotMatch(r.stdout, /\x1b\[/);
    const colour = spawnSync('script', ['-qec', `${process.execPath} ${GLOW} check ${join(work, 'nope')}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '', TERM: 'xterm' }, timeout: 30_000 });
    assert.match(colour.stdout, /\x1b\[/, 'on a real terminal with a real TERM, colours');
  });
});

describe('glow plan', () => {
  test('prints a node\'s instances, listeners, exposures and files', () => {
    const r = glow('plan', EXAMPLE, '--node', 'node-b');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /api #1 +registry\.example\.com\/acme\/api:1\.4\.2 \(podman\)/);
    assert.match(r.stdout, /127\.0\.0\.1:19000 +http +api:9000 → 127\.0\.0\.1:9000 \(node-b, local\), 10\.0\.0\.13:9000 \(node-c\); fallback api-dr:9000 → dr\.example\.net:9000/);
    assert.match(r.stdout, /www +0\.0\.0\.0:80 http www\.example\.com → web:8080/);
    assert.match(r.stdout, /\/etc\/web\/web\.toml +← files\/web\/web\.toml/);
  });

  test('--json is deterministic', () => {
    const a = glow('plan', EXAMPLE, '--node', 'node-a', '--json');
    const b = glow('plan', EXAMPLE, '--node', 'node-a', '--json');
    assert.equal(a.status, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    const plan = JSON.parse(a.stdout) as { node: string; instances: { app: string; instance: number }[] };
    assert.equal(plan.node, 'node-a');
    assert.deepEqual(plan.instances.map((i) => `${i.app}#${i.instance}`), ['statsd#1', 'web#1']);
  });

  test('an unknown node is refused with a suggestion', () => {
    const r = glow('plan', EXAMPLE, '--node', 'node-d');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /GLOW_E_NODE_UNKNOWN there is no node `node-d`.*did you mean `node-a`\?/);
  });
});

describe('glow agent without a reachable D-Bus', () => {
  test('a missing bus socket is GLOW_E_SYSTEMD_CONNECT on one line, exit 1, not a stack trace', () => {
    const r = glow('agent', '--bus', 'unix:path=/nonexistent', '--repo', join(work, 'nope'), '--socket', join(work, 'glowd.sock'));
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, 'glow: GLOW_E_SYSTEMD_CONNECT cannot talk to systemd over D-Bus at unix:path=/nonexistent: connect ENOENT /nonexistent\n');
    assert.equal(r.stdout, '');
  });

  test('glowd: a socket nobody listens on, and an address that is not one', () => {
    writeFileSync(join(work, 'not-a-socket'), '');
    for (const bus of [`unix:path=${join(work, 'not-a-socket')}`, 'tcp:host=127.0.0.1,port=1', 'garbage']) {
      const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/glowd.js'), '--bus', bus, '--repo', join(work, 'nope'), '--socket', join(work, 'glowd.sock')], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^glowd: GLOW_E_SYSTEMD_CONNECT [^\n]+\n$/);
      assert.ok(r.stderr.includes(bus === 'garbage' ? '`garbage` is not a D-Bus address such as unix:path=' : `cannot talk to systemd over D-Bus at ${bus}: connect ECONNREFUSED`), r.stderr);
    }
  });
});

describe('glow logs where nothing runs', () => {
  test('no glowd, no glow up and no lines in the journal: it says where the lines would be, exit 1', () => {
    const r = spawnSync(process.execPath, [GLOW, 'logs', 'web'], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: join(work, 'run') }, timeout: 30_000 });
    if (existsSync('/run/glow/glowd.sock')) return; // a node: the journal is where the lines are
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.equal(r.stderr, `glow logs: no lines of web in the journal; neither glowd (/run/glow/glowd.sock) nor glow up (${join(work, 'run')}/glow/up.sock) runs here\n`);
  });
});

describe('what a newcomer hits on the command line', () => {
  const QUICKSTART = join(ROOT, 'examples/quickstart');

  test('glow check inside a repository\'s subdirectory points to the repository', () => {
    const r = spawnSync(process.execPath, [GLOW, 'check'], { cwd: join(QUICKSTART, 'files/web'), encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /GLOW_E_REPO_EMPTY/);
    assert.match(r.stdout, /\n\. is inside the repository \.\.\/\.\.: run `glow check \.\.\/\.\.`\n$/);
    const apps = glow('check', join(QUICKSTART, 'apps'));
    assert.match(apps.stdout, new RegExp(`is inside the repository (${QUICKSTART}|\\S+quickstart): run \`glow check \\S+\`\\n$`));
    const empty = join(work, 'empty');
    mkdirSync(empty);
    assert.doesNotMatch(glow('check', empty).stdout, /inside the repository/);
  });

  test('glow up --except with a name the repository lacks is refused with a suggestion, before anything runs', () => {
    const state = join(work, 'except-state');
    const r = spawnSync(process.execPath, [GLOW, 'up', QUICKSTART, '--except', 'wbe'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', XDG_STATE_HOME: state, XDG_RUNTIME_DIR: state }, timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'glow: GLOW_E_DEVBOX_APP_UNKNOWN --except wbe: there is no app `wbe` (no apps/wbe.yaml); did you mean `--except web`?\n');
    assert.equal(existsSync(state), false, 'no state directory');
  });

  test('glow plan: columns as wide as their longest cell (a long config path does not break them)', () => {
    const repo = join(work, 'long-paths');
    cpSync(QUICKSTART, repo, { recursive: true });
    const long = '/tmp/glow-quickstart/a/rather/long/directory/of/the/web/front/end/web.json';
    writeFileSync(join(repo, 'apps/web.yaml'), readFileSync(join(repo, 'apps/web.yaml'), 'utf8').replace('/tmp/glow-quickstart/web/web.json', long));
    const r = glow('plan', repo, '--node', 'node-1');
    assert.equal(r.status, 0, r.stderr);
    const files = r.stdout.slice(r.stdout.indexOf('config files')).split('\n').slice(1).filter(Boolean);
    assert.equal(files.length, 2, r.stdout);
    const arrows = files.map((l) => l.indexOf('←'));
    assert.equal(new Set(arrows).size, 1, `the ← line up:\n${files.join('\n')}`);
    assert.ok(files.some((l) => l.includes(`${long}  ←`)), files.join("\n"));
  });
});
