/**
 * `glow dev APP [DIR]`: the environment of one instance of APP, without starting it — the loopback listeners of
 * its `requires` (the same proxy as a node's), its config files at their paths, and the command line with its
 * GLOW_* environment — so that the developer runs APP from an IDE or under a debugger. Its dependencies run
 * under `glow up` (which leaves APP alone with `--except APP`; listeners that box serves already are shared, not
 * bound twice), or, with --remote, on the cluster's nodes. Runs until Ctrl-C, following the repository.
 */
import { AGENT_DEFAULTS } from '../base/paths.js';
import { existsSync, mkdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureArtifact } from '../shell/artifacts/ensure.js';
import { getUnix } from '../shell/control.js';
import { GlowError } from '../base/errors.js';
import { loadRepository } from '../config/load.js';
import type { Snapshot } from '../config/model.js';
import { readRepo } from '../config/source.js';
import { devAppPlan } from '../plan/box-plan.js';
import { DevBox } from '../box/devbox.js';
import { launchOf, shellLine } from '../render/launch.js';
import type { Launch } from '../render/launch.js';
import { devboxPaths, repoStateDir } from '../box/paths.js';
import { Terminal } from '../box/terminal.js';
import type { AgentStatus } from '../shell/status.js';
import type { DevBoxStatus } from '../box/devbox.js';
import type { NodePlan, PlannedInstance, UpstreamGroup } from '../plan/node-plan.js';
import { durationFlag, parseArgs } from './args.js';
import { formatError, styleFor } from '../shell/style.js';
import { stdoutSink, whenOutputLost } from './stdio.js';
import { display } from './up.js';

const HELP = `Usage
  glow dev APP [DIR] [--remote] [--json]

Provides the environment of one instance of APP without starting it: the loopback listeners of the services
it requires (through the same proxy as a node), its config files at their paths, and the command line to run
it with its GLOW_* environment, printed (and written to an env file for IDEs). Run APP from your IDE or under a
debugger. Its dependencies run under \`glow up DIR --except APP\` (listeners that box serves already are used as
they are), or, with --remote, on the cluster's nodes. Runs until Ctrl-C, following the repository.

Options
  --remote            reach the services APP requires on the cluster's nodes (their addresses in nodes/)
  --json              print the environment as one JSON object
  --socket PATH       glow up's control socket (default $XDG_RUNTIME_DIR/glow/up.sock, or in the state directory)
  --state-dir DIR     the env file and artifacts (default $XDG_STATE_HOME/glow/up/<repo>-<hash>)
  --debounce DURATION quiet time after a change before reading (default ${AGENT_DEFAULTS.debounce})`;

export interface DevEnvironment {
  readonly app: string;
  readonly instance: number;
  readonly node: string;
  readonly image: string;
  readonly version: string;
  readonly runtime: string;
  readonly env: Readonly<Record<string, string>>;
  readonly command: readonly string[];
  readonly cwd: string;
  readonly shell: string;
  readonly envFile: string;
  /** The ports APP provides (it binds them when it runs). */
  readonly ports: readonly number[];
  readonly listeners: readonly { readonly listen: string; readonly protocol: string; readonly service: string; readonly upstreams: readonly string[]; readonly sharedWithGlowUp: boolean }[];
  readonly files: readonly { readonly path: string; readonly source: string; readonly onChange: string; readonly signal: string }[];
  /** A `glow up` runs APP itself (not started with --except APP): the command line would find its ports taken. */
  readonly runByGlowUp?: { readonly pid: number; readonly instances: readonly string[]; readonly fix: string };
}

