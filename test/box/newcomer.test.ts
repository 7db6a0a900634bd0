/**
 * What a newcomer hits with `glow up`, as they met it: one box, run as the user `nobody` (the box is meant for
 * unprivileged users), on a small repository whose ports are chosen free at run time. Each test is one finding:
 * a port the box cannot bind, a version with no artifact, a config directory that is not writable, `glow logs`
 * and `glow dev` beside the box, and the smaller ones. Assertions are on what the user sees: the terminal,
 * `glow status` (text, JSON and exit status), the HTTP answers.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { BoxRepo, freePort, NOBODY, until } from './fixture.js';
import type { Running, StatusJson } from './fixture.js';

const repo = new BoxRepo('glow-newcomer-', { uid: NOBODY });
after(() => repo.cleanup());

const ports = { metrics: 0, web: 0, api: 0, www: 0, lapi: 0, lbusy: 0 };
let taken: Server;
let busy: Server;
let up: Running;

const inst = (st: StatusJson, app: string) => st.instances.find((i) => i.app === app);
const get = async (port: number) => (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).text();

before(async () => {
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  // Someone else listens on the exposure's port (another dev server, say).
  taken = createServer((s) => s.end('not glow\n'));
  await new Promise<void>((r) => taken.listen(ports.www, '127.0.0.1', r));
  busy = createServer((s) => s.end('not glow either\n'));
  await new Promise<void>((r) => busy.listen(ports.lbusy, '127.0.0.1', r));
  repo.base(ports.metrics);
  repo.app('web', { port: ports.web, extra: `requires: [api:${ports.api} -> ${ports.lapi}]\n` });
  // An app the developer runs (--except side): the only one whose config file is reloaded.
  repo.write('files/side.json', '{}\n');
  repo.app('side', { extra: `config: { source: files/side.json, path: ${join(repo.env.HOME!, 'side/side.json')}, on_change: reload }\n` });
  repo.app('api', { port: ports.api, extra: `requires: [web:${ports.web} -> ${ports.lbusy}]\n` });
  // An app whose artifact does not exist yet: blocked from the start.
  repo.app('late', { artifact: false });
  // A config file whose directory nobody may create (/etc-like, root's), and one in place in such a directory.
  mkdirSync(join(repo.work, 'etc'), { mode: 0o755 });
  mkdirSync(join(repo.work, 'etc2'), { mode: 0o755 });
  repo.write('files/cfg.json', '{ "hello": "cfg" }\n');
  repo.app('cfg', { extra: `config: { source: files/cfg.json, path: ${join(repo.work, 'etc/cfg/cfg.json')} }\nenv: { CONFIG: ${join(repo.work, 'etc/cfg/cfg.json')} }\n` });
  repo.app('inplace', { extra: `config: { source: files/cfg.json, path: ${join(repo.work, 'etc2/inplace.json')}, on_change: none }\n` });
  writeFileSync(join(repo.work, 'etc2/inplace.json'), '{ "hello": "cfg" }\n');
  repo.write('exposures/www.yaml', `service: web:${ports.web}\nport: ${ports.www}\nnodes: [n]\n`);
  // Port 80, as a user: EACCES.
  repo.write('exposures/low.yaml', `service: api:${ports.api}\nport: 80\nnodes: [n]\n`);
  up = repo.run('up', repo.dir, '--except', 'side');
  await up.waitFor(/Ctrl-C stops everything/, 60_000);
});

after(async () => {
  taken?.close();
  busy?.close();
  if (up && up.proc.exitCode === null) await up.interrupt();
});

describe('glow up, as a newcomer meets it', { timeout: 240_000 }, () => {
  test('a port the box cannot bind: the banner marks it, the terminal line has GLOW_E_PROXY_BIND, glow status exits 1', async () => {
    const banner = up.out.slice(up.out.indexOf('the box runs'));
    assert.match(banner, new RegExp(`www +NOT LISTENING: 127\\.0\\.0\\.1:${ports.www} cannot be bound \\(EADDRINUSE, GLOW_E_PROXY_BIND above\\)`));
    assert.match(banner, /low +NOT LISTENING: 127\.0\.0\.1:80 cannot be bound \(EACCES, GLOW_E_PROXY_BIND above\)/);
    assert.doesNotMatch(banner, new RegExp(`http://127\\.0\\.0\\.1:(${ports.www}|80)/`), 'an address that does not listen is not advertised');
    assert.match(banner, new RegExp(`listener +NOT LISTENING: 127\\.0\\.0\\.1:${ports.lbusy} → web:${ports.web} cannot be bound \\(EADDRINUSE, GLOW_E_PROXY_BIND above\\)`));
    assert.match(up.out, new RegExp(`GLOW_E_PROXY_BIND proxy: cannot listen on tcp 127\\.0\\.0\\.1:${ports.www} for exposure www \\(EADDRINUSE\\): another process listens there`));
    assert.match(up.out, /GLOW_E_PROXY_BIND proxy: cannot listen on tcp 127\.0\.0\.1:80 for exposure low \(EACCES\): ports below 1024 need root on Linux: .*sudo sysctl net\.ipv4\.ip_unprivileged_port_start=80/);

    const text = repo.glow('status');
    assert.equal(text.status, 1, text.stdout + text.stderr);
    assert.match(text.stdout, /the proxy cannot listen on 3 addresses \(GLOW_E_PROXY_BIND; it keeps trying\):/);
    assert.match(text.stdout, new RegExp(`GLOW_E_PROXY_BIND tcp 127\\.0\\.0\\.1:${ports.www} \\(exposure www\\): EADDRINUSE`));
    const st = repo.status();
    assert.equal(st.code, 0, '--json exits 0 when the socket answered; the errors are in the JSON');
    const errors = new Map(st.json.proxy.frontends.filter((f) => !f.bound).map((f) => [f.key, f.error]));
    assert.deepEqual(errors, new Map([['tcp 127.0.0.1:80', 'EACCES'], [`tcp 127.0.0.1:${ports.www}`, 'EADDRINUSE'], [`tcp 127.0.0.1:${ports.lbusy}`, 'EADDRINUSE']]));

    // The port is freed, the port-80 exposure removed: the proxy binds within its 2 s retry; status is clean.
    const since = st.json.proxy.since;
    await new Promise<void>((r) => taken.close(() => r()));
    await new Promise<void>((r) => busy.close(() => r()));
    repo.remove('exposures/low.yaml');
    await up.waitFor(new RegExp(`proxy: listener bound \\(frontend tcp 127\\.0\\.0\\.1:${ports.www}\\)`), 10_000);
    assert.equal(await until('web through www', () => get(ports.www)), 'web #1 1.0.0\n');
    const clean = await until('glow status without the bind errors', () => {
      const r = repo.glow('status');
      return r.status === 0 || /GLOW_E_ARTIFACT_MISSING/.test(r.stdout) ? r : undefined;
    });
    assert.doesNotMatch(clean.stdout, /GLOW_E_PROXY_BIND/);
    assert.equal(repo.status().json.proxy.since, since, '"proxy: active since" is when the proxy started, not the last route reload');
  });

  test('an app whose artifact is missing from the start: the banner does not count it as running and says why', () => {
    const banner = up.out.slice(up.out.indexOf('the box runs'));
    assert.match(banner, /^the box runs 3 instances of /, 'web, api and inplace; late and cfg are blocked');
    assert.match(banner, /blocked +late #1 is not started: GLOW_E_ARTIFACT_MISSING \(above\)/);
    assert.match(up.out, /late is not started \(GLOW_E_ARTIFACT_MISSING, said above\)/);
    // The "try" lines name a file of an app the box runs, not side's (side runs outside Glow).
    assert.match(banner, /try +edit repo\/files\/cfg\.json: cfg restarts\n/);
    assert.doesNotMatch(banner, /side/);
    const late = inst(repo.status().json, 'late')!;
    assert.deepEqual([late.activeState, late.subState, late.blocked?.code], ['inactive', 'blocked', 'GLOW_E_ARTIFACT_MISSING']);
  });

  test('a version with no artifact: status shows what runs (1.0.0) and what is wanted but blocked (2.0.0), and why', async () => {
    const pid = inst(repo.status().json, 'web')!.mainPid;
    repo.write('apps/web.yaml', `image: web\nversion: "2.0.0"\nruntime: exec\nprovides: [${ports.web}/http]\ncommand: [bin/web, "${ports.web}"]\nstop_timeout: 2s\nrequires: [api:${ports.api} -> ${ports.lapi}]\n`);
    await up.waitFor(/web keeps running 1\.0\.0: 2\.0\.0 is not started \(GLOW_E_ARTIFACT_MISSING, said above\)/);
    assert.doesNotMatch(up.out, /web is not started/);
    const web = inst(repo.status().json, 'web')!;
    assert.equal(web.version, '1.0.0', 'the version that runs');
    assert.equal(web.wanted, '2.0.0', 'the version the repository asks for');
    assert.equal(web.mainPid, pid, 'the same process');
    assert.deepEqual([web.activeState, web.subState, web.blocked?.code], ['active', 'running', 'GLOW_E_ARTIFACT_MISSING']);
    assert.match(web.blocked!.message, /2\.0\.0/);
    const text = repo.glow('status');
    assert.equal(text.status, 1);
    assert.match(text.stdout, /web #1 +1\.0\.0 +active \(running\) .* wants 2\.0\.0: blocked — GLOW_E_ARTIFACT_MISSING /);
    assert.equal(await get(ports.web), 'web #1 1.0.0\n', 'the old one keeps serving');

    // The artifact arrives: the box follows (a change of the repository), 2.0.0 runs, nothing is wanted.
    repo.artifact('web', '2.0.0');
    await until('web 2.0.0 running', () => {
      const w = inst(repo.status().json, 'web')!;
      return w.version === '2.0.0' && w.activeState === 'active' && w.wanted === undefined && w.blocked === undefined;
    });
    assert.equal(await until('web 2.0.0 answers', async () => ((await get(ports.web)) === 'web #1 2.0.0\n' ? true : undefined)), true);
  });
});

describe('glow logs under glow up', { timeout: 60_000 }, () => {
  test('an app the box runs: its recent lines, as the journal\'s would print; -n; --json; -f follows', async () => {
    await until('a few lines of api', () => (up.out.match(/api#1 +│ api #1 1\.0\.0 tick/g)?.length ?? 0) >= 3, 20_000);
    const r = repo.glow('logs', 'api');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z api#1 api #1 1\\.0\\.0 listening on :${ports.api}\\n`));
    assert.match(r.stdout, /Z api#1 api #1 1\.0\.0 tick 2\n/);
    assert.doesNotMatch(r.stdout, /web/);
    const last = repo.glow('logs', 'api', '-n', '2');
    assert.equal(last.stdout.split('\n').filter(Boolean).length, 2);
    const json = repo.glow('logs', 'api', '-n', '1', '--json');
    const rec = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.deepEqual([rec.app, rec.instance, rec.version, rec.node, rec.stream], ['api', 1, '1.0.0', 'devbox', 'stdout']);

    // -f: the last lines (here -n 1), then every new one.
    const follow = repo.run('logs', 'api', '-f', '-n', '1');
    const first = Number((await follow.waitFor(/api#1 api #1 1\.0\.0 tick (\d+)\n/))[1]);
    await follow.waitFor(new RegExp(`api#1 api #1 1\\.0\\.0 tick ${first + 2}\\n`), 10_000);
    assert.doesNotMatch(follow.out, /listening on|tick 1\n/, 'not the older lines');
    assert.equal((await follow.interrupt()).code, 0);
  });

  test('an unknown app is an error with a suggestion; an app outside the box says where its lines are', () => {
    const typo = repo.glow('logs', 'apu');
    assert.equal(typo.status, 1);
    assert.equal(typo.stdout, '');
    assert.equal(typo.stderr, 'glow: GLOW_E_LOGS_APP_UNKNOWN there is no app `apu` (no apps/apu.yaml); did you mean `api`?\n');
    const side = repo.glow('logs', 'side');
    assert.equal(side.status, 1);
    assert.equal(side.stderr, 'glow: GLOW_E_LOGS_APP_UNKNOWN side runs outside Glow (glow up --except side): its lines are where you run it\n');
    const since = repo.glow('logs', 'api', '--since', '-1h');
    assert.equal(since.status, 1);
    assert.match(since.stderr, /GLOW_E_LOGS_USAGE --since reads the journal; under glow up the box keeps the last 2000 lines of each instance: use --lines N/);
  });
});

describe('glow dev beside a glow up that runs the app', { timeout: 60_000 }, () => {
  test('it warns, naming `glow up --except api`, before its "run it" line', async () => {
    const dev = repo.run('dev', 'api', repo.dir);
    await dev.waitFor(/Ctrl-C stops the listeners/);
    const pid = repo.status().json.devbox.pid;
    assert.match(dev.out, new RegExp(`glow up \\(pid ${pid}\\) runs api #1 itself: the command line below would fail \\(EADDRINUSE on port ${ports.api}, or two of it running\\); stop that box \\(Ctrl-C\\) and start it as \`glow up repo --except api\`, then run api yourself`));
    assert.match(dev.out, /Run it:\n {2}cd .* && env -i PATH="\$PATH" HOME="\$HOME" GLOW_APP=api .*\n {2}\(not while glow up runs api: start the box as `glow up .* --except api` first\)/);
    assert.equal((await dev.interrupt()).code, 0);
  });
});

describe('a config directory this user may not write', { timeout: 60_000 }, () => {
  const path = join(repo.work, 'etc/cfg/cfg.json');

  test('said at start, with the fix, also for a file in place; after the fix the box follows within a second or two', async () => {
    assert.match(up.out, new RegExp(`GLOW_E_DEVBOX_PATH cannot write the config file ${path}: ${join(repo.work, 'etc')} is not writable by nobody\\. .*make the directory yours once: sudo install -d -o nobody ${join(repo.work, 'etc/cfg')}\n`));
    assert.match(up.out, /cfg is not started \(GLOW_E_DEVBOX_PATH, said above\)/);
    assert.match(up.out, new RegExp(`the box writes ${path} as soon as ${join(repo.work, 'etc')} is writable by nobody \\(it looks twice a second\\)`));
    // The file in place: nothing to write now, but the next edit could not be written — said now, not then.
    assert.match(up.out, new RegExp(`GLOW_E_DEVBOX_PATH the config file ${join(repo.work, 'etc2/inplace.json')} is in place, but a change of it could not be written: ${join(repo.work, 'etc2')} is not writable by nobody`));
    assert.equal(inst(repo.status().json, 'cfg')!.blocked?.code, 'GLOW_E_DEVBOX_PATH');

    // The fix the message gives (as root, here): the box writes the file and starts cfg at once, not at its tick (30 s).
    const t0 = Date.now();
    const r = spawnSync('install', ['-d', '-o', 'nobody', join(repo.work, 'etc/cfg')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    await up.waitFor(new RegExp(`cfg#1 +│ cfg #1 1\\.0\\.0 read ${path}: \\{ "hello": "cfg" \\}`), 10_000);
    const ms = Date.now() - t0;
    assert.ok(ms < 3000, `the box followed the fix in ${ms} ms`);
    assert.equal(readFileSync(path, 'utf8'), '{ "hello": "cfg" }\n');
    const cfg = inst(repo.status().json, 'cfg')!;
    assert.deepEqual([cfg.activeState, cfg.blocked], ['active', undefined]);
  });
});

describe('smaller things', { timeout: 60_000 }, () => {
  test('glow status labels what it shows: a listener\'s protocol, a service\'s health check', () => {
    const text = repo.glow('status').stdout;
    assert.match(text, new RegExp(`\\n {4}listener ${ports.lapi} → api:${ports.api} {2}protocol http\\n {6}api:${ports.api} {2}health tcp connect\\n`));
  });

  test('a second glow up is refused before it makes anything: no state directory of its own', () => {
    repo.write('../other/glow.yaml', 'artifacts: artifacts\n');
    const r = repo.glow('up', join(repo.work, 'other'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^glow: GLOW_E_DEVBOX_RUNNING a glow up is running already \(pid \d+, repository /);
    const states = readdirSync(join(repo.env.XDG_STATE_HOME!, 'glow/up'));
    assert.deepEqual(states.filter((d) => d.startsWith('other-')), [], states.join(', '));
  });

  test('glow dev of the app the box leaves out: no warning', async () => {
    const dev = repo.run('dev', 'side', repo.dir);
    await dev.waitFor(/Ctrl-C stops the listeners/);
    assert.doesNotMatch(dev.out, /runs side #1 itself/);
    assert.equal((await dev.interrupt()).code, 0);
  });
});
