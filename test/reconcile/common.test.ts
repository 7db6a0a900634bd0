/**
 * The rules that the node's and the box's diffs share (src/reconcile/common.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadRepository } from '../../src/config/load.js';
import { memorySource } from '../../src/config/source.js';
import { devPlan } from '../../src/plan/box-plan.js';
import type { NodePlan, PlannedConfigFile } from '../../src/plan/node-plan.js';
import { artifactSteps, configChanges, configReaction, definitionChange, definitionOf } from '../../src/reconcile/common.js';

const BASE: Record<string, string> = {
  'glow.yaml': 'artifacts: artifacts\n',
  'nodes/node-a.yaml': 'address: 10.0.0.1\n',
  'apps/web.yaml': 'image: site\nversion: "1.0"\nruntime: exec\ncommand: [bin/web]\nprovides: [8080/http]\nconfig:\n  - { source: files/a.json, path: /tmp/t/web/a.json, on_change: reload }\n  - { source: files/b.json, path: /tmp/t/web/b.json, on_change: SIGUSR1 }\n  - { source: files/c.json, path: /tmp/t/web/c.json, on_change: reload }\n',
  'apps/docs.yaml': 'image: site\nversion: "1.0"\nruntime: exec\ncommand: [bin/docs]\nprovides: [8081/http]\nconfig: { source: files/d.json, path: /tmp/t/docs/d.json, on_change: restart }\n',
  'apps/db.yaml': 'image: db\nversion: "1"\nprovides: [5432/tcp]\n',
  'deployments/web-1.yaml': 'app: web\nnode: node-a\n',
  'deployments/docs-1.yaml': 'app: docs\nnode: node-a\n',
  'deployments/db-1.yaml': 'app: db\nnode: node-a\n',
  'files/a.json': '{}\n',
  'files/b.json': '{}\n',
  'files/c.json': '{}\n',
  'files/d.json': '{}\n',
};

function planOf(files: Record<string, string>): NodePlan {
  const r = loadRepository(memorySource(files));
  assert.ok(r.ok, r.ok ? '' : r.errors.map(String).join('\n'));
  return devPlan(r.snapshot).plan;
}

describe('the rules both diffs share', () => {
  const plan = planOf(BASE);

  test('one artifact step per exec image and version, for the first app that runs it', () => {
    assert.deepEqual(
      artifactSteps(plan.instances).map((s) => `${s.app} ${s.image}:${s.version}`),
      ['docs site:1.0'],
    );
  });

  test('an app reacts only to a file it had read: a missing one is delivered, a different one changed', () => {
    const [a, b, c] = plan.files.filter((f) => f.app === 'web') as [PlannedConfigFile, PlannedConfigFile, PlannedConfigFile];
    const delivered = new Map<string, string>([
      [a.path, 'old'],
      [b.path, b.sha256],
    ]);
    const { write, changed } = configChanges(plan.files, (f) => delivered.get(f.path));
    assert.deepEqual(
      write.map((f) => f.path),
      ['/tmp/t/docs/d.json', a.path, c.path],
    );
    assert.deepEqual([...changed].map(([app, fs]) => [app, fs.map((f) => f.path)]), [['web', [a.path]]]);
  });

  test('restart wins over signals; signals are sorted, each with the first file that asks for it', () => {
    const web = plan.files.filter((f) => f.app === 'web');
    assert.deepEqual(configReaction(web), { restartFor: undefined, signals: [['SIGHUP', '/tmp/t/web/a.json'], ['SIGUSR1', '/tmp/t/web/b.json']] });
    const docs = plan.files.filter((f) => f.app === 'docs');
    assert.equal(configReaction(docs).restartFor?.path, '/tmp/t/docs/d.json');
  });

  test('a definition change says what changed', () => {
    const next = planOf({ ...BASE, 'apps/db.yaml': 'image: db\nversion: "2"\nprovides: [5432/tcp]\nenv: { A: b }\n' });
    const db = (p: NodePlan) => definitionOf(p.instances.find((i) => i.app === 'db')!);
    assert.equal(definitionChange(db(plan), db(next)), 'its version 1 → 2, env changed');
    assert.equal(definitionChange(db(plan), db(plan)), 'its definition changed');
  });
});
