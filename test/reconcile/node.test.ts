/**
 * reconcile(): the difference between a plan and what a node runs, for each kind of change. Pure, so these run
 * in milliseconds; the same behaviours are exercised on a real systemd in test/systemd/.
 */
import { DEFAULT_PATHS } from '../../src/base/paths.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { loadRepository } from '../../src/config/load.js';
import { memorySource } from '../../src/config/source.js';
import { reconcile, storePathOf } from '../../src/reconcile/node.js';
import type { ObservedNode, Step } from '../../src/reconcile/node.js';
import { renderRoutes } from '../../src/render/routes.js';
import { renderUnits } from '../../src/render/units.js';
import { planNode } from '../../src/plan/node-plan.js';
import type { NodePlan } from '../../src/plan/node-plan.js';

const BASE: Record<string, string> = {
  'glow.yaml': 'artifacts: /srv/artifacts\n',
  'nodes/node-a.yaml': 'address: 10.0.0.1\n',
  'apps/web.yaml': 'image: web\nversion: "1.0"\nruntime: exec\ncommand: [bin/web]\nprovides: [8080/http]\nrequires: [api:9000 -> 19000]\nconfig: { source: files/web.toml, path: /etc/web/web.toml, on_change: reload }\n',
  'apps/api.yaml': 'image: api\nversion: "2.0"\nprovides: [9000/http]\nconfig: { source: files/api.toml, path: /etc/api/api.toml }\n',
  'deployments/web-1.yaml': 'app: web\nnode: node-a\n',
  'deployments/api-1.yaml': 'app: api\nnode: node-a\n',
  'files/web.toml': 'a = 1\n',
  'files/api.toml': 'b = 1\n',
};

function planOf(files: Record<string, string>): NodePlan {
  const r = loadRepository(memorySource(files));
  assert.ok(r.ok, r.ok ? '' : r.errors.map(String).join('\n'));
  return planNode(r.snapshot, 'node-a');
}

function desiredOf(plan: NodePlan) {
  return { plan, units: renderUnits(plan, DEFAULT_PATHS), routes: renderRoutes(plan) };
}

/** What a node looks like after it applied `plan` completely, every unit active since `since` (ms). */
function appliedNode(plan: NodePlan, since = 1_000, written = 500): ObservedNode {
  const d = desiredOf(plan);
  const units = new Map([...d.units.wants.keys()].map((k) => [k.split('/').pop()!, { activeState: 'active', activeEnterUs: since * 1000 }]));
  return {
    unitFiles: new Map([...d.units.files].map(([k, content]) => [k, { content, mtimeMs: written }])),
    wants: new Map(d.units.wants),
    units,
    configFiles: new Map(plan.files.map((f) => [storePathOf(DEFAULT_PATHS, f), { sha256: f.sha256, mtimeMs: written }])),
    routes: d.routes,
  };
}

const kinds = (steps: Step[]) => steps.filter((s) => s.kind !== 'ensure-artifact').map((s) => `${s.kind}${'unit' in s ? ` ${s.unit}` : 'name' in s ? ` ${s.name}` : 'units' in s ? ` ${s.units.join(',')}` : ''}`);

