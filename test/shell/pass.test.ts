/**
 * The pass (src/shell/pass.ts) with a runtime of its own: what happens to an invalid repository, one app's failure
 * blocking only that app, the catch-all's codes, and the status of a node. glowd's and the box's runtimes are
 * exercised with real systemd and real processes in test/systemd/ and test/box/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { GlowError } from '../../src/base/errors.js';
import type { Snapshot } from '../../src/config/model.js';
import { AgentMetrics } from '../../src/shell/metrics.js';
import { Pass } from '../../src/shell/pass.js';
import type { PassResult, PassRuntime, Rejection, StepApp } from '../../src/shell/pass.js';
import type { InstanceStatus, ProblemReport } from '../../src/shell/status.js';

const REPO: Record<string, string> = {
  'nodes/node-a.yaml': 'address: 10.0.0.1\n',
  'apps/web.yaml': 'image: web\nversion: "1.0"\nprovides: [8080/http]\n',
  'apps/api.yaml': 'image: api\nversion: "2.0"\nprovides: [9000/http]\n',
  'deployments/web-1.yaml': 'app: web\nnode: node-a\n',
  'deployments/api-1.yaml': 'app: api\nnode: node-a\n',
};

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function repoWith(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'glow-pass-'));
  roots.push(root);
  write(root, files);
  return root;
}

function write(root: string, files: Record<string, string>): void {
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
}

interface FakeStep {
  readonly app: string;
  readonly what: 'prepare' | 'start';
}

/** A runtime whose plan is the snapshot's apps and whose steps prepare, then start, each app. */
class FakeRuntime implements PassRuntime<string[], undefined, FakeStep> {
  readonly executed: string[] = [];
  readonly rejections: Rejection[] = [];
  readonly failures: ProblemReport[] = [];
  readonly results: (PassResult<string[], FakeStep> | undefined)[] = [];
  /** app → what its prepare step throws. */
  throws = new Map<string, unknown>();
  unplannable = false;

  plan(snapshot: Snapshot) {
    if (this.unplannable) throw new GlowError('GLOW_E_NODE_UNKNOWN', 'there is no node `node-x`');
    return { plan: [...snapshot.apps.keys()].sort(), conflicts: [] };
  }
  async observe() {
    return undefined;
  }
  diff({ plan }: { plan: string[] }): FakeStep[] {
    return [...plan.map((app) => ({ app, what: 'prepare' as const })), ...plan.map((app) => ({ app, what: 'start' as const }))];
  }
  appOf(step: FakeStep): StepApp {
    return { app: step.app, blocks: step.what === 'prepare', held: step.what === 'start' };
  }
  async execute(step: FakeStep) {
    this.executed.push(`${step.what} ${step.app}`);
    const e = step.what === 'prepare' ? this.throws.get(step.app) : undefined;
    if (e !== undefined) throw e;
  }
  unitOf(step: FakeStep) {
    return step.app;
  }
  instances(): InstanceStatus[] {
    return [];
  }
  rejected(r: Rejection) {
    this.rejections.push(r);
  }
  stepFailed(report: ProblemReport) {
    this.failures.push(report);
  }
  passed(result: PassResult<string[], FakeStep> | undefined) {
    this.results.push(result);
  }
}

function passOf(repo: string, rt: FakeRuntime) {
  return new Pass({ repo, debounceMs: 10, tickMs: 60_000, onError: (e) => assert.fail(e as Error) }, rt, new AgentMetrics('node-a'));
}

const statusOf = (pass: Pass<string[], undefined, FakeStep>) => pass.status({ node: 'node-a', proxy: undefined, sinks: [] });

