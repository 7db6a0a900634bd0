/**
 * Small repositories for `glow up` as a user runs it, on ports chosen free at run time (so that these tests need
 * no machine lock, unlike the quick start's fixed ports): a directory of YAML files, exec artifacts that are tiny
 * Node.js scripts, the built `glow` run as a child process with a home, state and runtime directory of its own —
 * as the user `nobody` where permissions matter (the box is meant for unprivileged users).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killGroup } from '../../src/box/supervisor.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const GLOW = join(ROOT, 'dist/src/cli/glow.js');
export const NOBODY = 65534;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string | (() => string), f: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The script of an exec artifact: serves `NAME VERSION` on its port (argv[2]), prints a line every second. */
const APP = `
const http = require('node:http');
const fs = require('node:fs');
const port = Number(process.argv[2] || 0);
const me = process.env.GLOW_APP + ' #' + process.env.GLOW_INSTANCE + ' ' + process.env.GLOW_VERSION;
if (process.env.CONFIG) console.log(me + ' read ' + process.env.CONFIG + ': ' + fs.readFileSync(process.env.CONFIG, 'utf8').trim());
if (port) http.createServer((q, r) => r.end(me + '\\n')).listen(port, '127.0.0.1', () => console.log(me + ' listening on :' + port));
else console.log(me + ' up');
let n = 0;
setInterval(() => console.log(me + ' tick ' + ++n), 1000);
process.on('SIGTERM', () => process.exit(0));
process.on('SIGHUP', () => console.log(me + ' SIGHUP'));
`;

export interface Children {
  readonly procs: Set<ChildProcess>;
  readonly groups: Set<number>;
}

/** One repository, with a home, state and runtime directory for the user that runs `glow` on it. */
export class BoxRepo {
  readonly work: string;
  readonly dir: string;
  readonly env: Record<string, string>;
  readonly uid: number | undefined;
  readonly children: Children = { procs: new Set(), groups: new Set() };

  /** `uid`: run every `glow` as this user (the directories are made theirs). */
  constructor(prefix: string, opts: { uid?: number } = {}) {
    this.work = mkdtempSync(join(tmpdir(), prefix));
    chmodSync(this.work, 0o755);
    this.dir = join(this.work, 'repo');
    this.uid = opts.uid;
    this.env = {
      PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
      HOME: join(this.work, 'home'),
      XDG_STATE_HOME: join(this.work, 'state'),
      XDG_RUNTIME_DIR: join(this.work, 'run'),
      NO_COLOR: '1',
    };
    for (const d of [this.dir, this.env.HOME!, this.env.XDG_STATE_HOME!, this.env.XDG_RUNTIME_DIR!]) {
      mkdirSync(d, { recursive: true });
      if (this.uid !== undefined) chownSync(d, this.uid, this.uid);
    }
    chmodSync(this.env.XDG_RUNTIME_DIR!, 0o700);
  }

  write(rel: string, text: string, mode?: number): void {
    const path = join(this.dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    if (mode !== undefined) chmodSync(path, mode);
  }

  remove(rel: string): void {
    rmSync(join(this.dir, rel), { force: true, recursive: true });
  }

  /** glow.yaml, one node, and the metrics endpoint on a free port. */
  base(metricsPort: number): void {
    this.write('glow.yaml', `metrics: { listen: "127.0.0.1:${metricsPort}" }\nartifacts: artifacts\nstop_grace: 1s\n`);
    this.write('nodes/n.yaml', 'address: 10.0.0.1\n');
  }

  /** An exec artifact `<app>/<version>/bin/<app>` (the script above). */
  artifact(app: string, version: string): void {
    this.write(`artifacts/${app}/${version}/app.cjs`, APP);
    this.write(`artifacts/${app}/${version}/bin/${app}`, `#!${process.execPath}\nrequire('../app.cjs');\n`, 0o755);
  }

  /** An app with its artifact, deployed on node n. */
  app(name: string, o: { version?: string; port?: number; extra?: string; artifact?: boolean } = {}): void {
    const version = o.version ?? '1.0.0';
    if (o.artifact !== false) this.artifact(name, version);
    const provides = o.port ? `provides: [${o.port}/http]\ncommand: [bin/${name}, "${o.port}"]\n` : `command: [bin/${name}]\n`;
    this.write(`apps/${name}.yaml`, `image: ${name}\nversion: "${version}"\nruntime: exec\n${provides}stop_timeout: 2s\n${o.extra ?? ''}`);
    this.write(`deployments/${name}-1.yaml`, `app: ${name}\nnode: n\n`);
  }

  #argv(args: readonly string[]): [string, string[]] {
    if (this.uid === undefined) return [process.execPath, [GLOW, ...args]];
    return ['setpriv', [`--reuid=${this.uid}`, `--regid=${this.uid}`, '--clear-groups', process.execPath, GLOW, ...args]];
  }

  /** A `glow` command run to its end. */
  glow(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const [cmd, argv] = this.#argv(args);
    const r = spawnSync(cmd, argv, { encoding: 'utf8', env: this.env, cwd: this.work, timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** A long-running `glow` command (up, dev, logs -f), with its output collected. */
  run(...args: string[]): Running {
    const [cmd, argv] = this.#argv(args);
    const r = new Running(cmd, argv, this.env, this.work);
    this.children.procs.add(r.proc);
    return r;
  }

  status(): { code: number | null; json: StatusJson } {
    const r = this.glow('status', '--json');
    return { code: r.status, json: JSON.parse(r.stdout) as StatusJson };
  }

  /** Kills whatever is left, removes the directories. */
  cleanup(): void {
    for (const c of this.children.procs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const g of this.children.groups) killGroup(g, 'SIGKILL');
    rmSync(this.work, { recursive: true, force: true });
  }
}

export interface StatusJson {
  readonly applyErrors: { code: string; message: string; unit?: string }[];
  readonly configErrors: { code: string; message: string }[];
  readonly instances: { app: string; instance: number; version: string; wanted?: string; activeState: string; subState: string; mainPid: number; blocked?: { code: string; message: string } }[];
  readonly proxy: { activeState: string; since: string; frontends: { key: string; bound: boolean; error: string | null }[] };
  readonly devbox: { pid: number };
}

export class Running {
  readonly proc: ChildProcess;
  out = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(cmd: string, argv: string[], env: Record<string, string>, cwd: string) {
    this.proc = spawn(cmd, argv, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  waitFor(re: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
    return until(() => `${re} in the output of glow:\n${this.out}`, () => re.exec(this.out) ?? undefined, timeoutMs);
  }

  /** Sends SIGINT (Ctrl-C) and waits for the exit. */
  async interrupt(timeoutMs = 15_000): Promise<{ code: number | null }> {
    this.proc.kill('SIGINT');
    const r = await Promise.race([this.exited, sleep(timeoutMs).then(() => undefined)]);
    assert.ok(r, `glow did not exit within ${timeoutMs} ms of SIGINT:\n${this.out}`);
    return { code: r.code };
  }
}
