/**
 * Units are pure text: the same plan renders the same bytes. Golden files (test/render/golden/) hold the units of
 * examples/cluster's node-c (a podman app, an exec app with a config file, the proxy, the target); rewrite them
 * with GLOW_UPDATE_GOLDEN=1 after an intended change and review the diff.
 */
import { DEFAULT_PATHS } from '../../src/base/paths.js';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadRepository } from '../../src/config/load.js';
import { memorySource, readRepo } from '../../src/config/source.js';
import { renderUnits } from '../../src/render/units.js';
import { planNode } from '../../src/plan/node-plan.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GOLDEN = join(ROOT, 'test/render/golden');

describe('unit rendering', () => {
  test('examples/cluster node-c matches the golden units', () => {
    const r = loadRepository(readRepo(join(ROOT, 'examples/cluster')));
    assert.ok(r.ok);
    const units = renderUnits(planNode(r.snapshot, 'node-c'), DEFAULT_PATHS);
    const links = [...units.wants].map(([k, v]) => `${k} -> ${v}`).join('\n') + '\n';
    const all: [string, string][] = [...units.files, ['links.txt', links]];
    if (process.env.GLOW_UPDATE_GOLDEN) {
      mkdirSync(GOLDEN, { recursive: true });
      for (const [name, text] of all) writeFileSync(join(GOLDEN, name), text);
    }
    for (const [name, text] of all) assert.equal(text, readFileSync(join(GOLDEN, name), 'utf8'), `golden ${name}`);
  });

  test('what users write is never expanded by systemd: % and $ in env and command are literal', () => {
    const r = loadRepository(
      memorySource({
        'glow.yaml': 'artifacts: /srv/a\n',
        'nodes/n.yaml': 'address: 10.0.0.1\n',
        'apps/x.yaml': 'image: x\nversion: "1"\nruntime: exec\ncommand: [bin/x, "--fmt=%i $HOME"]\nenv: { PCT: "100%n", Q: "say \\"hi\\"" }\n',
        'deployments/x.yaml': 'app: x\nnode: n\n',
      }),
    );
    assert.ok(r.ok, r.ok ? '' : r.errors.map(String).join('\n'));
    const text = renderUnits(planNode(r.snapshot, 'n'), DEFAULT_PATHS).files.get('glow-x@.service')!;
    assert.match(text, /^ExecStart=\/var\/lib\/glow\/artifacts\/x\/1\/bin\/x "--fmt=%%i \$\$HOME"$/m);
    assert.match(text, /^Environment="PCT=100%%n"$/m);
    assert.match(text, /^Environment="Q=say \\"hi\\""$/m);
    assert.match(text, /^Environment="GLOW_INSTANCE=%i"$/m);
  });

  test('a Glow run from under /tmp is bound back into the proxy\'s private /tmp', () => {
    const r = loadRepository(memorySource({ 'nodes/n.yaml': 'address: 10.0.0.1\n' }));
    assert.ok(r.ok);
    const plan = planNode(r.snapshot, 'n');
    const fromTmp = renderUnits(plan, { ...DEFAULT_PATHS, glowCommand: ['/usr/bin/node', '/tmp/ci/glow/dist/src/cli/glow.js'] }).files.get('glow-proxy.service')!;
    assert.match(fromTmp, /^BindReadOnlyPaths=\/tmp\/ci\/glow$/m);
    assert.doesNotMatch(renderUnits(plan, DEFAULT_PATHS).files.get('glow-proxy.service')!, /BindReadOnlyPaths/);
  });

  test('a relaxed sandbox: a system user, writable paths, state', () => {
    const r = loadRepository(
      memorySource({
        'glow.yaml': 'artifacts: /srv/a\n',
        'nodes/n.yaml': 'address: 10.0.0.1\n',
        'apps/x.yaml': 'image: x\nversion: "1"\nruntime: exec\ncommand: [bin/x]\nsandbox: { user: www-data, writable: [/var/lib/x], state: true, protect_system: off, private_tmp: false }\n',
        'deployments/x.yaml': 'app: x\nnode: n\n',
      }),
    );
    assert.ok(r.ok);
    const text = renderUnits(planNode(r.snapshot, 'n'), DEFAULT_PATHS).files.get('glow-x@.service')!;
    assert.match(text, /^User=www-data$/m);
    assert.doesNotMatch(text, /DynamicUser|ProtectSystem|PrivateTmp/);
    assert.match(text, /^StateDirectory=glow-x$/m);
    assert.match(text, /^ReadWritePaths=\/var\/lib\/x$/m);
    assert.match(text, /^NoNewPrivileges=yes$/m);
  });
});
