/**
 * diffBox(): what the dev box does for each kind of change, least disruptive first. Pure; the same behaviours
 * are exercised with real processes in quickstart.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadRepository } from '../../src/config/load.js';
import { memorySource } from '../../src/config/source.js';
import { devPlan } from '../../src/plan/box-plan.js';
import { instanceKey } from '../../src/base/names.js';
import { diffBox } from '../../src/reconcile/box.js';
import { definitionOf } from '../../src/reconcile/common.js';
import type { BoxStep, ObservedBox } from '../../src/reconcile/box.js';
import type { NodePlan } from '../../src/plan/node-plan.js';

const BASE: Record<string, string> = {
  'glow.yaml': 'artifacts: artifacts\n',
  'nodes/node-a.yaml': 'address: 10.0.0.1\n',
  'nodes/node-b.yaml': 'address: 10.0.0.2\n',
  'apps/web.yaml': 'image: web\nversion: "1.0"\nruntime: exec\ncommand: [bin/web]\nprovides: [8080/http]\nrequires: [api:9000 -> 19000]\nconfig: { source: files/web.json, path: /tmp/t/web/web.json, on_change: reload }\n',
  'apps/api.yaml': 'image: api\nversion: "2.0"\nruntime: exec\ncommand: [bin/api]\nprovides: [9000/http]\nconfig: { source: files/api.json, path: /tmp/t/api/api.json }\n',
  'apps/job.yaml': 'image: job\nversion: "1"\nruntime: exec\ncommand: [bin/job]\nconfig: { source: files/job.json, path: /tmp/t/job/job.json, on_change: none }\n',
  'deployments/web-1.yaml': 'app: web\nnode: node-a\n',
  'deployments/api-1.yaml': 'app: api\nnode: node-b\n',
  'deployments/job-1.yaml': 'app: job\nnode: node-b\n',
  'files/web.json': '{"title": "a"}\n',
  'files/api.json': '{"greeting": "a"}\n',
  'files/job.json': '{}\n',
};

function planOf(files: Record<string, string>): NodePlan {
  const r = loadRepository(memorySource(files));
  assert.ok(r.ok, r.ok ? '' : r.errors.map(String).join('\n'));
  return devPlan(r.snapshot).plan;
}

/** The box after it applied `plan` completely. */
function applied(plan: NodePlan): ObservedBox {
  return {
    instances: new Map(plan.instances.map((i) => [instanceKey(i.app, i.instance), definitionOf(i)])),
    files: new Map(plan.files.map((f) => [f.path, f.sha256])),
    routes: JSON.stringify(plan.listeners),
    tlsFiles: new Map(),
  };
}

const desired = (plan: NodePlan, except?: string[]) => ({ plan, routes: JSON.stringify(plan.listeners), ...(except ? { except: new Set(except) } : {}) });

function kinds(steps: BoxStep[]): string[] {
  return steps.map((s) => {
    switch (s.kind) {
      case 'ensure-artifact':
        return `artifact ${s.image}:${s.version}`;
      case 'write-config':
      case 'notify-change':
        return `${s.kind} ${s.file.path}`;
      case 'start':
        return `start ${instanceKey(s.instance.app, s.instance.instance)}`;
      case 'restart':
        return `restart ${instanceKey(s.instance.app, s.instance.instance)}: ${s.reason}`;
      case 'signal':
        return `signal ${instanceKey(s.instance.app, s.instance.instance)} ${s.signal}`;
      case 'stop':
        return `stop ${s.key}: ${s.reason}`;
      default:
        return s.kind;
    }
  });
}