describe('the pass', () => {
  test('an invalid repository: the last good snapshot keeps being applied, every error is reported', async () => {
    const repo = repoWith(REPO);
    const rt = new FakeRuntime();
    const pass = passOf(repo, rt);
    await pass.run('start');
    const good = statusOf(pass).revision;
    assert.ok(good);
    assert.deepEqual(rt.executed, ['prepare api', 'prepare web', 'start api', 'start web']);

    write(repo, { 'deployments/web-1.yaml': 'app: wbe\nnode: node-a\n', 'deployments/api-1.yaml': 'app: api\nnode: node-b\n' });
    rt.executed.length = 0;
    await pass.run('change');
    const st = statusOf(pass);
    assert.equal(st.revision, good, 'the last good revision stays applied');
    assert.notEqual(st.loadedRevision, good);
    assert.deepEqual(st.configErrors.map((e) => [e.code, e.file]), [
      ['GLOW_E_REF_UNKNOWN', 'deployments/api-1.yaml'],
      ['GLOW_E_REF_UNKNOWN', 'deployments/web-1.yaml'],
    ]);
    assert.deepEqual(rt.executed, ['prepare api', 'prepare web', 'start api', 'start web'], 'still reconciled, nothing stopped');
    assert.deepEqual(rt.rejections.map((r) => [r.kind, r.changed, r.keeping, r.errors.length]), [['errors', true, good, 2]]);

    await pass.run('tick');
    assert.deepEqual(rt.rejections.map((r) => r.changed), [true, false], 'the same revision again is not news');
  });

  test('a repository that cannot be planned here is invalid too: reported, the last good plan stays', async () => {
    const rt = new FakeRuntime();
    const pass = passOf(repoWith(REPO), rt);
    await pass.run('start');
    const good = statusOf(pass).revision;
    rt.unplannable = true;
    await pass.run('tick');
    const st = statusOf(pass);
    assert.equal(st.revision, good);
    assert.deepEqual(st.configErrors.map((e) => e.code), ['GLOW_E_NODE_UNKNOWN']);
    assert.equal(rt.rejections[0]?.kind, 'unplannable');
    rt.unplannable = false;
    await pass.run('tick');
    assert.deepEqual(statusOf(pass).configErrors, []);
  });

  test('nothing good read yet: nothing is applied, the errors are reported', async () => {
    const rt = new FakeRuntime();
    const pass = passOf(repoWith({ ...REPO, 'apps/web.yaml': 'image: [\n' }), rt);
    await pass.run('start');
    assert.equal(statusOf(pass).revision, undefined);
    assert.deepEqual(rt.executed, []);
    assert.deepEqual(rt.results, [undefined]);
    assert.equal(rt.rejections[0]?.keeping, undefined);
  });

  test("one app's failure blocks only that app", async () => {
    const rt = new FakeRuntime();
    rt.throws.set('api', new GlowError('GLOW_E_ARTIFACT_FETCH', 'artifact api 2.0: connection refused'));
    const pass = passOf(repoWith(REPO), rt);
    await pass.run('start');
    assert.deepEqual(rt.executed, ['prepare api', 'prepare web', 'start web']);
    assert.deepEqual([...rt.results[0]!.blocked], [['api', 'artifact api 2.0: connection refused']]);
    assert.deepEqual(statusOf(pass).applyErrors.map((e) => [e.code, e.unit]), [['GLOW_E_ARTIFACT_FETCH', 'api']]);
  });

  test('the catch-all: a raw errno reaches status as GLOW_E_APPLY with its errno, never as a code', async () => {
    const rt = new FakeRuntime();
    rt.throws.set('web', Object.assign(new Error("EACCES: permission denied, open '/etc/web/web.toml'"), { code: 'EACCES', errno: -13 }));
    rt.throws.set('api', 'a string thrown');
    const pass = passOf(repoWith(REPO), rt);
    await pass.run('start');
    const errors = statusOf(pass).applyErrors;
    assert.deepEqual(
      errors.map((e) => [e.code, e.errno, e.unit]),
      [
        ['GLOW_E_APPLY', undefined, 'api'],
        ['GLOW_E_APPLY', 'EACCES', 'web'],
      ],
    );
    assert.match(errors[1]!.message, /permission denied/);
    assert.deepEqual(rt.failures, errors, 'the runtime is told what status shows');
  });

  test('a halted pass carries out no further step', async () => {
    const rt = new FakeRuntime();
    const pass = passOf(repoWith(REPO), rt);
    const execute = rt.execute.bind(rt);
    rt.execute = async (step) => {
      await execute(step);
      if (rt.executed.length === 2) pass.halt();
    };
    await pass.run('start');
    assert.deepEqual(rt.executed, ['prepare api', 'prepare web']);
    assert.equal(rt.results[0]?.halted, true);
    await pass.run('again');
    assert.equal(rt.executed.length, 2, 'no pass after a halt');
  });
});