export async function runDev(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    remote: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    socket: { type: 'string' },
    stateDir: { type: 'string' },
    debounce: { type: 'string', default: AGENT_DEFAULTS.debounce },
  });
  const [app, dir = '.'] = cli.input;
  if (!app) {
    process.stderr.write(`${HELP}\n`);
    return 2;
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new GlowError('GLOW_E_REPO_MISSING', `there is no repository at ${dir}`);
  const repo = realpathSync(dir);
  const source = readRepo(repo);
  const first = loadRepository(source);
  if (!first.ok) {
    for (const e of first.errors) process.stderr.write(`${formatError(e, styleFor(process.stderr))}\n`);
    return 1;
  }
  devAppPlan(first.snapshot, app, { source, remote: cli.flags.remote }); // an unknown app is an error now, not a loop
  const paths = devboxPaths(process.env, homedir());
  const stateDir = cli.flags.stateDir ? resolve(cli.flags.stateDir) : repoStateDir(paths.root, repo);
  const socket = cli.flags.socket ?? paths.socket;
  mkdirSync(stateDir, { recursive: true });

  const style = styleFor(process.stdout);
  const term = new Terminal(stdoutSink, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
  const box = new DevBox(
    {
      repo,
      stateDir,
      mode: { kind: 'app', app, remote: cli.flags.remote },
      debounceMs: durationFlag('glow dev', 'debounce', cli.flags.debounce, 0),
      tickMs: 30_000,
      podman: 'podman',
      session: process.env,
      sharedFrontends: () => glowUpFrontends(socket),
      drainMs: 500,
    },
    term,
    style,
  );

  let printed = '';
  let warned = '';
  box.onApplied = () => {
    void describe(box, repo, stateDir, socket, dir).then(
      (d) => {
        const text = cli.flags.json ? `${JSON.stringify(d)}\n` : human(d, repo);
        const warning = d.runByGlowUp ? warningOf(d) : '';
        if (warning !== warned && warning) term.error(warning);
        warned = warning;
        if (text === printed) return;
        if (printed && !cli.flags.json) term.info(`the environment of ${app} changed (revision ${box.plan?.revision}):`);
        printed = text;
        stdoutSink.write(text);
      },
      (e: unknown) => term.error(`${(e as GlowError).code ?? ''} ${(e as Error).message}`.trim()),
    );
  };

  const done = new Promise<number>((resolveDone) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return resolveDone(130);
      stopping = true;
      void box.stop().then(() => resolveDone(0), () => resolveDone(1));
    };
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, stop);
    // A closed terminal (SIGHUP, then EIO on every write) stops like the first Ctrl-C.
    process.on('SIGHUP', () => !stopping && stop());
    whenOutputLost(() => !stopping && stop());
  });
  box.start().catch((e: unknown) => term.error((e as Error).message));
  process.exit(await done);
}

/** The frontends a running `glow up` serves (key → service), so that ours do not fight over their ports. */
async function glowUpFrontends(socket: string): Promise<ReadonlyMap<string, string>> {
  if (!existsSync(socket)) return new Map();
  const r = await getUnix(socket, '/status', 2000);
  const st = JSON.parse(r.body) as AgentStatus;
  const out = new Map<string, string>();
  for (const f of st.proxy?.frontends ?? []) {
    const listener = f.routes.find((x) => x.kind === 'listener');
    if (f.bound && !f.draining && listener) out.set(f.key, listener.service);
  }
  return out;
}

/**
 * Where the developer's APP runs from: for exec, the unpacked artifact directory of the repository's artifact
 * store when there is one (the developer's own files, not a copy), else the box's unpacked copy.
 */
async function launchFor(box: DevBox, snapshot: Snapshot, inst: PlannedInstance, repo: string, stateDir: string): Promise<Launch> {
  if (inst.runtime !== 'exec') return box.launchOf(inst);
  const store = snapshot.settings.artifacts;
  if (store === undefined) throw new GlowError('GLOW_E_ARTIFACT_SOURCE', `app \`${inst.app}\` uses the exec runtime but glow.yaml names no \`artifacts\``);
  if (!/^https?:\/\//.test(store)) {
    const base = store.startsWith('file://') ? fileURLToPath(store) : isAbsolute(store) ? store : join(repo, store);
    const unpacked = join(base, inst.image, inst.version);
    if (existsSync(unpacked) && statSync(unpacked).isDirectory()) {
      return launchOf(inst, { artifactDir: unpacked, podman: 'podman', session: process.env, stateDir });
    }
  }
  const r = await ensureArtifact({ stateDir, source: store, repoDir: repo, image: inst.image, version: inst.version, command: inst.command, ...(inst.digest ? { digest: inst.digest } : {}) });
  return launchOf(inst, { artifactDir: r.dir, podman: 'podman', session: process.env, stateDir });
}