describe('diffBox', () => {
  const plan = planOf(BASE);

  test('a fresh box: artifacts, config files, routes, then the instances', () => {
    const empty: ObservedBox = { instances: new Map(), files: new Map(), routes: undefined, tlsFiles: new Map() };
    assert.deepEqual(kinds(diffBox(desired(plan), empty)), [
      'artifact api:2.0',
      'artifact job:1',
      'artifact web:1.0',
      'write-config /tmp/t/api/api.json',
      'write-config /tmp/t/job/job.json',
      'write-config /tmp/t/web/web.json',
      'apply-routes',
      'start api#1',
      'start job#1',
      'start web#1',
    ]);
  });

  test('nothing changed: nothing but the artifact checks', () => {
    assert.deepEqual(kinds(diffBox(desired(plan), applied(plan))).filter((k) => !k.startsWith('artifact')), []);
  });

  test('a config file changed: on_change reload signals, restart restarts, none only writes', () => {
    const next = planOf({ ...BASE, 'files/web.json': '{"title": "b"}\n', 'files/api.json': '{"greeting": "b"}\n', 'files/job.json': '{"x": 1}\n' });
    assert.deepEqual(kinds(diffBox(desired(next), applied(plan))).filter((k) => !k.startsWith('artifact')), [
      'write-config /tmp/t/api/api.json',
      'write-config /tmp/t/job/job.json',
      'write-config /tmp/t/web/web.json',
      'restart api#1: its config file /tmp/t/api/api.json changed (on_change: restart)',
      'signal web#1 SIGHUP',
    ]);
  });

  test('a file missing on disk is written; the instance that runs is not disturbed for it', () => {
    const observed = { ...applied(plan), files: new Map([...applied(plan).files].filter(([p]) => !p.includes('web'))) };
    assert.deepEqual(kinds(diffBox(desired(plan), observed)).filter((k) => !k.startsWith('artifact')), ['write-config /tmp/t/web/web.json']);
  });

  test('a new version or environment restarts that app only, saying what changed', () => {
    const next = planOf({ ...BASE, 'apps/api.yaml': BASE['apps/api.yaml']!.replace('"2.0"', '"2.1"'), 'apps/job.yaml': `${BASE['apps/job.yaml']}env: { X: 1 }\n` });
    assert.deepEqual(kinds(diffBox(desired(next), applied(plan))).filter((k) => !k.startsWith('artifact')), [
      'restart api#1: its version 2.0 → 2.1, env changed',
      'restart job#1: its env changed',
    ]);
  });

  test('a deleted deployment stops its instance after the proxy dropped it', () => {
    const { ['deployments/api-1.yaml']: _gone, ...rest } = BASE;
    const next = planOf(rest);
    assert.deepEqual(kinds(diffBox(desired(next), applied(plan))).filter((k) => !k.startsWith('artifact')), ['apply-routes', 'stop api#1: it is no longer deployed']);
  });

  test('a new deployment starts after the routes that lead to it', () => {
    const { ['deployments/web-1.yaml']: _gone, ...rest } = BASE;
    const before = planOf(rest);
    assert.deepEqual(kinds(diffBox(desired(plan), applied(before))).filter((k) => !k.startsWith('artifact')), ['write-config /tmp/t/web/web.json', 'apply-routes', 'start web#1']);
  });

  test('an app outside Glow (--except, glow dev): its files and routes, no process, and a word on changes', () => {
    const empty: ObservedBox = { instances: new Map(), files: new Map(), routes: undefined, tlsFiles: new Map() };
    assert.deepEqual(kinds(diffBox(desired(plan, ['web']), empty)).filter((k) => !k.startsWith('artifact') && !k.startsWith('write')), ['apply-routes', 'start api#1', 'start job#1']);
    const next = planOf({ ...BASE, 'files/web.json': '{"title": "b"}\n' });
    const observed = { ...applied(plan), instances: new Map([...applied(plan).instances].filter(([k]) => k !== 'web#1')) };
    assert.deepEqual(kinds(diffBox(desired(next, ['web']), observed)).filter((k) => !k.startsWith('artifact')), ['write-config /tmp/t/web/web.json', 'notify-change /tmp/t/web/web.json']);
  });
});
