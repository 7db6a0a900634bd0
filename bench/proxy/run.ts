/**
 * bench/proxy: Glow's proxy side by side with HAProxy and a direct connection, interleaved, on this machine.
 *
 *   npm run build && node dist/bench/proxy/run.js [--rounds 3] [--seconds 5] [--idle 10000] [--no-cluster] [--targets a,b]
 *
 * Needs (Debian): nginx, haproxy, wrk, iperf3, util-linux (taskset, prlimit); run as root (it raises its own
 * open-files limit for the idle-connection figure).
 *
 * Layout: the upstream (nginx answering `ok`, one worker) and the load
 * generators (wrk, iperf3) are pinned to CPU 0; each proxy runs alone on CPU 1 (one HAProxy thread, one Node
 * process). `node-pipe` is the floor of any Node proxy here (`net` + `pipe()`, nothing else). The `-x2` targets are
 * the cluster experiment: two Node workers sharing the sockets, on CPUs 0–1.
 * Every round runs every (target, load) pair once, in a shuffled order; medians over rounds are printed with
 * ratios to HAProxy (TCP targets to HAProxy mode tcp, HTTP targets to HAProxy mode http), the proxy's CPU per
 * request and its RSS, then the RSS of each proxy holding 10,000 idle client connections. It prints; it does not
 * assert. Differences under about 10% are noise on this VM.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROXY_NODE_OPTIONS } from '../../src/render/units.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    idle: { type: 'string', default: '10000' },
    'no-cluster': { type: 'boolean', default: false },
    targets: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const IDLE = Number(values.idle);
const ENTRY = fileURLToPath(new URL('./proxy-entry.js', import.meta.url));
const PIPE = fileURLToPath(new URL('./node-pipe.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'glow-bench-proxy-'));
const children: ChildProcess[] = [];
let cleaningUp = false;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const out = join(work, `${cmd.split('/').pop()}-${children.length}.log`);
  const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  c.stderr!.on('data', (d: Buffer) => {
    if (log.length < 100_000) log += d.toString();
  });
  c.on('exit', (code, signal) => {
    try {
      writeFileSync(out, log);
    } catch {
      /* the work directory is gone */
    }
    if (!cleaningUp) process.stderr.write(`bench/proxy: ${cmd} ${args.join(' ')} exited (${code ?? signal}):\n${log.slice(-2000)}\n`);
  });
  children.push(c);
  return c;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** utime + stime of a process and its children threads, in seconds (clock ticks of 10 ms). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      /* gone */
    }
  }
  return ticks / 100;
}