/** Whether the `glow up` of this user runs APP itself: its pid and APP's instances there. */
async function glowUpRuns(socket: string, app: string): Promise<{ pid: number; instances: string[] } | undefined> {
  if (!existsSync(socket)) return undefined;
  try {
    const st = JSON.parse((await getUnix(socket, '/status', 2000)).body) as DevBoxStatus;
    const mine = st.instances.filter((i) => i.app === app && i.desired && i.subState !== 'outside glow' && i.activeState !== 'inactive');
    return mine.length ? { pid: st.devbox?.pid ?? 0, instances: mine.map((i) => `${i.app} #${i.instance}`) } : undefined;
  } catch {
    return undefined;
  }
}

function warningOf(d: DevEnvironment): string {
  const w = d.runByGlowUp!;
  const ports = d.ports.length ? ` on port${d.ports.length === 1 ? '' : 's'} ${d.ports.join(', ')}` : '';
  return `glow up (pid ${w.pid}) runs ${w.instances.join(', ')} itself: the command line below would fail (EADDRINUSE${ports}, or two of it running); stop that box (Ctrl-C) and start it as \`${w.fix}\`, then run ${d.app} yourself`;
}

async function describe(box: DevBox, repo: string, stateDir: string, socket: string, dir: string): Promise<DevEnvironment> {
  const plan = box.plan!;
  const inst = plan.instances[0]!;
  const launch = await launchFor(box, box.snapshot!, inst, repo, stateDir);
  const envFile = join(stateDir, 'dev', `${inst.app}.env`);
  mkdirSync(join(stateDir, 'dev'), { recursive: true });
  writeFileSync(envFile, Object.entries(launch.instanceEnv).map(([k, v]) => `${k}=${JSON.stringify(v)}\n`).join(''));
  const shared = new Set(box.shared);
  const runs = await glowUpRuns(socket, inst.app);
  return {
    ...(runs ? { runByGlowUp: { ...runs, fix: `glow up ${dir === '.' ? '' : `${display(repo)} `}--except ${inst.app}` } } : {}),
    ports: inst.provides.map((p) => p.port),
    app: inst.app,
    instance: inst.instance,
    node: plan.node,
    image: inst.image,
    version: inst.version,
    runtime: inst.runtime,
    env: launch.instanceEnv,
    command: launch.argv,
    cwd: launch.cwd,
    shell: shellLine(launch),
    envFile,
    listeners: listenersOf(plan).map((l) => ({ ...l, sharedWithGlowUp: shared.has(l.listen) })),
    files: plan.files.map((f) => ({ path: f.path, source: f.source, onChange: f.onChange, signal: f.signal })),
  };
}

function listenersOf(plan: NodePlan) {
  const ups = (g: UpstreamGroup) => (g.upstreams.length ? g.upstreams.map((u) => `${u.host}:${u.port}${u.node ? ` (${u.node})` : ''}`) : ['(no instance)']);
  return plan.listeners.map((l) => ({
    listen: `${l.bind}:${l.port}`,
    protocol: l.protocol,
    service: l.service,
    upstreams: l.groups.flatMap((g, i) => ups(g).map((u) => `${i ? 'fallback ' : ''}${g.service} ${u}`)),
  }));
}

function human(d: DevEnvironment, repo: string): string {
  const out: string[] = [];
  out.push(`The environment of ${d.app} #${d.instance} (${d.image} ${d.version}, ${d.runtime}) on node \`${d.node}\`; Glow does not start it.`);
  out.push('', `Listeners (what ${d.app} requires, through the proxy):`);
  if (!d.listeners.length) out.push('  none');
  for (const l of d.listeners) {
    out.push(`  ${l.listen.padEnd(17)} ${l.protocol.padEnd(5)} → ${l.upstreams.join('; ')}${l.sharedWithGlowUp ? '  (served by glow up)' : ''}`);
  }
  out.push('', 'Config files (in place):');
  if (!d.files.length) out.push('  none');
  for (const f of d.files) out.push(`  ${f.path} ← ${display(join(repo, f.source))} (on change: ${f.onChange === 'reload' ? `reload with ${f.signal}` : f.onChange})`);
  out.push('', `Environment (also in ${d.envFile}):`);
  for (const [k, v] of Object.entries(d.env)) out.push(`  ${k}=${v}`);
  out.push('', 'Run it:', `  ${d.shell}`);
  if (d.runByGlowUp) out.push(`  (not while glow up runs ${d.app}: start the box as \`${d.runByGlowUp.fix}\` first)`);
  out.push('', 'Ctrl-C stops the listeners.', '');
  return out.join('\n');
}
