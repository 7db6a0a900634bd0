/**
 * The quick start as a user runs it: the built `glow` CLI as a real child process, `glow up` on a copy of
 * examples/quickstart, then the user's moves — open the exposed URL, edit a config file, lose an instance, delete
 * a deployment, Ctrl-C — and `glow dev` beside `glow up` and on its own. Assertions are on what the user sees: the
 * HTTP answers, the terminal, `glow status`, the metrics text, and which processes exist (by PID and process group).
 *
 * The quick start's ports and config paths are fixed (they are in its YAML): the test takes a machine-wide lock
 * (machine-lock.ts), then checks that nothing else holds the ports.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { DevEnvironment } from '../../src/cli/dev.js';
import type { DevBoxStatus } from '../../src/box/devbox.js';
import { groupAlive, killGroup } from '../../src/box/supervisor.js';
import { sleep, until } from './fixture.js';
import { machineLock } from './machine-lock.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GLOW = join(ROOT, 'dist/src/cli/glow.js');
const PORTS = [8080, 8800, 9000, 9100, 9464, 19000, 19100];
const CONFIG_ROOT = '/tmp/glow-quickstart';

const work = mkdtempSync(join(tmpdir(), 'glow-quickstart-'));
const repo = join(work, 'quickstart');
const env = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: join(work, 'home'),
  XDG_STATE_HOME: join(work, 'state'),
  XDG_RUNTIME_DIR: join(work, 'run'),
  NO_COLOR: '1',
};
/** Every process group the test may leave behind: killed in after(). */
const groups = new Set<number>();
const children = new Set<ChildProcess>();


function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  assert.equal(r.status, 200, `${url}: ${r.status} ${await r.clone().text()}`);
  return (await r.json()) as T;
}

async function getText(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return r.text();
}

