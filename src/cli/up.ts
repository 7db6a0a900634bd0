/**
 * `glow up [DIR]`: the developer box. Runs the repository on this machine with child processes instead of
 * systemd — the same plan, proxy, config files and GLOW_* environment as a node — follows it live, shows every
 * instance's output in the terminal, answers `glow status` and serves the metrics endpoint. Ctrl-C stops
 * everything; a second Ctrl-C kills. See docs/devbox.md.
 */
import { AGENT_DEFAULTS } from '../base/paths.js';
import { existsSync, mkdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, relative, resolve } from 'node:path';
import { getUnix, json, listenControl } from '../shell/control.js';
import { MetricsEndpoint } from '../shell/metrics-server.js';
import { GlowError } from '../base/errors.js';
import { loadRepository } from '../config/load.js';
import { closest } from '../config/suggest.js';
import { readRepo } from '../config/source.js';
import { devMetricsListen, devPlan } from '../plan/box-plan.js';
import { DevBox } from '../box/devbox.js';
import type { DevBoxMode, DevBoxStatus } from '../box/devbox.js';
import { devboxPaths, repoStateDir } from '../box/paths.js';
import { Terminal } from '../box/terminal.js';
import type { NodePlan, PlannedExposure } from '../plan/node-plan.js';
import { durationFlag, parseArgs } from './args.js';
import { formatError, styleFor } from '../shell/style.js';
import { formatPlan } from './format.js';
import { stdoutSink, whenOutputLost } from './stdio.js';

const HELP = `Usage
  glow up [DIR] [--node NAME] [--except APP] [options]

The developer box: runs the repository DIR (default: the current directory) on this machine with child
processes instead of systemd — the same plan, proxy, config files and GLOW_* environment as a node. By default
one instance of every app that has a deployment (instances of one app would bind the same ports on one machine:
the others are folded into the lowest, and said so); with --node, exactly that node's share. Follows the
repository live, restarts crashed instances with backoff, prints every instance's output prefixed with its app
and instance. \`glow status\` and the metrics endpoint work as on a node. Ctrl-C stops everything; a second
Ctrl-C kills.

Options
  --node NAME           run node NAME's share of the repository
  --except APP          do not start APP: run it yourself (\`glow dev APP\`); may be repeated
  --plan                print what the box would run and exit
  --metrics-listen H:P  the metrics endpoint (default 127.0.0.1 and glow.yaml's metrics port, 9464)
  --socket PATH         the control socket (default $XDG_RUNTIME_DIR/glow/up.sock, or in the state directory)
  --state-dir DIR       artifacts and the box's records (default $XDG_STATE_HOME/glow/up/<repo>-<hash>)
  --fresh               remove the box's unpacked artifacts first (after editing an artifact directory)
  --podman PATH         the podman program (default podman)
  --debounce DURATION   quiet time after a change before reading (default ${AGENT_DEFAULTS.debounce})
  --tick DURATION       re-plan this often without changes (default ${AGENT_DEFAULTS.tick})`;

