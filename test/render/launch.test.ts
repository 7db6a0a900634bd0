/**
 * launchOf() and the terminal's lines: how an instance is started and how its output is shown. Pure.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadRepository } from '../../src/config/load.js';
import { memorySource } from '../../src/config/source.js';
import { devPlan } from '../../src/plan/box-plan.js';
import { launchOf, shellLine } from '../../src/render/launch.js';
import { LineSplitter, Terminal } from '../../src/box/terminal.js';
import type { PlannedInstance } from '../../src/plan/node-plan.js';

function instances(): PlannedInstance[] {
  const r = loadRepository(
    memorySource({
      'glow.yaml': 'artifacts: /srv/a\n',
      'nodes/n.yaml': 'address: 10.0.0.1\n',
      'apps/web.yaml': 'image: web\nversion: "1.0"\nruntime: exec\ncommand: ["bin/web", "--port", "8080"]\nenv: { MOTTO: "it\'s fine" }\n',
      'apps/db.yaml': 'image: docker.io/library/redis\nversion: "7"\ncommand: [redis-server]\nstop_timeout: 3s\nconfig: { source: files/r.conf, path: /etc/redis/redis.conf }\n',
      'deployments/web.yaml': 'app: web\nnode: n\n',
      'deployments/db.yaml': 'app: db\nnode: n\n',
      'files/r.conf': 'port 6379\n',
    }),
  );
  assert.ok(r.ok);
  return [...devPlan(r.snapshot).plan.instances];
}

const ctx = { artifactDir: '/state/artifacts/web/1.0', podman: '/usr/bin/podman', stateDir: '/state', session: { PATH: '/usr/bin', HOME: '/home/u', SECRET_TOKEN: 'x' } };

describe('launchOf', () => {
  test('exec: the command in the artifact directory, the instance environment over PATH and HOME only', () => {
    const web = instances().find((i) => i.app === 'web')!;
    const l = launchOf(web, ctx);
    assert.deepEqual(l.argv, ['/state/artifacts/web/1.0/bin/web', '--port', '8080']);
    assert.equal(l.cwd, '/state/artifacts/web/1.0');
    assert.deepEqual(l.env, { PATH: '/usr/bin', HOME: '/home/u', GLOW_APP: 'web', GLOW_INSTANCE: '1', GLOW_NODE: 'devbox', GLOW_VERSION: '1.0', MOTTO: "it's fine" });
    // The box's environment, not the whole shell's: env -i, then PATH and HOME from the shell that runs it.
    assert.equal(shellLine(l), "cd /state/artifacts/web/1.0 && env -i PATH=\"$PATH\" HOME=\"$HOME\" GLOW_APP=web GLOW_INSTANCE=1 GLOW_NODE=devbox GLOW_VERSION=1.0 'MOTTO=it'\\''s fine' /state/artifacts/web/1.0/bin/web --port 8080");
  });

  test('podman: in the foreground on the host network, config directories mounted read-only, removed if it lingers', () => {
    const db = instances().find((i) => i.app === 'db')!;
    const l = launchOf(db, ctx);
    assert.deepEqual(l.argv, [
      '/usr/bin/podman', 'run', '--rm', '--network=host', '--init', '--replace', '--name=glow-db-1', '--stop-timeout=3',
      '--env', 'GLOW_APP=db', '--env', 'GLOW_INSTANCE=1', '--env', 'GLOW_NODE=devbox', '--env', 'GLOW_VERSION=7',
      '--volume', '/etc/redis:/etc/redis:ro', 'docker.io/library/redis:7', 'redis-server',
    ]);
    assert.deepEqual(l.env, { PATH: '/usr/bin', HOME: '/home/u' });
    assert.deepEqual(l.cleanup, ['/usr/bin/podman', 'rm', '-f', '--time=0', 'glow-db-1']);
  });
});

describe('terminal', () => {
  test('plain: every line prefixed with its instance, padded; glow\'s own lines under `glow`', () => {
    let out = '';
    const t = new Terminal({ write: (s: string) => (out += s) }, false);
    t.setKeys(['web#1', 'quotes-cache#1']);
    t.line('web#1', 'web', 'listening');
    t.info('started web#1\n  second line');
    assert.equal(out, 'web#1          │ listening\nglow           │ started web#1\n               │   second line\n');
  });

  test('colour on a terminal: the prefix in the app\'s colour, the same for every instance of the app', () => {
    let out = '';
    const t = new Terminal({ write: (s: string) => (out += s) }, true);
    t.line('web#1', 'web', 'a');
    t.line('web#2', 'web', 'b');
    const [a, b] = out.split('\n');
    assert.match(a!, /^\x1b\[(\d+)mweb#1 │\x1b\[0m a$/);
    assert.equal(/^\x1b\[(\d+)m/.exec(a!)![1], /^\x1b\[(\d+)m/.exec(b!)![1]);
  });

  test('lines are put together from the chunks they arrive in; a last line without newline is kept', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push('hel');
    s.push('lo\r\nwor');
    s.push('ld\n\npartial');
    assert.deepEqual(lines, ['hello', 'world', '']);
    s.end();
    assert.deepEqual(lines, ['hello', 'world', '', 'partial']);
  });
});
