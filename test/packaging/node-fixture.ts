/**
 * What the package tests put on a machine: a small config repository (two exec apps, one reaching the other
 * through the proxy's loopback listener, and an exposure), its artifact as a tarball, and a client loop that
 * connects to the proxy's listeners throughout an upgrade.
 */
import type { Machine } from './machine.js';

/** The app: an HTTP server on PORT named NAME; with UPSTREAM, each answer carries UPSTREAM's answer too. */
const SERVER = `const http = require('http');
const [port, name, upstream] = process.argv.slice(2);
const me = () => ({ name, pid: process.pid, instance: process.env.GLOW_INSTANCE });
http.createServer((req, res) => {
  if (!upstream) return res.end(JSON.stringify(me()) + '\\n');
  http.get(upstream, (r) => {
    let b = '';
    r.on('data', (d) => (b += d));
    r.on('end', () => { res.statusCode = r.statusCode; res.end(JSON.stringify({ ...me(), upstream: b.trim() }) + '\\n'); });
  }).on('error', (e) => { res.statusCode = 502; res.end(String(e) + '\\n'); });
}).listen(Number(port), '0.0.0.0');
`;

/**
 * The client loop: a new TCP connection and one HTTP request (Connection: close) after another to each target,
 * until /run/glow-test-loop.stop exists; then one line of JSON: per target, answers with status 200, connections
 * refused (ECONNREFUSED), other failures (with the first few), and when the first and last refusals were.
 */
const LOOP = `const fs = require('fs');
const net = require('net');
const targets = process.argv.slice(2);
const stats = Object.fromEntries(targets.map((t) => [t, { ok: 0, refused: 0, other: 0, errors: [], firstRefusedAt: null, lastRefusedAt: null }]));
const stopped = () => fs.existsSync('/run/glow-test-loop.stop');
function once(t) {
  const [host, port] = t.split(':');
  const s = stats[t];
  return new Promise((resolve) => {
    let data = '';
    let failed = false;
    const sock = net.connect(Number(port), host);
    sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
    sock.on('connect', () => sock.write('GET / HTTP/1.1\\r\\nHost: test\\r\\nConnection: close\\r\\n\\r\\n'));
    sock.on('data', (d) => (data += d));
    sock.on('error', (e) => {
      failed = true;
      if (e.code === 'ECONNREFUSED') { s.refused++; s.lastRefusedAt = Date.now(); s.firstRefusedAt ??= s.lastRefusedAt; }
      else { s.other++; if (s.errors.length < 5) s.errors.push(e.code || e.message); }
    });
    sock.on('close', () => {
      if (!failed) {
        if (data.startsWith('HTTP/1.1 200')) s.ok++;
        else { s.other++; if (s.errors.length < 5) s.errors.push(data.split('\\r\\n')[0] || 'no answer'); }
      }
      resolve();
    });
  });
}
(async () => {
  fs.writeFileSync('/run/glow-test-loop.started', '');
  await Promise.all(targets.map(async (t) => { while (!stopped()) { await once(t); await new Promise((r) => setTimeout(r, 2)); } }));
  process.stdout.write(JSON.stringify(stats) + '\\n');
})();
`;

export interface LoopStats {
  ok: number;
  refused: number;
  other: number;
  errors: string[];
  firstRefusedAt: number | null;
  lastRefusedAt: number | null;
}

/** Writes the repository to /srv/glow-repo (for node NODE) and the artifact to /srv/artifacts. */
export async function writeRepository(m: Machine, node: string, dir = '/srv/glow-repo'): Promise<void> {
  const files: Record<string, string> = {
    'glow.yaml': 'artifacts: /srv/artifacts\nstop_grace: 1s\n',
    'apps/pong.yaml': 'image: pong\nversion: "1"\nruntime: exec\ncommand: [bin/server, "9000", pong]\nprovides:\n  - 9000/http\nhealth: { http: /, interval: 1s }\n',
    'apps/ping.yaml':
      'image: pong\nversion: "1"\nruntime: exec\ncommand: [bin/server, "9100", ping, "http://127.0.0.1:19000/"]\nprovides:\n  - 9100/http\nrequires:\n  - pong:9000 -> 19000\nhealth: { http: /, interval: 1s }\n',
    'deployments/pong-1.yaml': `app: pong\nnode: ${node}\n`,
    'deployments/ping-1.yaml': `app: ping\nnode: ${node}\n`,
    [`nodes/${node}.yaml`]: 'address: 127.0.0.1\ntags: [edge]\n',
    'exposures/www.yaml': 'service: ping:9100\nport: 8080\ntags: [edge]\n',
  };
  for (const [p, c] of Object.entries(files)) m.writeFile(`${dir}/${p}`, c);
  m.writeFile('/srv/stage/pong/1/server.cjs', SERVER);
  m.writeFile('/srv/stage/pong/1/bin/server', '#!/bin/sh\nexec /usr/bin/node "$(dirname "$0")/../server.cjs" "$@"\n', 0o755);
  await m.sh('mkdir -p /srv/artifacts/pong && tar -czf /srv/artifacts/pong/1.tar.gz -C /srv/stage/pong/1 .');
}

/** One HTTP GET inside the machine (Node.js there); the status and body, or the error code. */
export async function get(m: Machine, url: string): Promise<{ status: number; body: string } | { error: string }> {
  const r = await m.exec([
    '/usr/bin/node', '-e',
    `require('http').get(process.argv[1], (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(JSON.stringify({ status: r.statusCode, body: b }))); }).on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })))`,
    url,
  ], { timeoutMs: 15_000 });
  return JSON.parse(r.stdout) as { status: number; body: string } | { error: string };
}

/** Waits until the exposure answers with ping's answer carrying pong's: both instances up, through the proxy. */
export async function untilServing(m: Machine, timeoutMs = 60_000): Promise<{ ping: { pid: number }; pong: { pid: number } }> {
  return m.until('ping (the exposure on :8080) to answer with pong (through 127.0.0.1:19000)', async () => {
    const r = await get(m, 'http://127.0.0.1:8080/');
    if (!('status' in r) || r.status !== 200) return undefined;
    const ping = JSON.parse(r.body) as { name: string; pid: number; upstream: string };
    const pong = JSON.parse(ping.upstream) as { name: string; pid: number };
    return ping.name === 'ping' && pong.name === 'pong' ? { ping, pong } : undefined;
  }, timeoutMs, 300);
}

/** Starts the client loop on TARGETS; stop() ends it and returns its counts. */
export async function startLoop(m: Machine, targets: string[]): Promise<{ stop: () => Promise<Record<string, LoopStats>> }> {
  m.writeFile('/srv/loop.cjs', LOOP);
  await m.sh('rm -f /run/glow-test-loop.stop /run/glow-test-loop.started');
  const p = m.spawn(['/usr/bin/node', '/srv/loop.cjs', ...targets]);
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<void>((r) => p.once('close', () => r()));
  await m.until('the client loop to start', async () => (m.exists('/run/glow-test-loop.started') ? true : undefined), 10_000, 50);
  return {
    stop: async () => {
      m.writeFile('/run/glow-test-loop.stop', '');
      await Promise.race([done, new Promise((r) => setTimeout(r, 15_000))]);
      if (!out.trim()) throw new Error(`the client loop printed nothing: ${err}`);
      return JSON.parse(out) as Record<string, LoopStats>;
    },
  };
}

/** The main PIDs of units (0: not running). */
export async function mainPids(m: Machine, units: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const u of units) out[u] = Number((await m.exec(['systemctl', 'show', '-P', 'MainPID', u])).stdout.trim() || 0);
  return out;
}
