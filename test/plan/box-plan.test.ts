/**
 * devPlan() and devAppPlan(): the dev box's plan from a snapshot. Pure, so these run in milliseconds; the quick
 * start test (quickstart.test.ts) runs the same plans with real processes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadRepository } from '../../src/config/load.js';
import type { Snapshot } from '../../src/config/model.js';
import { memorySource, readRepo } from '../../src/config/source.js';
import type { RepoSource } from '../../src/config/source.js';
import { devAppPlan, devPlan, DEV_NODE } from '../../src/plan/box-plan.js';
import { planNode } from '../../src/plan/node-plan.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function load(source: RepoSource): Snapshot {
  const r = loadRepository(source);
  assert.ok(r.ok, r.ok ? '' : r.errors.map(String).join('\n'));
  return r.snapshot;
}

const TWO_NODES: Record<string, string> = {
  'nodes/node-a.yaml': 'address: 10.0.0.1\ntags: [edge]\n',
  'nodes/node-b.yaml': 'address: 10.0.0.2\n',
};

describe('devPlan: the whole repository on one machine', () => {
  const source = readRepo(join(ROOT, 'examples/quickstart'));
  const snapshot = load(source);
  const dp = devPlan(snapshot, { source });

  test('one instance of every deployed app, on the virtual node, with its GLOW_* environment', () => {
    assert.equal(dp.mode, 'box');
    assert.deepEqual(dp.conflicts, []);
    assert.equal(dp.plan.node, DEV_NODE);
    assert.equal(dp.plan.address, '127.0.0.1');
    assert.deepEqual(dp.plan.instances.map((i) => `${i.app}#${i.instance}`), ['api#1', 'quotes-cache#1', 'web#1', 'worker#1']);
    const web = dp.plan.instances.find((i) => i.app === 'web')!;
    assert.deepEqual(
      Object.fromEntries(Object.entries(web.env).filter(([k]) => k.startsWith('GLOW_'))),
      { GLOW_APP: 'web', GLOW_VERSION: '1.0.0', GLOW_INSTANCE: '1', GLOW_NODE: 'devbox' },
    );
  });

  test('the instances that one machine cannot hold are folded into the lowest, and said so', () => {
    assert.deepEqual(dp.folded, [
      { app: 'api', kept: { instance: 1, node: 'node-1', file: 'deployments/api-1.yaml' }, folded: [{ instance: 2, node: 'node-2', file: 'deployments/api-2.yaml' }] },
    ]);
  });

  test('listeners lead to the local instances; externals keep their endpoints, fallbacks follow', () => {
    const l19000 = dp.plan.listeners.find((l) => l.port === 19000)!;
    assert.deepEqual(l19000.for, ['web', 'worker']);
    assert.deepEqual(l19000.groups.map((g) => g.upstreams), [[{ node: 'devbox', host: '127.0.0.1', port: 9000, local: true, instance: 1 }]]);
    const l19100 = dp.plan.listeners.find((l) => l.port === 19100)!;
    assert.deepEqual(
      l19100.groups.map((g) => [g.service, g.kind, g.upstreams.map((u) => `${u.host}:${u.port}`)]),
      [
        ['quotes:80', 'external', ['127.0.0.1:9']],
        ['quotes-cache:9100', 'app', ['127.0.0.1:9100']],
      ],
    );
  });

  test('every exposure is served on 127.0.0.1; metrics on 127.0.0.1 and glow.yaml\'s port', () => {
    assert.deepEqual(dp.plan.exposures.map((e) => [e.name, e.bind, e.port, e.groups[0]!.upstreams.map((u) => u.host)]), [['www', '127.0.0.1', 8800, ['127.0.0.1']]]);
    assert.equal(dp.plan.metricsListen, '127.0.0.1:9464');
    assert.equal(devPlan(snapshot, { metricsListen: '127.0.0.1:9999' }).plan.metricsListen, '127.0.0.1:9999');
  });

  test('config files go to their real paths', () => {
    assert.deepEqual(dp.plan.files.map((f) => [f.app, f.path, f.onChange]), [
      ['api', '/tmp/glow-quickstart/api/api.json', 'restart'],
      ['web', '/tmp/glow-quickstart/web/web.json', 'reload'],
    ]);
  });

  test('the lowest instance number is kept, whatever the order of the files', () => {
    const s = load(
      memorySource({
        ...TWO_NODES,
        'apps/web.yaml': 'image: web\nversion: "1"\nprovides: [8080/http]\n',
        'deployments/a.yaml': 'app: web\nnode: node-a\ninstance: 7\n',
        'deployments/b.yaml': 'app: web\nnode: node-b\ninstance: 3\n',
      }),
    );
    const p = devPlan(s);
    assert.deepEqual(p.plan.instances.map((i) => [i.app, i.instance, i.env.GLOW_INSTANCE]), [['web', 3, '3']]);
    assert.deepEqual(p.folded.map((f) => [f.kept.instance, f.folded.map((x) => `${x.instance}@${x.node}`)]), [[3, ['7@node-a']]]);
  });

  test('--node: that node\'s plan, exactly as glowd plans it (metrics on loopback)', () => {
    const p = devPlan(snapshot, { node: 'node-2', source });
    assert.equal(p.mode, 'node');
    assert.deepEqual({ ...p.plan, metricsListen: snapshot.settings.metricsListen }, planNode(snapshot, 'node-2'));
    assert.deepEqual(p.folded, []);
  });
});

describe('devPlan: what collides only when everything shares one machine', () => {
  const conflicts = (files: Record<string, string>, withSource = true) => {
    const source = memorySource({ ...TWO_NODES, ...files });
    return devPlan(load(source), withSource ? { source } : {}).conflicts.map(String);
  };

  test('two apps providing one port: GLOW_E_PORT_CONFLICT at the deployment that brings the second', () => {
    const files = {
      'apps/a.yaml': 'image: a\nversion: "1"\nprovides: [8080/http]\n',
      'apps/b.yaml': 'image: b\nversion: "1"\nprovides:\n  - 9000/tcp\n  - 8080/tcp\n',
      'deployments/a.yaml': 'app: a\nnode: node-a\n',
      'deployments/b.yaml': 'app: b\nnode: node-b\n',
    };
    assert.deepEqual(conflicts(files), ['deployments/b.yaml:2:7 GLOW_E_PORT_CONFLICT b #1 would bind port 8080/tcp on devbox, which a #1 (deployments/a.yaml) binds too']);
    // Without the repository's bytes, the same error at the top of the file.
    assert.deepEqual(conflicts(files, false), ['deployments/b.yaml:1:1 GLOW_E_PORT_CONFLICT b #1 would bind port 8080/tcp on devbox, which a #1 (deployments/a.yaml) binds too']);
  });

  test('one local port leading to two services', () => {
    const out = conflicts({
      'apps/x.yaml': 'image: x\nversion: "1"\nprovides: [80/http]\n',
      'apps/y.yaml': 'image: y\nversion: "1"\nprovides: [81/http]\n',
      'apps/a.yaml': 'image: a\nversion: "1"\nrequires: [x:80 -> 15000]\n',
      'apps/b.yaml': 'image: b\nversion: "1"\nrequires:\n  - y:81 -> 15000\n',
      'deployments/x.yaml': 'app: x\nnode: node-a\n',
      'deployments/y.yaml': 'app: y\nnode: node-b\n',
      'deployments/a.yaml': 'app: a\nnode: node-a\n',
      'deployments/b.yaml': 'app: b\nnode: node-b\n',
    });
    assert.deepEqual(out, ['apps/b.yaml:4:5 GLOW_E_LOCAL_PORT_CONFLICT local port 15000 on devbox leads to `y:81` here but to `x:80` in apps/a.yaml; use another local port']);
  });

  test('a local port equal to a port that another node\'s app provides, or an exposure binds', () => {
    const out = conflicts({
      'apps/api.yaml': 'image: api\nversion: "1"\nprovides: [9000/http]\n',
      'apps/web.yaml': 'image: web\nversion: "1"\nprovides: [8080/http]\nrequires: [api:9000 -> 8800]\n',
      'apps/job.yaml': 'image: job\nversion: "1"\nrequires: [api:9000 -> 8080]\n',
      'exposures/www.yaml': 'service: web:8080\nport: 8800\nnodes: [node-b]\n',
      'deployments/api.yaml': 'app: api\nnode: node-a\n',
      'deployments/web.yaml': 'app: web\nnode: node-a\n',
      'deployments/job.yaml': 'app: job\nnode: node-b\n',
    });
    assert.equal(out.length, 2, out.join('\n'));
    assert.match(out[0]!, /^apps\/job\.yaml:3:\d+ GLOW_E_LOCAL_PORT_TAKEN local port 8080 on devbox is already bound by web #1 \(deployments\/web\.yaml\)/);
    assert.match(out[1]!, /^apps\/web\.yaml:4:\d+ GLOW_E_LOCAL_PORT_TAKEN local port 8800 on devbox is already bound by exposure `www` \(exposures\/www\.yaml\)/);
  });

  test('two exposures of different nodes on one port', () => {
    const out = conflicts({
      'apps/a.yaml': 'image: a\nversion: "1"\nprovides: [80/tcp]\n',
      'exposures/one.yaml': 'service: a:80\nport: 2222\nnodes: [node-a]\n',
      'exposures/two.yaml': 'service: a:80\nport: 2222\nnodes: [node-b]\n',
    });
    assert.deepEqual(out, ['exposures/two.yaml:2:7 GLOW_E_EXPOSURE_CONFLICT port 2222 on devbox is already bound by exposure `one` (exposures/one.yaml); two exposures share a port only when both are http with distinct hosts']);
  });

  test('two apps\' config files at one path with other content; the same content is fine', () => {
    const base = {
      'apps/a.yaml': 'image: a\nversion: "1"\nconfig: { source: files/a.conf, path: /etc/shared/app.conf }\n',
      'apps/b.yaml': 'image: b\nversion: "1"\nconfig: { source: files/b.conf, path: /etc/shared/app.conf }\n',
      'deployments/a.yaml': 'app: a\nnode: node-a\n',
      'deployments/b.yaml': 'app: b\nnode: node-b\n',
      'files/a.conf': 'x = 1\n',
    };
    assert.deepEqual(conflicts({ ...base, 'files/b.conf': 'x = 1\n' }), []);
    const out = conflicts({ ...base, 'files/b.conf': 'x = 2\n' });
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^apps\/b\.yaml:3:\d+ GLOW_E_CONFIG_PATH_CONFLICT `\/etc\/shared\/app\.conf` is also the config path of `a` \(files\/a\.conf\), with other content/);
  });
});

describe('devAppPlan: the environment of one app', () => {
  const source = readRepo(join(ROOT, 'examples/quickstart'));
  const snapshot = load(source);

  test('its instance, the listeners it requires (from the box), its config files; no exposure', () => {
    const p = devAppPlan(snapshot, 'web', { source });
    assert.equal(p.mode, 'app');
    assert.deepEqual(p.plan.instances.map((i) => `${i.app}#${i.instance}`), ['web#1']);
    assert.deepEqual(p.plan.listeners.map((l) => [l.port, l.for, l.groups[0]!.upstreams.map((u) => `${u.host}:${u.port}`)]), [[19000, ['web'], ['127.0.0.1:9000']]]);
    assert.deepEqual(p.plan.files.map((f) => f.path), ['/tmp/glow-quickstart/web/web.json']);
    assert.deepEqual(p.plan.exposures, []);
  });

  test('--remote: the services it requires on the cluster\'s nodes', () => {
    const p = devAppPlan(snapshot, 'web', { source, remote: true });
    assert.equal(p.plan.node, 'devbox');
    assert.deepEqual(
      p.plan.listeners[0]!.groups[0]!.upstreams.map((u) => [u.node, `${u.host}:${u.port}`, u.local]),
      [
        ['node-1', '10.0.0.11:9000', false],
        ['node-2', '10.0.0.12:9000', false],
      ],
    );
  });

  test('an app without a deployment still has an environment', () => {
    const s = load(
      memorySource({
        ...TWO_NODES,
        'apps/api.yaml': 'image: api\nversion: "1"\nprovides: [9000/http]\n',
        'apps/new.yaml': 'image: new\nversion: "0.1"\nrequires: [api:9000 -> 19000]\n',
        'deployments/api.yaml': 'app: api\nnode: node-b\n',
      }),
    );
    const p = devAppPlan(s, 'new');
    assert.deepEqual(p.plan.instances.map((i) => [i.app, i.instance, i.env.GLOW_NODE]), [['new', 1, 'devbox']]);
    assert.deepEqual(p.plan.listeners.map((l) => `${l.port} → ${l.groups[0]!.upstreams.map((u) => `${u.host}:${u.port}`)}`), ['19000 → 127.0.0.1:9000']);
  });

  test('an unknown app is GLOW_E_DEVBOX_APP_UNKNOWN, with a suggestion', () => {
    assert.throws(() => devAppPlan(snapshot, 'wbe'), { code: 'GLOW_E_DEVBOX_APP_UNKNOWN', message: 'there is no app `wbe` (no apps/wbe.yaml); did you mean `web`?' });
    assert.throws(() => devAppPlan(snapshot, 'quotes'), { code: 'GLOW_E_DEVBOX_APP_UNKNOWN', message: /`quotes` is an external, not an app/ });
  });
});