export async function runUp(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    node: { type: 'string' },
    except: { type: 'string', isMultiple: true },
    plan: { type: 'boolean', default: false },
    metricsListen: { type: 'string' },
    socket: { type: 'string' },
    stateDir: { type: 'string' },
    fresh: { type: 'boolean', default: false },
    podman: { type: 'string', default: 'podman' },
    debounce: { type: 'string', default: AGENT_DEFAULTS.debounce },
    tick: { type: 'string', default: AGENT_DEFAULTS.tick },
  });
  const f = cli.flags;
  const dir = cli.input[0] ?? '.';
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new GlowError('GLOW_E_REPO_MISSING', `there is no repository at ${dir}`);
  const repo = realpathSync(dir);
  const style = styleFor(process.stdout);
  const mode: DevBoxMode = { kind: 'box', ...(f.node ? { node: f.node } : {}), except: (f.except ?? []).flatMap((e) => e.split(',')).filter(Boolean) };

  // What the repository says now: for --plan, and for the metrics endpoint, which must be ours before anything runs.
  const source = readRepo(repo);
  const first = loadRepository(source);
  if (f.plan) {
    if (!first.ok) {
      for (const e of first.errors) process.stderr.write(`${formatError(e, styleFor(process.stderr))}\n`);
      return 1;
    }
    const dp = devPlan(first.snapshot, { source, ...(f.node ? { node: f.node } : {}), ...(f.metricsListen ? { metricsListen: f.metricsListen } : {}) });
    for (const e of dp.conflicts) process.stderr.write(`${formatError(e, styleFor(process.stderr))}\n`);
    process.stdout.write(`${formatPlan(dp.plan, style)}\n`);
    if (dp.folded.length) process.stdout.write(`\n${style.bold(`folded (${dp.folded.length})`)}\n`);
    for (const x of dp.folded) process.stdout.write(`  ${x.app} #${x.kept.instance} runs for ${x.folded.map((o) => `#${o.instance} (${o.node}, ${o.file})`).join(', ')} too\n`);
    return dp.conflicts.length ? 1 : 0;
  }

  // --except names apps: a typo would start the app it meant to leave out.
  if (first.ok) {
    for (const app of mode.except) {
      if (first.snapshot.apps.has(app)) continue;
      const near = closest(app, first.snapshot.apps.keys());
      const what = first.snapshot.externals.has(app) ? `\`${app}\` is an external, not an app` : `there is no app \`${app}\` (no apps/${app}.yaml)`;
      throw new GlowError('GLOW_E_DEVBOX_APP_UNKNOWN', `--except ${app}: ${what}${near ? `; did you mean \`--except ${near}\`?` : ''}`);
    }
  }

  const paths = devboxPaths(process.env, homedir());
  const stateDir = f.stateDir ? resolve(f.stateDir) : repoStateDir(paths.root, repo);
  const socket = f.socket ?? paths.socket;
  // A second box is refused before it makes anything of its own (its state directory included).
  await refuseSecondBox(socket);
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  if (f.fresh) rmSync(`${stateDir}/artifacts`, { recursive: true, force: true });

  const term = new Terminal(stdoutSink, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
  const box = new DevBox(
    {
      repo,
      stateDir,
      mode,
      ...(f.metricsListen ? { metricsListen: f.metricsListen } : {}),
      debounceMs: durationFlag('glow up', 'debounce', f.debounce, 0),
      tickMs: durationFlag('glow up', 'tick', f.tick, 1000),
      podman: f.podman,
      session: process.env,
    },
    term,
    style,
  );

  // The box's metrics followed by its in-process proxy's: one scrape target, as on a node.
  const endpoint = new MetricsEndpoint(async () => ({
    contentType: box.metrics.registry.contentType,
    text: (await box.metrics.registry.metrics()) + (await box.proxy.metrics.text()),
  }));
  const wanted = f.metricsListen ?? (first.ok ? devMetricsListen(first.snapshot) : '127.0.0.1:9464');
  try {
    await endpoint.bind(wanted);
  } catch (e) {
    throw metricsError(wanted, e as NodeJS.ErrnoException);
  }

  const control = await listenControl(socket, (req, res) => {
    if (req.url === '/status') return json(res, box.status());
    if (req.url === '/plan') return json(res, box.plan ?? null);
    if (req.url?.startsWith('/logs?')) return serveLogs(box, new URL(req.url, 'http://box').searchParams, req, res);
    json(res, { error: 'not found' }, 404);
  });

  let stopping = 0;
  const done = new Promise<number>((resolveDone) => {
    const stop = (signal: string) => {
      // One Ctrl-C can arrive twice (the terminal's, and a wrapper's that passes it on): "again" is a new press.
      if (stopping && Date.now() - stopping < 250) return;
      // A closed terminal (SIGHUP, then EIO on every write) stops the box like the first Ctrl-C, never kills it.
      if (stopping && (signal === 'SIGHUP' || signal === 'the terminal closed')) return;
      if (stopping) {
        term.error(`${signal} again: killing every instance`);
        box.kill();
        resolveDone(130);
        return;
      }
      stopping = Date.now();
      term.info(`${signal}: stopping every instance (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again kills them)`);
      void box
        .stop()
        .then(() => {
          control.close();
          rmSync(socket, { force: true });
          endpoint.close();
          term.info('stopped');
          resolveDone(0);
        })
        .catch((e: unknown) => {
          term.error(`stopping failed: ${(e as Error).message}`);
          box.kill();
          resolveDone(1);
        });
    };
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => stop(s));
    whenOutputLost(() => stop('the terminal closed'));
  });

  const self = selfCommand();
  const shown = display(repo);
  if (first.ok) term.setKeys(devPlan(first.snapshot, { ...(f.node ? { node: f.node } : {}) }).plan.instances.map((i) => `${i.app}#${i.instance}`));
  box.onApplied = (firstTime) => {
    const plan = box.plan!;
    if (!f.metricsListen) {
      endpoint.bind(plan.metricsListen).then(
        (moved) => moved && term.info(`metrics now on http://${plan.metricsListen}/metrics`),
        (e: NodeJS.ErrnoException) => term.error(metricsError(plan.metricsListen, e).message),
      );
    }
    if (firstTime) banner(term, plan, { repo: shown, metrics: endpoint.listen ?? wanted, self, outside: mode.except, status: box.status() });
  };
  term.info(`glow up ${shown}${f.node ? ` --node ${f.node}` : ''}: state in ${stateDir}`);
  box.start().catch((e: unknown) => term.error(`${(e as Error).message}`));
  // Everything is stopped (or killed): leave now, whatever handle a library may still hold.
  process.exit(await done);
}

/**
 * GET /logs?app=APP[&instance=N][&lines=N][&follow=1]: the box's recent lines of APP (src/box/log-ring.ts) as JSON
 * lines, then, with follow, every new one until the client goes. An app the box has no lines of and does not run
 * is a 404 with the reason (`glow logs` says it as GLOW_E_LOGS_APP_UNKNOWN).
 */
function serveLogs(box: DevBox, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
  const app = q.get('app') ?? '';
  const refused = box.logsRefusal(app);
  if (refused) return json(res, { error: { code: 'GLOW_E_LOGS_APP_UNKNOWN', message: refused } }, 404);
  const instance = q.has('instance') ? Number(q.get('instance')) : undefined;
  const lines = q.has('lines') ? Number(q.get('lines')) : undefined;
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  for (const l of box.logs.recent(app, instance, lines)) res.write(`${JSON.stringify(l)}\n`);
  if (q.get('follow') !== '1') return void res.end();
  const stop = box.logs.follow((l) => {
    if (l.app === app && (instance === undefined || l.instance === instance)) res.write(`${JSON.stringify(l)}\n`);
  });
  req.once('close', stop);
  res.once('close', stop);
}

/** Only one box per user: the control socket (and the ports) would be shared. */
async function refuseSecondBox(socket: string): Promise<void> {
  if (!existsSync(socket)) return;
  try {
    const r = await getUnix(socket, '/status', 2000);
    const st = JSON.parse(r.body) as { repo?: string; devbox?: { pid?: number } };
    throw new GlowError('GLOW_E_DEVBOX_RUNNING', `a glow up is running already (pid ${st.devbox?.pid ?? '?'}, repository ${st.repo ?? '?'}; socket ${socket}): stop it first (Ctrl-C in its terminal)`);
  } catch (e) {
    if (e instanceof GlowError && e.code === 'GLOW_E_DEVBOX_RUNNING') throw e;
    // nobody answers: a socket left by a box that was killed
  }
}

function metricsError(listen: string, e: NodeJS.ErrnoException): GlowError {
  const fix = e.code === 'EADDRINUSE' ? 'another process listens there (a glowd, or another glow up?); choose another with --metrics-listen 127.0.0.1:PORT' : e.message;
  return new GlowError('GLOW_E_DEVBOX_METRICS', `cannot serve metrics on ${listen} (${e.code ?? 'error'}): ${fix}`, { cause: e });
}

/** A path as the user would type it: relative to where they are, unless it lies elsewhere. */
export function display(path: string): string {
  if (process.cwd() === '/') return path;
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}

/** How the user runs glow: `glow`, or `node dist/src/cli/glow.js` from a checkout. */
function selfCommand(): string {
  const script = process.argv[1] ?? '';
  if (basename(script) !== 'glow.js') return 'glow';
  return `node ${display(script)}`;
}

export function exposureUrl(e: PlannedExposure): string {
  const host = e.bind === '0.0.0.0' || e.bind === '::' ? '127.0.0.1' : e.bind;
  if (e.protocol !== 'http' && !e.tls) return `${e.protocol} ${host}:${e.port}`;
  const url = `${e.tls ? 'https' : 'http'}://${host}:${e.port}${e.path ?? '/'}`;
  return e.hosts.length ? `${url} with Host: ${e.hosts.join(' or ')} (curl -H 'Host: ${e.hosts[0]!.replace('*.', 'x.')}' ${url})` : url;
}

/** Where to look, once the box runs: what runs, what is blocked and why, and only the addresses that listen. */
function banner(term: Terminal, plan: NodePlan, o: { repo: string; metrics: string; self: string; outside: readonly string[]; status: DevBoxStatus }): void {
  const lines: string[] = [];
  const mine = o.status.instances.filter((i) => i.desired && !o.outside.includes(i.app));
  const running = mine.filter((i) => i.activeState === 'active' || i.activeState === 'activating').length;
  const blocked = mine.filter((i) => i.blocked);
  lines.push(`the box runs ${running} instance${running === 1 ? '' : 's'} of ${o.repo} as node \`${plan.node}\`, revision ${plan.revision}`);
  const width = Math.max(8, ...plan.exposures.map((e) => e.name.length));
  for (const i of blocked) {
    const name = `${i.app} #${i.instance}`;
    const what = i.wanted ? `${name} keeps running ${i.version}; ${i.wanted} is not started` : i.mainPid ? `${name} runs as it was; the change is not applied` : `${name} is not started`;
    lines.push(`  ${'blocked'.padEnd(width)}  ${what}: ${i.blocked!.code} (above)`);
  }
  const frontends = o.status.proxy?.frontends ?? [];
  for (const e of plan.exposures) {
    const f = frontends.find((x) => !x.draining && x.routes.some((r) => r.kind === 'exposure' && r.name === e.name));
    if (f && !f.bound) lines.push(`  ${e.name.padEnd(width)}  NOT LISTENING: ${e.bind}:${e.port} cannot be bound (${f.error ?? 'unknown'}, GLOW_E_PROXY_BIND above); the proxy tries again every 2 s`);
    else lines.push(`  ${e.name.padEnd(width)}  ${exposureUrl(e)}  → ${e.service}`);
  }
  // The loopback listeners of `requires` are not advertised, but one that does not listen breaks its apps.
  for (const f of frontends) {
    if (f.bound || f.draining || f.routes.some((r) => r.kind === 'exposure')) continue;
    const services = [...new Set(f.routes.map((r) => r.service))].join(', ');
    lines.push(`  ${'listener'.padEnd(width)}  NOT LISTENING: ${f.key.replace(/^\S+ /, '')} → ${services} cannot be bound (${f.error ?? 'unknown'}, GLOW_E_PROXY_BIND above); the proxy tries again every 2 s`);
  }
  lines.push(`  ${'metrics'.padEnd(width)}  http://${o.metrics}/metrics`);
  lines.push(`  ${'status'.padEnd(width)}  ${o.self} status`);
  // An example to try, among the files of the apps the box runs (not those left to the developer with --except).
  const files = plan.files.filter((x) => !o.outside.includes(x.app));
  const example = files.find((x) => x.onChange === 'reload') ?? files[0];
  if (example) {
    const how = example.onChange === 'reload' ? `${example.app} gets ${example.signal} and reads it again, no restart` : example.onChange === 'restart' ? `${example.app} restarts` : `${example.app} sees the new file`;
    lines.push(`  ${'try'.padEnd(width)}  edit ${o.repo}/${example.source}: ${how}`);
  }
  lines.push(`  ${(example ? '' : 'try').padEnd(width)}  add, edit or delete any file of ${o.repo}: the box follows`);
  lines.push('Ctrl-C stops everything');
  term.info(lines.join('\n'));
}