/** A `glow` command run to its end. */
function glow(...args: string[]) {
  const r = spawnSync(process.execPath, [GLOW, ...args], { encoding: 'utf8', env, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A long-running `glow` command (up, dev), with its output collected. */
class Running {
  readonly proc: ChildProcess;
  out = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, [GLOW, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.proc);
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  waitFor(re: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
    return until(`${re} in the output of glow:\n${this.out}`, () => re.exec(this.out) ?? undefined, timeoutMs);
  }

  /** Sends SIGINT (Ctrl-C) and waits for the exit. */
  async interrupt(timeoutMs = 15_000): Promise<{ code: number | null; ms: number }> {
    const t0 = Date.now();
    this.proc.kill('SIGINT');
    const r = await Promise.race([this.exited, sleep(timeoutMs).then(() => undefined)]);
    assert.ok(r, `glow did not exit within ${timeoutMs} ms of SIGINT:\n${this.out}`);
    return { code: r.code, ms: Date.now() - t0 };
  }
}

function status(): DevBoxStatus {
  const r = glow('status', '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as DevBoxStatus;
}

const pidOf = (st: DevBoxStatus, app: string) => st.instances.find((i) => i.app === app && i.activeState === 'active')?.mainPid;

/** A counter or gauge of the metrics text, by name and the labels it must have. */
function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

let unlock: (() => void) | undefined;

before(async () => {
  unlock = await machineLock('glow-quickstart-test', 180_000);
  const taken: number[] = [];
  for (const p of PORTS) if (await portTaken(p)) taken.push(p);
  assert.deepEqual(taken, [], `the quick start's ports must be free for this test; in use: ${taken.join(', ')} (is a glow up running?)`);
  rmSync(CONFIG_ROOT, { recursive: true, force: true });
  cpSync(join(ROOT, 'examples/quickstart'), repo, { recursive: true });
  for (const d of [env.HOME, env.XDG_STATE_HOME, env.XDG_RUNTIME_DIR]) mkdirSync(d, { recursive: true });
});

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const g of groups) killGroup(g, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
  if (unlock) rmSync(CONFIG_ROOT, { recursive: true, force: true });
  unlock?.();
});

describe('glow up on the quick start', { timeout: 120_000 }, () => {
  let up: Running;
  let all: number[] = [];

  test('the exposed URL answers through two proxy hops: exposure → web → its api listener → api', { timeout: 60_000 }, async () => {
    up = new Running(['up', repo]);
    await up.waitFor(/Ctrl-C stops everything/, 45_000);
    assert.match(up.out, /http:\/\/127\.0\.0\.1:8800\/ {2}→ web:8080/);
    assert.match(up.out, /metrics +http:\/\/127\.0\.0\.1:9464\/metrics/);
    assert.match(up.out, /try +edit .*files\/web\/web\.json: web gets SIGHUP and reads it again, no restart/);
    assert.match(up.out, /api: one instance on this machine, #1; #2 \(node-2, deployments\/api-2\.yaml\) folded into it/);

    type Page = { web: string; title: string; api: { api: string; greeting: string; quote: { by: string } } };
    const page = await until('the page with the api answer', async () => {
      const p = await getJson<Page>('http://127.0.0.1:8800/json');
      return p.api.api ? p : undefined;
    });
    assert.equal(page.web, 'web #1 on devbox');
    assert.equal(page.title, 'Hello from Glow');
    assert.equal(page.api.api, 'api #1 on devbox');
    assert.equal(page.api.greeting, 'Every service you require is on 127.0.0.1.');
    // The quotes external is down: its fallback, an app, answered.
    assert.equal(page.api.quote.by, 'quotes-cache #1 on devbox');
    assert.match(await getText('http://127.0.0.1:8800/'), /<h1>Hello from Glow<\/h1>/);

    const metrics = await getText('http://127.0.0.1:9464/metrics');
    assert.ok((metric(metrics, 'glow_proxy_connections_opened_total', { listener: 'www', service: 'web:8080' }) ?? 0) >= 1, 'the exposure hop');
    assert.ok((metric(metrics, 'glow_proxy_connections_opened_total', { listener: '19000', service: 'api:9000' }) ?? 0) >= 1, 'the listener hop');
    assert.equal(metric(metrics, 'glow_config_revision_info', { node: 'devbox' }), 1);
    assert.equal(metric(metrics, 'glow_instance_state', { app: 'web', instance: '1', state: 'active' }), 1);

    const text = glow('status');
    assert.equal(text.status, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /^node devbox {2}repository /);
    assert.match(text.stdout, /tcp 127\.0\.0\.1:8800/);
    assert.match(text.stdout, /web #1 +1\.0\.0 +active \(running\)/);
    const st = status();
    assert.deepEqual(st.instances.map((i) => [i.app, i.instance, i.activeState]).sort(), [
      ['api', 1, 'active'],
      ['quotes-cache', 1, 'active'],
      ['web', 1, 'active'],
      ['worker', 1, 'active'],
    ]);
    all = st.instances.map((i) => i.mainPid);
    for (const p of all) groups.add(p);
  });

  test('an edit of a config file reaches the running app without a restart', { timeout: 30_000 }, async () => {
    const before = pidOf(status(), 'web');
    writeFileSync(join(repo, 'files/web/web.json'), '{ "title": "Edited live", "api": "http://127.0.0.1:19000" }\n');
    await until('the new title', async () => (await getJson<{ title: string }>('http://127.0.0.1:8800/json')).title === 'Edited live');
    assert.equal(pidOf(status(), 'web'), before, 'the same web process');
    await up.waitFor(/web\.json changed: SIGHUP sent to web#1/);
    await up.waitFor(/web#1 +│ SIGHUP: read \/tmp\/glow-quickstart\/web\/web\.json again: title "Edited live"/);
    assert.equal(readFileSync(`${CONFIG_ROOT}/web/web.json`, 'utf8'), '{ "title": "Edited live", "api": "http://127.0.0.1:19000" }\n');
  });

  test('a killed instance is restarted', { timeout: 30_000 }, async () => {
    const old = pidOf(status(), 'api')!;
    process.kill(old, 'SIGKILL');
    const fresh = await until('a new api process', () => {
      const p = pidOf(status(), 'api');
      return p && p !== old ? p : undefined;
    });
    groups.add(fresh);
    await up.waitFor(/api#1 was killed by SIGKILL after [\d.]+s; starting it again in 1s/);
    await until('the api behind the page again', async () => (await getJson<{ api: { api?: string } }>('http://127.0.0.1:8800/json')).api.api === 'api #1 on devbox');
    assert.equal(metric(await getText('http://127.0.0.1:9464/metrics'), 'glow_instance_restarts_total', { app: 'api', instance: '1' }), 1);
  });

  test('deleting a deployment stops its instance', { timeout: 30_000 }, async () => {
    const worker = pidOf(status(), 'worker')!;
    rmSync(join(repo, 'deployments/worker-1.yaml'));
    await until('no worker in glow status', () => !status().instances.some((i) => i.app === 'worker'));
    assert.equal(groupAlive(worker), false, 'the worker\'s process group is gone');
    // (spawnSync above holds this process: the output may still be on its way)
    await up.waitFor(/stopping worker#1: it is no longer deployed/);
    await up.waitFor(/worker#1 +│ SIGTERM: stopping/);
  });

  test('Ctrl-C (SIGINT) stops everything and leaves no process behind', { timeout: 30_000 }, async (t) => {
    const st = status();
    const pids = st.instances.map((i) => i.mainPid).filter(Boolean);
    assert.equal(pids.length, 3);
    const { code, ms } = await up.interrupt();
    assert.equal(code, 0, up.out);
    t.diagnostic(`stopped in ${ms} ms`); // how long is for bench/, not for an assertion; the test's timeout bounds it
    for (const p of [...pids, ...all]) assert.equal(groupAlive(p), false, `process group ${p} is gone`);
    assert.equal(groupAlive(up.proc.pid!), false);
    assert.match(up.out, /SIGINT: stopping every instance/);
    assert.match(up.out, /glow +│ stopped\n$/);
    assert.equal(existsSync(join(env.XDG_RUNTIME_DIR, 'glow/up.sock')), false, 'the control socket is removed');
    for (const p of PORTS) assert.equal(await portTaken(p), false, `port ${p} is free again`);
  });
});

describe('a closed terminal', { timeout: 90_000 }, () => {
  test('closing the terminal that runs glow up (SIGHUP, then EIO on write) stops the box and leaves no process', { timeout: 60_000 }, async () => {
    // A real pseudo-terminal: script(1) runs glow up on its slave side; killing script closes the master, as
    // closing a terminal window does. The kernel hangs the terminal up: SIGHUP, then EIO on every write.
    const glowUp = `exec ${process.execPath} ${GLOW} up ${repo}`;
    const term = spawn('script', ['-qfec', glowUp, '/dev/null'], { env: { ...env, SHELL: '/bin/sh' }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(term);
    let out = '';
    term.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    await until(`the banner in the terminal:\n${out}`, () => /Ctrl-C stops everything/.test(out) || undefined, 45_000);
    const st = await until('every instance active', () => {
      const s = status();
      // (three or four: a test above deletes the worker's deployment)
      return s.instances.length >= 3 && s.instances.every((i) => i.activeState === 'active') ? s : undefined;
    });
    const pids = st.instances.map((i) => i.mainPid);
    for (const p of pids) groups.add(p);
    const box = st.devbox.pid;
    groups.add(box);
    term.kill('SIGKILL');
    await until('glow up gone', () => !groupAlive(box) && !pidAlive(box), 20_000);
    for (const p of pids) assert.equal(groupAlive(p), false, `process group ${p} is gone`);
    assert.equal(existsSync(join(env.XDG_RUNTIME_DIR, 'glow/up.sock')), false, 'it stopped the clean way: the control socket is removed');
    for (const p of PORTS) assert.equal(await portTaken(p), false, `port ${p} is free again`);
  });
});

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('glow dev', { timeout: 120_000 }, () => {
  test('beside `glow up --except web`: a working environment; the developer\'s web serves the exposure', { timeout: 60_000 }, async () => {
    const up = new Running(['up', repo, '--except', 'web']);
    await up.waitFor(/Ctrl-C stops everything/, 45_000);
    const dev = new Running(['dev', 'web', repo, '--json']);
    const line = (await dev.waitFor(/^\{.*\}$/m))[0];
    const d = JSON.parse(line) as DevEnvironment;
    assert.deepEqual(d.env, { GLOW_APP: 'web', GLOW_INSTANCE: '1', GLOW_NODE: 'devbox', GLOW_VERSION: '1.0.0' });
    assert.equal(d.cwd, join(repo, 'artifacts/web/1.0.0'), 'the developer\'s own files, not a copy');
    assert.deepEqual(d.listeners.map((l) => [l.listen, l.service, l.sharedWithGlowUp]), [['127.0.0.1:19000', 'api:9000', true]]);
    assert.deepEqual(d.files.map((f) => [f.path, f.onChange]), [['/tmp/glow-quickstart/web/web.json', 'reload']]);
    assert.equal(readFileSync(d.envFile, 'utf8'), 'GLOW_APP="web"\nGLOW_INSTANCE="1"\nGLOW_NODE="devbox"\nGLOW_VERSION="1.0.0"\n');
    assert.match(glow('status').stdout, /web #1 +1\.0\.0 +inactive \(outside glow\)/);

    // The developer runs the printed command line (here from a shell; an IDE would use the env file).
    const web = spawn('/bin/sh', ['-c', d.shell], { env: { PATH: env.PATH }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    groups.add(web.pid!);
    let webOut = '';
    web.stdout!.setEncoding('utf8').on('data', (s: string) => (webOut += s));
    const page = await until('the exposure served by the developer\'s web', async () => {
      const p = await getJson<{ web: string; api: { api?: string } }>('http://127.0.0.1:8800/json');
      return p.api.api ? p : undefined;
    });
    assert.equal(page.web, 'web #1 on devbox');
    assert.equal(page.api.api, 'api #1 on devbox');
    assert.match(webOut, /web #1 on devbox listening on :8080/);

    killGroup(web.pid!, 'SIGTERM');
    assert.equal((await dev.interrupt()).code, 0, dev.out);
    assert.equal((await up.interrupt()).code, 0, up.out);
    await until('the developer\'s web gone', () => !groupAlive(web.pid!), 5000);
  });

  test('on its own: the listeners of the app answer, and the printed command runs the app', { timeout: 60_000 }, async () => {
    // quotes-cache:9100, the fallback of the quotes external that api requires, played by a stub.
    const stub = createServer((_req, res) => res.end(JSON.stringify({ text: 'stubbed', by: 'the test' })));
    await new Promise<void>((r) => stub.listen(9100, '127.0.0.1', r));
    try {
      const dev = new Running(['dev', 'api', repo, '--json']);
      const d = JSON.parse((await dev.waitFor(/^\{.*\}$/m))[0]) as DevEnvironment;
      assert.deepEqual(d.listeners.map((l) => [l.listen, l.sharedWithGlowUp, l.upstreams]), [
        ['127.0.0.1:19100', false, ['quotes:80 127.0.0.1:9', 'fallback quotes-cache:9100 127.0.0.1:9100 (devbox)']],
      ]);
      // Its own listener, through its in-process proxy: the external is down, the fallback answers.
      assert.deepEqual(await getJson('http://127.0.0.1:19100/quote'), { text: 'stubbed', by: 'the test' });
      // Its config file is in place, and the printed command line runs the app in that environment.
      assert.match(readFileSync(`${CONFIG_ROOT}/api/api.json`, 'utf8'), /"greeting"/);
      const api = spawn('/bin/sh', ['-c', d.shell], { env: { PATH: env.PATH }, detached: true, stdio: 'ignore' });
      groups.add(api.pid!);
      const hello = await until('the api the developer runs', () => getJson<{ api: string; quote: { by: string } }>('http://127.0.0.1:9000/hello'));
      assert.deepEqual([hello.api, hello.quote.by], ['api #1 on devbox', 'the test']);
      killGroup(api.pid!, 'SIGTERM');
      assert.equal((await dev.interrupt()).code, 0, dev.out);
      await until('the api gone', () => !groupAlive(api.pid!), 5000);
      assert.equal(await portTaken(19100), false);
    } finally {
      stub.close();
      stub.closeAllConnections();
    }
  });
});