describe('reconcile', () => {
  test('a fresh node: files, routes, units, one daemon-reload, then the proxy before the instances', () => {
    const plan = planOf(BASE);
    const empty: ObservedNode = { unitFiles: new Map(), wants: new Map(), units: new Map(), configFiles: new Map(), routes: undefined };
    const steps = reconcile(desiredOf(plan), empty, DEFAULT_PATHS);
    assert.deepEqual(steps[0], { kind: 'ensure-artifact', app: 'web', image: 'web', version: '1.0' });
    assert.deepEqual(kinds(steps), [
      'write-config',
      'write-config',
      'write-routes',
      'write-unit glow.target',
      'write-unit glow-proxy.service',
      'write-unit glow-api@.service',
      'write-unit glow-web@.service',
      'link-want multi-user.target.wants/glow.target',
      'link-want glow.target.wants/glow-proxy.service',
      'link-want glow.target.wants/glow-api@1.service',
      'link-want glow.target.wants/glow-web@1.service',
      'daemon-reload',
      'start glow-proxy.service',
      'start glow-api@1.service',
      'start glow-web@1.service',
      'start glow.target',
    ]);
    assert.equal(steps.filter((s) => s.kind === 'daemon-reload').length, 1);
  });

  test('nothing changed: nothing to do (restarting glowd restarts nothing)', () => {
    const plan = planOf(BASE);
    assert.deepEqual(kinds(reconcile(desiredOf(plan), appliedNode(plan), DEFAULT_PATHS)), []);
  });

  test('a new version rewrites the template and restarts that app only, one at a time', () => {
    const before = planOf(BASE);
    const after = planOf({ ...BASE, 'apps/api.yaml': BASE['apps/api.yaml']!.replace('2.0', '2.1') });
    assert.deepEqual(kinds(reconcile(desiredOf(after), appliedNode(before), DEFAULT_PATHS)), [
      'write-unit glow-api@.service',
      'daemon-reload',
      'rolling-restart glow-api@1.service',
    ]);
  });

  test('an instance still running an older template (glowd died mid-roll) is restarted', () => {
    const plan = planOf(BASE);
    const node = appliedNode(plan, 1_000, 500);
    const unitFiles = new Map(node.unitFiles);
    unitFiles.set('glow-web@.service', { ...unitFiles.get('glow-web@.service')!, mtimeMs: 2_000 });
    assert.deepEqual(kinds(reconcile(desiredOf(plan), { ...node, unitFiles }, DEFAULT_PATHS)), ['rolling-restart glow-web@1.service']);
  });

  test('a config file with on_change reload: rewritten, then signalled, no restart', () => {
    const before = planOf(BASE);
    const after = planOf({ ...BASE, 'files/web.toml': 'a = 2\n' });
    const steps = reconcile(desiredOf(after), appliedNode(before), DEFAULT_PATHS);
    assert.deepEqual(kinds(steps), ['write-config', 'signal glow-web@1.service']);
    assert.equal(steps.find((s) => s.kind === 'signal' && s.signal === 'SIGHUP') !== undefined, true);
  });

  test('a config file with on_change restart (the default): rewritten, then a rolling restart', () => {
    const before = planOf(BASE);
    const after = planOf({ ...BASE, 'files/api.toml': 'b = 2\n' });
    assert.deepEqual(kinds(reconcile(desiredOf(after), appliedNode(before), DEFAULT_PATHS)), ['write-config', 'rolling-restart glow-api@1.service']);
  });

  test('a new upstream changes only the routes: the proxy reloads, nothing restarts', () => {
    const files = { ...BASE, 'nodes/node-b.yaml': 'address: 10.0.0.2\n', 'deployments/api-2.yaml': 'app: api\nnode: node-b\n' };
    assert.deepEqual(kinds(reconcile(desiredOf(planOf(files)), appliedNode(planOf(BASE)), DEFAULT_PATHS)), ['write-routes', 'reload-proxy']);
  });

  test('a deleted deployment: retired while it runs, its files removed once it stopped', () => {
    const before = planOf(BASE);
    const files = { ...BASE };
    delete files['deployments/api-1.yaml'];
    const after = planOf(files);
    const running = appliedNode(before);
    // The proxy drops it first (web's listener to api:9000 had it as its local upstream); its config file stays
    // while it runs.
    assert.deepEqual(kinds(reconcile(desiredOf(after), running, DEFAULT_PATHS)), ['write-routes', 'reload-proxy', 'retire glow-api@1.service']);
    const units = new Map(running.units);
    units.set('glow-api@1.service', { activeState: 'inactive', activeEnterUs: 0 });
    const stopped = { ...running, units, routes: renderRoutes(after) };
    assert.deepEqual(kinds(reconcile(desiredOf(after), stopped, DEFAULT_PATHS)), [
      'remove-config',
      'unlink-want glow.target.wants/glow-api@1.service',
      'remove-unit glow-api@.service',
      'daemon-reload',
    ]);
  });

  test('a failed instance is started again; the other is left alone', () => {
    const plan = planOf(BASE);
    const node = appliedNode(plan);
    const units = new Map(node.units);
    units.set('glow-web@1.service', { activeState: 'failed', activeEnterUs: 1_000_000 });
    assert.deepEqual(kinds(reconcile(desiredOf(plan), { ...node, units }, DEFAULT_PATHS)), ['start glow-web@1.service']);
  });

  test('an instance that systemd is restarting after a crash is left to systemd', () => {
    const plan = planOf(BASE);
    const node = appliedNode(plan, 1_000, 500);
    const units = new Map(node.units);
    units.set('glow-web@1.service', { activeState: 'activating', activeEnterUs: 0 });
    const unitFiles = new Map(node.unitFiles);
    unitFiles.set('glow-web@.service', { ...unitFiles.get('glow-web@.service')!, mtimeMs: 2_000 });
    assert.deepEqual(kinds(reconcile(desiredOf(plan), { ...node, units, unitFiles }, DEFAULT_PATHS)), []);
  });

  test('a stopped proxy is started before anything else starts', () => {
    const plan = planOf(BASE);
    const node = appliedNode(plan);
    const units = new Map(node.units);
    units.delete('glow-proxy.service');
    units.set('glow-api@1.service', { activeState: 'inactive', activeEnterUs: 0 });
    assert.deepEqual(kinds(reconcile(desiredOf(plan), { ...node, units }, DEFAULT_PATHS)), ['start glow-proxy.service', 'start glow-api@1.service']);
  });

  test('TLS files: delivered before the routes that name them by path; a new certificate changes no route; unused ones go last', () => {
    const cert = (cn: string) => `-----BEGIN CERTIFICATE-----\n${cn}\n-----END CERTIFICATE-----\n`;
    // glow check parses the PEM (test/cases/exposure-tls); reconcile only reads the plan, built here directly.
    const plan0 = planOf(BASE);
    const withTls = (crt: string): NodePlan => ({
      ...plan0,
      exposures: [exposureOf(plan0)],
      tlsFiles: [
        { source: 'files/tls/www.crt', sha256: sha(crt) },
        { source: 'files/tls/www.key', sha256: sha('key') },
      ],
    });
    const plan = withTls(cert('one'));
    const routes = JSON.parse(renderRoutes(plan)) as { exposures: { tls: unknown }[] };
    assert.deepEqual(routes.exposures[0]!.tls, { cert: '/var/lib/glow/tls/files/tls/www.crt', key: '/var/lib/glow/tls/files/tls/www.key' }, 'paths, never key material');
    const applied = appliedNode(plan0);
    const fresh = reconcile(desiredOf(plan), applied, DEFAULT_PATHS);
    assert.deepEqual(kinds(fresh), ['write-tls', 'write-tls', 'write-routes', 'reload-proxy']);
    assert.deepEqual(
      fresh.filter((s) => s.kind === 'write-tls').map((s) => (s as { storePath: string }).storePath),
      ['/var/lib/glow/tls/files/tls/www.crt', '/var/lib/glow/tls/files/tls/www.key'],
    );
    const delivered: ObservedNode = {
      ...applied,
      routes: desiredOf(plan).routes,
      tlsFiles: new Map(plan.tlsFiles.map((f) => [`/var/lib/glow/tls/${f.source}`, { sha256: f.sha256 }])),
    };
    assert.deepEqual(kinds(reconcile(desiredOf(plan), delivered, DEFAULT_PATHS)), [], 'nothing changed');
    const renewed = withTls(cert('two'));
    assert.deepEqual(kinds(reconcile(desiredOf(renewed), delivered, DEFAULT_PATHS)), ['write-tls'], 'a renewed certificate: only the file (the proxy watches it)');
    const wrongOwner: ObservedNode = { ...delivered, tlsFiles: new Map([...delivered.tlsFiles!].map(([k, v], i) => [k, i === 1 ? { sha256: '' } : v])) };
    assert.deepEqual(kinds(reconcile(desiredOf(plan), wrongOwner, DEFAULT_PATHS)), ['write-tls'], 'a file with the wrong owner or mode is written again');
    const gone = reconcile(desiredOf(plan0), delivered, DEFAULT_PATHS);
    assert.deepEqual(kinds(gone), ['write-routes', 'reload-proxy', 'remove-tls', 'remove-tls'], 'files go after the reload that stops naming them');
  });
});

function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function exposureOf(plan: NodePlan): NodePlan['exposures'][number] {
  return {
    name: 'www',
    bind: '0.0.0.0',
    port: 443,
    protocol: 'http',
    service: 'web:8080',
    hosts: [],
    tls: { cert: { repo: 'files/tls/www.crt' }, key: { repo: 'files/tls/www.key' } },
    accessLog: false,
    limits: { headBytes: 65536, bodyBytes: 0 },
    trustedProxies: [],
    policy: plan.listeners[0]!.policy,
    groups: plan.listeners[0]!.groups,
  };
}
