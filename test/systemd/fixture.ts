/**
 * Shared pieces of the glowd integration tests: a config repository on the host (bound into the node), a tiny
 * test app packed as an exec artifact, glowd running inside a real systemd node, and ways to ask the node things.
 */
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentStatus } from '../../src/shell/status.js';
import type { SystemdNode } from '../harness/systemd-node.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const GLOW = join(ROOT, 'dist/src/cli/glow.js');
export const NODE = process.execPath;

/**
 * The test app: an HTTP server on the port given as its first argument (a worker without one) that answers with
 * what it knows — GLOW_* environment, pid, how many SIGHUPs it got, and its config file as it reads it now.
 */
const APP_SERVER = `
const fs = require('fs');
const http = require('http');
const port = Number(process.argv[2] || 0);
const conf = process.env.APP_CONFIG || '';
let reloads = 0;
process.on('SIGHUP', () => { reloads++; console.log('reloaded ' + reloads); });
process.on('SIGTERM', () => { console.log('stopping'); process.exit(0); });
const read = () => { try { return fs.readFileSync(conf, 'utf8'); } catch (e) { return null; } };
const me = () => ({ app: process.env.GLOW_APP, version: process.env.GLOW_VERSION, instance: process.env.GLOW_INSTANCE,
  node: process.env.GLOW_NODE, pid: process.pid, reloads, config: read(), extra: process.env.EXTRA || null });
if (port) {
  http.createServer((req, res) => res.end(JSON.stringify(me()))).listen(port, '0.0.0.0', () => console.log('listening on ' + port));
} else {
  setInterval(() => {}, 1 << 30);
  console.log('worker up');
}
`;

export class Repo {
  readonly dir: string;
  readonly root: string;
  readonly artifacts: string;

  constructor(prefix = 'glow-agent-') {
    this.root = mkdtempSync(join(tmpdir(), prefix));
    this.dir = join(this.root, 'repo');
    this.artifacts = join(this.root, 'artifacts');
    mkdirSync(this.dir);
    mkdirSync(this.artifacts);
  }

  write(path: string, content: string): void {
    const p = join(this.dir, path);
    mkdirSync(dirname(p), { recursive: true });
    const tmp = `${p}.tmp-${process.pid}`;
    writeFileSync(tmp, content);
    execFileSync('mv', [tmp, p]);
  }

  remove(path: string): void {
    rmSync(join(this.dir, path), { force: true });
  }

  /** Packs the test app as `<artifacts>/<image>/<version>.tar.gz`; returns its sha256 digest. */
  artifact(image: string, version: string): string {
    const stage = join(this.root, 'stage', image, version);
    mkdirSync(join(stage, 'bin'), { recursive: true });
    writeFileSync(join(stage, 'server.cjs'), APP_SERVER);
    writeFileSync(join(stage, 'bin/server'), `#!/bin/sh\nexec ${NODE} "$(dirname "$0")/../server.cjs" "$@"\n`, { mode: 0o755 });
    writeFileSync(join(stage, 'VERSION'), `${version}\n`);
    const out = join(this.artifacts, image, `${version}.tar.gz`);
    mkdirSync(dirname(out), { recursive: true });
    execFileSync('tar', ['-czf', out, '-C', stage, '.']);
    return `sha256:${execFileSync('sha256sum', [out], { encoding: 'utf8' }).split(' ')[0]}`;
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export class Glowd {
  readonly node: SystemdNode;
  readonly repo: Repo;
  proc: ChildProcess | undefined;
  log = '';

  constructor(node: SystemdNode, repo: Repo) {
    this.node = node;
    this.repo = repo;
  }

  /** `extra` may override the defaults below (glowd refuses a flag given twice). */
  start(extra: string[] = []): void {
    const defaults = ['--tick', '2s', '--health-timeout', '20s'].filter((a, i, all) => !extra.includes(i % 2 ? all[i - 1]! : a));
    this.proc = this.node.spawn([NODE, join(ROOT, 'dist/src/cli/glowd.js'), '--repo', this.repo.dir, '--node', this.node.name, ...defaults, ...extra]);
    this.proc.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    // p is nsenter, which forked glowd into the node's PID namespace and forwards no signal: signal glowd itself
    // (by its host PID, nsenter's child); nsenter exits with it.
    const glowdPids = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    for (const pid of glowdPids) process.kill(pid, signal);
    if (glowdPids.length === 0) p.kill(signal);
    await gone;
    this.proc = undefined;
  }

  async status(): Promise<AgentStatus> {
    const r = await this.node.execOk([NODE, GLOW, 'status', '--json']);
    return JSON.parse(r.stdout) as AgentStatus;
  }

  /** Polls until `pred(status)` holds (bounded); the last status and glowd's log in the failure message. */
  async until(pred: (s: AgentStatus) => boolean, what: string, timeoutMs = 20_000): Promise<AgentStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: AgentStatus | undefined;
    let lastErr = '';
    while (Date.now() < deadline) {
      try {
        last = await this.status();
        if (pred(last)) return last;
      } catch (e) {
        lastErr = (e as Error).message;
      }
      await sleep(100);
    }
    throw new Error(`timed out waiting for: ${what}\nlast status: ${JSON.stringify(last, null, 2)}\n${lastErr}\nglowd log:\n${this.log.slice(-6000)}`);
  }
}

export interface AppAnswer {
  app: string;
  version: string;
  instance: string;
  node: string;
  pid: number;
  reloads: number;
  config: string | null;
  extra: string | null;
}

/** GET http://127.0.0.1:port/ inside the node. */
export async function ask(node: SystemdNode, port: number): Promise<AppAnswer> {
  const script = `require('http').get('http://127.0.0.1:${port}/', (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => process.stdout.write(b)); }).on('error', (e) => { console.error(e.message); process.exit(1); });`;
  const r = await node.execOk([NODE, '-e', script], { timeoutMs: 5000 });
  return JSON.parse(r.stdout) as AppAnswer;
}

/** The node's metrics endpoint text (GET /metrics on 127.0.0.1:9464 inside the node). */
export async function metricsText(node: SystemdNode, port = 9464): Promise<string> {
  const script = `require('http').get('http://127.0.0.1:${port}/metrics', (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => process.stdout.write(b)); }).on('error', (e) => { console.error(e.message); process.exit(1); });`;
  return (await node.execOk([NODE, '-e', script], { timeoutMs: 5000 })).stdout;
}

export async function mainPid(node: SystemdNode, unit: string): Promise<number> {
  const r = await node.execOk(['systemctl', 'show', '-P', 'MainPID', unit]);
  return Number(r.stdout.trim());
}

export async function activeState(node: SystemdNode, unit: string): Promise<string> {
  const r = await node.exec(['systemctl', 'is-active', unit]);
  return r.stdout.trim();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (bounded). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for: ${what}${lastErr ? ` (last error: ${lastErr})` : ''}`);
}