function rssMb(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

/** The process and its direct children (cluster workers, nginx workers). */
function family(pid: number): number[] {
  const out = [pid];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

interface Target {
  name: string;
  kind: 'direct' | 'tcp' | 'http' | 'https';
  /** The HAProxy target it is compared with. */
  baseline: string;
  port: number;
  pids: () => number[];
}

interface Load {
  name: string;
  run(t: Target): Promise<Sample>;
}

interface Sample {
  rps?: number;
  p50us?: number;
  p99us?: number;
  gbits?: number;
  cpuUsPerReq?: number;
  rssMb: number;
  errors?: string;
}

function toUs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n : unit === 'ms' ? n * 1000 : unit === 's' ? n * 1e6 : NaN;
}

function wrkLoad(name: string, conns: number, close: boolean): Load {
  return {
    name,
    async run(t) {
      const pids = t.pids();
      const cpu0 = cpuSeconds(pids);
      const args = ['-c', '0', 'wrk', '-t1', `-c${conns}`, `-d${SECONDS}s`, '--latency'];
      if (close) args.push('-H', 'Connection: close');
      args.push(`${t.kind === 'https' ? 'https' : 'http'}://127.0.0.1:${t.port}/`);
      const r = spawnSync('taskset', args, { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 });
      const cpu = cpuSeconds(pids) - cpu0;
      const out = r.stdout;
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const lat = (p: string) => {
        const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)$`, 'm').exec(out);
        return m ? toUs(m[1]!, m[2]!) : NaN;
      };
      const errs = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses: \d+/.exec(out)?.[0]].filter(Boolean).join('; ');
      return {
        rps,
        p50us: lat('50'),
        p99us: lat('99'),
        ...(t.kind !== 'direct' ? { cpuUsPerReq: (cpu * 1e6) / (rps * SECONDS) } : {}),
        rssMb: rssMb(pids),
        ...(errs ? { errors: errs } : {}),
      };
    },
  };
}

function bulkLoad(): Load {
  return {
    name: 'bulk tcp stream',
    async run(t) {
      const r = spawnSync('taskset', ['-c', '0', 'iperf3', '-c', '127.0.0.1', '-p', String(t.port), '-t', String(SECONDS), '-J'], {
        encoding: 'utf8',
        timeout: (SECONDS + 30) * 1000,
      });
      let gbits = NaN;
      try {
        const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
        gbits = j.end.sum_received.bits_per_second / 1e9;
      } catch {
        /* printed as NaN, with iperf3's own words */
      }
      const err = Number.isFinite(gbits) ? undefined : (/"error":\s*"([^"]*)"/.exec(r.stdout)?.[1] ?? (r.stderr || r.error?.message || 'no result').trim());
      return { gbits, rssMb: rssMb(t.pids()), ...(err ? { errors: err } : {}) };
    },
  };
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Opens `n` connections to `port` that send nothing; returns them once all are connected. */
async function idleConnections(port: number, n: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < n; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, n - i) }, () =>
        new Promise<void>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port });
          s.on('connect', () => resolve());
          s.on('error', reject);
          socks.push(s);
        }),
      ),
    );
  }
  return socks;
}

async function main(): Promise<void> {
  // 10,000 idle connections through a TCP proxy need 20,000+ descriptors in it: raise the limit if allowed.
  try {
    execFileSync('prlimit', ['--nofile=200000:200000', '--pid', String(process.pid)], { stdio: 'ignore' });
  } catch {
    /* not permitted here: the idle figure uses what the limit allows and says so */
  }
  const nofile = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 1024);
  const env = { ...process.env, NODE_ENV: 'production' };

  const upPort = await freePort();
  const iperfPort = await freePort();
  const nginxDir = join(work, 'nginx');
  mkdirSync(join(nginxDir, 'logs'), { recursive: true });
  writeFileSync(
    join(nginxDir, 'nginx.conf'),
    `worker_processes 1;
worker_rlimit_nofile 200000;
pid ${nginxDir}/nginx.pid;
error_log ${nginxDir}/error.log warn;
events { worker_connections 60000; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:${upPort} backlog=4096;
    location / { return 200 "ok"; }
  }
}
`,
  );
  start('taskset', ['-c', '0', 'nginx', '-p', nginxDir, '-c', join(nginxDir, 'nginx.conf'), '-g', 'daemon off;']);
  start('taskset', ['-c', '0', 'iperf3', '-s', '-p', String(iperfPort)]);
  await waitPort(upPort);
  await waitPort(iperfPort);

  // One certificate (EC P-256) for both TLS terminators: HAProxy reads cert and key from one file.
  const tlsDir = join(work, 'tls');
  mkdirSync(tlsDir);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=bench.example.com', '-addext', 'subjectAltName=DNS:bench.example.com', '-keyout', join(tlsDir, 'bench.key'), '-out', join(tlsDir, 'bench.crt')], { stdio: 'ignore' });
  writeFileSync(join(tlsDir, 'bench.pem'), readFileSync(join(tlsDir, 'bench.crt'), 'utf8') + readFileSync(join(tlsDir, 'bench.key'), 'utf8'));

  const [hTcp, hHttp, hTcpBulk, hHttps] = [await freePort(), await freePort(), await freePort(), await freePort()];
  writeFileSync(
    join(work, 'haproxy.cfg'),
    `global
  nbthread 1
  maxconn 9000
defaults
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  maxconn 9000
frontend ft_tcp
  mode tcp
  bind 127.0.0.1:${hTcp}
  default_backend bk_tcp
backend bk_tcp
  mode tcp
  server s1 127.0.0.1:${upPort}
frontend ft_tcp_bulk
  mode tcp
  bind 127.0.0.1:${hTcpBulk}
  default_backend bk_tcp_bulk
backend bk_tcp_bulk
  mode tcp
  server s1 127.0.0.1:${iperfPort}
frontend ft_http
  mode http
  bind 127.0.0.1:${hHttp}
  option http-keep-alive
  default_backend bk_http
backend bk_http
  mode http
  http-reuse safe
  server s1 127.0.0.1:${upPort}
frontend ft_https
  mode http
  bind 127.0.0.1:${hHttps} ssl crt ${join(tlsDir, 'bench.pem')} alpn http/1.1 ssl-min-ver TLSv1.2
  option http-keep-alive
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend bk_http
`,
  );
  const haproxy = start('taskset', ['-c', '1', 'haproxy', '-db', '-f', join(work, 'haproxy.cfg')]);

  const check = { type: 'tcp', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 };
  const policy = { balance: 'least-conn', connectTimeoutMs: 1000, idleTimeoutMs: 3_600_000, retries: 2 };
  const glowRoutes = (tcp: number, http: number, bulk: number, https: number) => ({
    version: 1,
    node: 'bench',
    listeners: [
      { name: String(tcp), bind: '127.0.0.1', port: tcp, protocol: 'tcp', service: 'nginx:80', policy, groups: [{ service: 'nginx:80', kind: 'app', protocol: 'tcp', upstreams: [{ node: 'bench', host: '127.0.0.1', port: upPort, local: true, instance: 1 }], health: check }], for: ['bench'] },
      { name: String(http), bind: '127.0.0.1', port: http, protocol: 'http', service: 'nginx-http:80', policy, groups: [{ service: 'nginx-http:80', kind: 'app', protocol: 'http', upstreams: [{ node: 'bench', host: '127.0.0.1', port: upPort, local: true, instance: 1 }], health: check }], for: ['bench'] },
      { name: String(bulk), bind: '127.0.0.1', port: bulk, protocol: 'tcp', service: 'iperf:5201', policy, groups: [{ service: 'iperf:5201', kind: 'app', protocol: 'tcp', upstreams: [{ node: 'bench', host: '127.0.0.1', port: iperfPort, local: true, instance: 1 }], health: { ...check, type: 'none' } }], for: ['bench'] },
    ],
    exposures: [
      // An exposure doing what HAProxy's ft_https does: TLS termination, X-Forwarded-For/-Proto/-Host.
      { name: 'bench', bind: '127.0.0.1', port: https, protocol: 'http', service: 'nginx-https:80', hosts: [], tls: { cert: join(tlsDir, 'bench.crt'), key: join(tlsDir, 'bench.key') }, accessLog: false, limits: { headBytes: 65536, bodyBytes: 104857600 }, trustedProxies: [], policy, groups: [{ service: 'nginx-https:80', kind: 'app', protocol: 'http', upstreams: [{ node: 'bench', host: '127.0.0.1', port: upPort, local: true, instance: 1 }], health: check }] },
    ],
  });
  const glow = async (name: string, workers: number, cpus: string) => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()] as const;
    const file = join(work, `${name}.json`);
    writeFileSync(file, JSON.stringify(glowRoutes(...ports)));
    const p = start('taskset', ['-c', cpus, process.execPath, ENTRY, '--routes', file, '--admin', join(work, `${name}.sock`), '--log-level', 'warn'], {
      ...env,
      NODE_OPTIONS: PROXY_NODE_OPTIONS, // as glow-proxy.service runs it
      GLOW_BENCH_WORKERS: String(workers),
    });
    return { p, ports };
  };
  const g1 = await glow('glow', 1, '1');
  const pipePort = await freePort();
  const pipeBulkPort = await freePort();
  const pipe = start('taskset', ['-c', '1', process.execPath, PIPE, String(pipePort), String(upPort)], env);
  start('taskset', ['-c', '1', process.execPath, PIPE, String(pipeBulkPort), String(iperfPort)], env);
  const g2 = values['no-cluster'] ? null : await glow('glow-x2', 2, '0,1');
  for (const port of [hTcp, hHttp, hTcpBulk, hHttps, pipePort, pipeBulkPort, ...g1.ports, ...(g2?.ports ?? [])]) await waitPort(port);
  await sleep(500);

  const pidsOf = (c: ChildProcess) => () => family(c.pid!);
  const targets: Target[] = [
    { name: 'direct', kind: 'direct', baseline: 'haproxy-tcp', port: upPort, pids: () => [] },
    { name: 'haproxy-tcp', kind: 'tcp', baseline: 'haproxy-tcp', port: hTcp, pids: pidsOf(haproxy) },
    { name: 'haproxy-http', kind: 'http', baseline: 'haproxy-http', port: hHttp, pids: pidsOf(haproxy) },
    { name: 'node-pipe', kind: 'tcp', baseline: 'haproxy-tcp', port: pipePort, pids: pidsOf(pipe) },
    { name: 'glow-tcp', kind: 'tcp', baseline: 'haproxy-tcp', port: g1.ports[0], pids: pidsOf(g1.p) },
    { name: 'glow-http', kind: 'http', baseline: 'haproxy-http', port: g1.ports[1], pids: pidsOf(g1.p) },
    { name: 'haproxy-https', kind: 'https', baseline: 'haproxy-https', port: hHttps, pids: pidsOf(haproxy) },
    { name: 'glow-https', kind: 'https', baseline: 'haproxy-https', port: g1.ports[3], pids: pidsOf(g1.p) },
    ...(g2
      ? [
          { name: 'glow-tcp-x2', kind: 'tcp' as const, baseline: 'haproxy-tcp', port: g2.ports[0], pids: pidsOf(g2.p) },
          { name: 'glow-http-x2', kind: 'http' as const, baseline: 'haproxy-http', port: g2.ports[1], pids: pidsOf(g2.p) },
        ]
      : []),
  ];
  const bulkPort: Record<string, number> = { direct: iperfPort, 'haproxy-tcp': hTcpBulk, 'node-pipe': pipeBulkPort, 'glow-tcp': g1.ports[2], ...(g2 ? { 'glow-tcp-x2': g2.ports[2] } : {}) };
  const loads: Load[] = [wrkLoad('wrk 1 conn keep-alive', 1, false), wrkLoad('wrk 50 conns keep-alive', 50, false), wrkLoad('wrk 50 conns Connection: close', 50, true)];
  const bulk = bulkLoad();

  // --targets a,b: only these (and their baselines), e.g. `--targets glow-https` for the exposure row alone.
  if (values.targets) {
    const only = new Set(values.targets.split(','));
    for (const t of [...targets]) if (only.has(t.name)) only.add(t.baseline);
    for (let i = targets.length - 1; i >= 0; i--) if (!only.has(targets[i]!.name)) targets.splice(i, 1);
    for (const k of Object.keys(bulkPort)) if (!only.has(k)) delete bulkPort[k];
  }
  // The same certificate and the same cipher on both TLS terminators: what a client of wrk's OpenSSL negotiates.
  const negotiated = (port: number) => {
    const r = spawnSync('openssl', ['s_client', '-brief', '-connect', `127.0.0.1:${port}`, '-servername', 'bench.example.com'], { input: '', encoding: 'utf8', timeout: 10_000 });
    const text = `${r.stdout}${r.stderr}`;
    return `${/Protocol version: (\S+)/.exec(text)?.[1] ?? '?'} ${/Ciphersuite: (\S+)/.exec(text)?.[1] ?? '?'}`;
  };
  const tlsLine = targets.some((t) => t.kind === 'https') ? `negotiated: haproxy-https ${negotiated(hHttps)}, glow-https ${negotiated(g1.ports[3])} (same certificate: EC P-256)` : '';

  const pairs: { t: Target; l: Load }[] = [];
  for (const t of targets) for (const l of loads) pairs.push({ t, l });
  for (const t of targets) if (bulkPort[t.name] !== undefined) pairs.push({ t: { ...t, port: bulkPort[t.name]! }, l: bulk });

  const results = new Map<string, Sample[]>();
  const load0 = loadavg();
  process.stderr.write(`bench/proxy: ${pairs.length} runs × ${ROUNDS} rounds × ${SECONDS} s; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}\n`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const { t, l } of shuffle(pairs)) {
      const s = await l.run(t);
      const key = `${l.name}\0${t.name}`;
      results.set(key, [...(results.get(key) ?? []), s]);
      process.stderr.write(`  round ${round + 1} ${l.name.padEnd(32)} ${t.name.padEnd(13)} ${s.rps !== undefined ? `${s.rps.toFixed(0)} req/s p99 ${s.p99us?.toFixed(0)} µs` : `${s.gbits?.toFixed(2)} Gbit/s`}${s.errors ? ` (${s.errors})` : ''}\n`);
      await sleep(300);
    }
  }
  const load1 = loadavg();

  // Idle connections: RSS of each proxy holding IDLE client connections (TCP: and as many upstream ones).
  // A TCP proxy holds two descriptors per connection (client and upstream); the limit caps the count. Each proxy
  // is measured as it is after the load above, and Glow also fresh (a new process that has served nothing).
  const idleTargets: Target[] = [];
  if (IDLE > 0 && !values.targets) {
    const fresh = await glow('glow-fresh', 1, '1');
    const freshHttp = await glow('glow-fresh-http', 1, '1');
    for (const port of [...fresh.ports, ...freshHttp.ports]) await waitPort(port);
    await sleep(1000);
    idleTargets.push(
      ...targets.filter((x) => x.kind !== 'direct' && x.kind !== 'https'),
      { name: 'glow-tcp fresh', kind: 'tcp', baseline: 'haproxy-tcp', port: fresh.ports[0], pids: pidsOf(fresh.p) },
      { name: 'glow-http fresh', kind: 'http', baseline: 'haproxy-http', port: freshHttp.ports[1], pids: pidsOf(freshHttp.p) },
    );
  }
  const idle: { name: string; mb: number; before: number; count: number }[] = [];
  for (const t of idleTargets) {
    const count = Math.min(IDLE, Math.floor((nofile - 200) / (t.kind === 'tcp' ? 2 : 1)));
    const before = rssMb(t.pids());
    const socks = await idleConnections(t.port, count);
    await sleep(2000);
    idle.push({ name: t.name, mb: rssMb(t.pids()), before, count });
    for (const s of socks) s.destroy();
    await sleep(1500);
  }

  // ---- report ----
  const fmt = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
  const med = (l: string, t: string, f: (s: Sample) => number | undefined) => median((results.get(`${l}\0${t}`) ?? []).map((s) => f(s) ?? NaN));
  const lines: string[] = [];
  lines.push(`bench/proxy — ${ROUNDS} rounds × ${SECONDS} s per run, medians; upstream nginx + load on CPU 0, proxies on CPU 1 (-x2: 2 workers on CPUs 0–1)`);
  lines.push(`load average: start ${load0.map((x) => x.toFixed(2)).join(' ')}, end ${load1.map((x) => x.toFixed(2)).join(' ')}`);
  if (tlsLine) lines.push(tlsLine);
  for (const l of loads) {
    lines.push('', `${l.name}`, `  ${'target'.padEnd(14)}${'req/s'.padStart(10)}${'× base'.padStart(8)}${'p50 µs'.padStart(9)}${'p99 µs'.padStart(9)}${'p99 ×'.padStart(7)}${'CPU µs/req'.padStart(12)}${'RSS MB'.padStart(8)}  errors`);
    for (const t of targets) {
      const rps = med(l.name, t.name, (s) => s.rps);
      const base = med(l.name, t.baseline, (s) => s.rps);
      const p99 = med(l.name, t.name, (s) => s.p99us);
      const p99b = med(l.name, t.baseline, (s) => s.p99us);
      const errs = (results.get(`${l.name}\0${t.name}`) ?? []).map((s) => s.errors).filter(Boolean);
      lines.push(
        `  ${t.name.padEnd(14)}${fmt(rps).padStart(10)}${fmt(rps / base, 2).padStart(8)}${fmt(med(l.name, t.name, (s) => s.p50us)).padStart(9)}${fmt(p99).padStart(9)}${fmt(p99 / p99b, 2).padStart(7)}${fmt(med(l.name, t.name, (s) => s.cpuUsPerReq), 1).padStart(12)}${fmt(Math.max(...(results.get(`${l.name}\0${t.name}`) ?? []).map((s) => s.rssMb)), 0).padStart(8)}  ${errs.length ? errs[0] : ''}`,
      );
    }
  }
  lines.push('', 'bulk tcp stream (iperf3, 1 stream)', `  ${'target'.padEnd(14)}${'Gbit/s'.padStart(10)}${'× base'.padStart(8)}`);
  for (const name of Object.keys(bulkPort)) {
    const g = med(bulk.name, name, (s) => s.gbits);
    lines.push(`  ${name.padEnd(14)}${fmt(g, 2).padStart(10)}${fmt(g / med(bulk.name, 'haproxy-tcp', (s) => s.gbits), 2).padStart(8)}`);
  }
  lines.push('', `RSS with idle client connections (MB: before → with N; per 10,000 extrapolated linearly when N is smaller; open-files limit ${nofile})`);
  for (const i of idle) {
    const per10k = i.before + ((i.mb - i.before) * 10_000) / i.count;
    lines.push(`  ${i.name.padEnd(16)}${fmt(i.before).padStart(6)} → ${fmt(i.mb).padStart(4)} with ${i.count}${i.count < 10_000 && i.count >= 5000 ? `  (≈ ${fmt(per10k)} with 10,000)` : ''}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function cleanup(): Promise<void> {
  cleaningUp = true;
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of running) c.kill('SIGTERM');
  await Promise.race([Promise.all(running.map((c) => new Promise((r) => c.once('exit', r)))), sleep(3000)]);
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}

main().then(
  () => cleanup(),
  async (e: unknown) => {
    process.stderr.write(`bench/proxy: ${(e as Error).stack ?? String(e)}\n`);
    await cleanup();
    process.exitCode = 1;
  },
);
process.on('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});
