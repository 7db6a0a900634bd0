/**
 * bench/proxy: Glow's proxy side by side with HAProxy and a direct connection, interleaved, on this machine.
 *
 *   npm run build && node dist/bench/proxy/run.js [--rounds 3] [--seconds 5] [--idle 10000] [--targets a,b]
 *       [--single-threaded-gc] [--cluster]
 *
 * Needs (Debian): nginx, haproxy, wrk, iperf3, util-linux (taskset, prlimit); run as root (it raises its own
 * open-files limit for the idle-connection figure).
 *
 * Layout: the upstream (nginx answering `ok`, one worker) and the load
 * generators (wrk, iperf3) are pinned to CPU 0; each proxy runs alone on CPU 1 (one HAProxy thread, one Node
 * process). `node-pipe` is the floor of any Node proxy here (`net` + `pipe()`, nothing else).
 * Glow runs as two processes: one with GLOW_PROXY_DATA_PATH=native (its tcp, http and TLS listeners on
 * native/relay.c) and one with GLOW_PROXY_DATA_PATH=portable (the JavaScript path, Node's TLS).
 * `--single-threaded-gc` adds the same two processes again with Node's --single-threaded-gc (rows `+stgc`);
 * `--cluster` adds the cluster experiment (`-x2`: two portable workers sharing the sockets, on CPUs 0–1).
 * Every round runs every (target, load) pair once, in a shuffled order; medians over rounds are printed with
 * ratios to HAProxy (TCP targets to HAProxy mode tcp, HTTP targets to HAProxy mode http), the proxy's CPU per
 * request (per connection with `Connection: close`) and its RSS, then the RSS of each proxy holding 10,000 idle
 * client connections, then the native path against its targets. It prints; it does not assert. Differences under
 * about 10–15% are noise on this VM.
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
    cluster: { type: 'boolean', default: false },
    /** Accepted for old command lines: the cluster rows are off unless --cluster. */
    'no-cluster': { type: 'boolean', default: false },
    'single-threaded-gc': { type: 'boolean', default: false },
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
/** What each child wrote to stderr so far (the first 100 kB). */
const stderrOf = new WeakMap<ChildProcess, () => string>();
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
  stderrOf.set(c, () => log);
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
  /** Its listener to the iperf3 server, for the bulk row (none: no bulk row). */
  bulkPort?: number;
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
  const STGC = values['single-threaded-gc'];
  interface Glow {
    p: ChildProcess;
    ports: readonly [number, number, number, number];
  }
  /** One `glow proxy` with the four listeners: tcp, http, tcp to iperf3, https. */
  const glow = async (name: string, path: 'native' | 'portable', o: { stgc?: boolean; workers?: number; cpus?: string } = {}): Promise<Glow> => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()] as const;
    const file = join(work, `${name}.json`);
    writeFileSync(file, JSON.stringify(glowRoutes(...ports)));
    // --log-level info: the start line says which data path the process runs (read back below); nothing per connection.
    // Node 20 refuses --single-threaded-gc in NODE_OPTIONS: it goes on the command line.
    const p = start('taskset', ['-c', o.cpus ?? '1', process.execPath, ...(o.stgc ? ['--single-threaded-gc'] : []), ENTRY, '--routes', file, '--admin', join(work, `${name}.sock`), '--log-level', 'info'], {
      ...env,
      NODE_OPTIONS: PROXY_NODE_OPTIONS, // as glow-proxy.service runs it
      GLOW_PROXY_DATA_PATH: path,
      GLOW_BENCH_WORKERS: String(o.workers ?? 1),
    });
    return { p, ports };
  };
  /** The data path a Glow process says it runs, from its start line. */
  const dataPathOf = (g: Glow): string => {
    for (const line of (stderrOf.get(g.p)?.() ?? '').split('\n')) {
      try {
        const j = JSON.parse(line) as { msg?: string; dataPath?: string; why?: string };
        if (j.msg === 'proxy started') return `${j.dataPath}${j.why ? ` (${j.why})` : ''}`;
      } catch {
        /* not a JSON line */
      }
    }
    return '?';
  };
  const gNative = await glow('glow-native', 'native');
  const gPortable = await glow('glow-portable', 'portable');
  const gNativeGc = STGC ? await glow('glow-native-stgc', 'native', { stgc: true }) : null;
  const gPortableGc = STGC ? await glow('glow-portable-stgc', 'portable', { stgc: true }) : null;
  // The cluster experiment: node:cluster shares Node's own listening sockets, so it runs the portable path.
  const gCluster = values.cluster ? await glow('glow-x2', 'portable', { workers: 2, cpus: '0,1' }) : null;
  const glows = [gNative, gPortable, gNativeGc, gPortableGc, gCluster].filter((g): g is Glow => g !== null);
  const pipePort = await freePort();
  const pipeBulkPort = await freePort();
  const pipe = start('taskset', ['-c', '1', process.execPath, PIPE, String(pipePort), String(upPort)], env);
  start('taskset', ['-c', '1', process.execPath, PIPE, String(pipeBulkPort), String(iperfPort)], env);
  for (const port of [hTcp, hHttp, hTcpBulk, hHttps, pipePort, pipeBulkPort, ...glows.flatMap((g) => g.ports)]) await waitPort(port);
  await sleep(500);

  const pidsOf = (c: ChildProcess) => () => family(c.pid!);
  const tcpRow = (name: string, g: Glow): Target => ({ name, kind: 'tcp', baseline: 'haproxy-tcp', port: g.ports[0], bulkPort: g.ports[2], pids: pidsOf(g.p) });
  const httpRow = (name: string, g: Glow): Target => ({ name, kind: 'http', baseline: 'haproxy-http', port: g.ports[1], pids: pidsOf(g.p) });
  const httpsRow = (name: string, g: Glow): Target => ({ name, kind: 'https', baseline: 'haproxy-https', port: g.ports[3], pids: pidsOf(g.p) });
  // The HTTP rows: each process's http listener. The TLS rows: each process's exposure, whose TLS the native
  // process terminates in the addon, the portable one in Node.
  const targets: Target[] = [
    { name: 'direct', kind: 'direct', baseline: 'haproxy-tcp', port: upPort, bulkPort: iperfPort, pids: () => [] },
    { name: 'haproxy-tcp', kind: 'tcp', baseline: 'haproxy-tcp', port: hTcp, bulkPort: hTcpBulk, pids: pidsOf(haproxy) },
    { name: 'node-pipe', kind: 'tcp', baseline: 'haproxy-tcp', port: pipePort, bulkPort: pipeBulkPort, pids: pidsOf(pipe) },
    tcpRow('glow-tcp-native', gNative),
    ...(gNativeGc ? [tcpRow('glow-tcp-native+stgc', gNativeGc)] : []),
    tcpRow('glow-tcp-portable', gPortable),
    ...(gPortableGc ? [tcpRow('glow-tcp-portable+stgc', gPortableGc)] : []),
    ...(gCluster ? [tcpRow('glow-tcp-portable-x2', gCluster)] : []),
    { name: 'haproxy-http', kind: 'http', baseline: 'haproxy-http', port: hHttp, pids: pidsOf(haproxy) },
    httpRow('glow-http-native', gNative),
    ...(gNativeGc ? [httpRow('glow-http-native+stgc', gNativeGc)] : []),
    httpRow('glow-http-portable', gPortable),
    ...(gPortableGc ? [httpRow('glow-http-portable+stgc', gPortableGc)] : []),
    ...(gCluster ? [httpRow('glow-http-portable-x2', gCluster)] : []),
    { name: 'haproxy-https', kind: 'https', baseline: 'haproxy-https', port: hHttps, pids: pidsOf(haproxy) },
    httpsRow('glow-https-native', gNative),
    ...(gNativeGc ? [httpsRow('glow-https-native+stgc', gNativeGc)] : []),
    httpsRow('glow-https-portable', gPortable),
    ...(gPortableGc ? [httpsRow('glow-https-portable+stgc', gPortableGc)] : []),
  ];
  const loads: Load[] = [wrkLoad('wrk 1 conn keep-alive', 1, false), wrkLoad('wrk 50 conns keep-alive', 50, false), wrkLoad('wrk 50 conns Connection: close', 50, true)];
  const bulk = bulkLoad();

  // --targets a,b: only these (and their baselines), e.g. `--targets glow-https-portable` for the exposure row alone.
  if (values.targets) {
    const only = new Set(values.targets.split(','));
    for (const t of [...targets]) if (only.has(t.name)) only.add(t.baseline);
    for (let i = targets.length - 1; i >= 0; i--) if (!only.has(targets[i]!.name)) targets.splice(i, 1);
  }
  // The same certificate and the same cipher on both TLS terminators: what a client of wrk's OpenSSL negotiates.
  const negotiated = (port: number) => {
    const r = spawnSync('openssl', ['s_client', '-brief', '-connect', `127.0.0.1:${port}`, '-servername', 'bench.example.com'], { input: '', encoding: 'utf8', timeout: 10_000 });
    const text = `${r.stdout}${r.stderr}`;
    return `${/Protocol version: (\S+)/.exec(text)?.[1] ?? '?'} ${/Ciphersuite: (\S+)/.exec(text)?.[1] ?? '?'}`;
  };
  const tlsLine = targets.some((t) => t.kind === 'https') ? `negotiated: haproxy-https ${negotiated(hHttps)}, glow-https-native ${negotiated(gNative.ports[3])} (same certificate: EC P-256)` : '';
  const pathsLine = `data paths (each process's start line): glow-native ${dataPathOf(gNative)}, glow-portable ${dataPathOf(gPortable)}${gNativeGc ? `, glow-native-stgc ${dataPathOf(gNativeGc)}` : ''}${gPortableGc ? `, glow-portable-stgc ${dataPathOf(gPortableGc)}` : ''}${gCluster ? `, glow-x2 ${dataPathOf(gCluster)}` : ''}`;

  const pairs: { t: Target; l: Load }[] = [];
  for (const t of targets) for (const l of loads) pairs.push({ t, l });
  const bulkTargets = targets.filter((t) => t.bulkPort !== undefined);
  for (const t of bulkTargets) pairs.push({ t: { ...t, port: t.bulkPort! }, l: bulk });

  const results = new Map<string, Sample[]>();
  const load0 = loadavg();
  process.stderr.write(`bench/proxy: ${pairs.length} runs × ${ROUNDS} rounds × ${SECONDS} s; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}\n${pathsLine}\n`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const { t, l } of shuffle(pairs)) {
      const s = await l.run(t);
      const key = `${l.name}\0${t.name}`;
      results.set(key, [...(results.get(key) ?? []), s]);
      process.stderr.write(`  round ${round + 1} ${l.name.padEnd(32)} ${t.name.padEnd(24)} ${s.rps !== undefined ? `${s.rps.toFixed(0)} req/s p99 ${s.p99us?.toFixed(0)} µs` : `${s.gbits?.toFixed(2)} Gbit/s`}${s.errors ? ` (${s.errors})` : ''}\n`);
      await sleep(300);
    }
  }
  const load1 = loadavg();

  // Idle connections: RSS of each proxy holding IDLE client connections (TCP: and as many upstream ones).
  // A TCP proxy holds two descriptors per connection (client and upstream); the limit caps the count. Each proxy
  // is measured as it is after the load above, and Glow also fresh (a new process that has served nothing).
  const idleTargets: Target[] = [];
  if (IDLE > 0 && !values.targets) {
    const fNative = await glow('glow-fresh-native', 'native');
    const fPortable = await glow('glow-fresh-portable', 'portable');
    const fHttp = await glow('glow-fresh-http', 'native');
    const fHttpPortable = await glow('glow-fresh-http-portable', 'portable');
    for (const port of [...fNative.ports, ...fPortable.ports, ...fHttp.ports, ...fHttpPortable.ports]) await waitPort(port);
    await sleep(1000);
    idleTargets.push(
      ...targets.filter((x) => x.kind !== 'direct' && x.kind !== 'https' && !x.name.endsWith('-x2')),
      tcpRow('glow-tcp-native fresh', fNative),
      tcpRow('glow-tcp-portable fresh', fPortable),
      httpRow('glow-http-native fresh', fHttp),
      httpRow('glow-http-portable fresh', fHttpPortable),
    );
  }
  const idle: { name: string; mb: number; before: number; count: number; per10k: number }[] = [];
  for (const t of idleTargets) {
    const count = Math.min(IDLE, Math.floor((nofile - 200) / (t.kind === 'tcp' ? 2 : 1)));
    const before = rssMb(t.pids());
    const socks = await idleConnections(t.port, count);
    await sleep(2000);
    const mb = rssMb(t.pids());
    // Extrapolated only over a small step (the open-files limit: 9,900 TCP connections); else not a 10,000 figure.
    idle.push({ name: t.name, mb, before, count, per10k: count >= 10_000 ? mb : count >= 9000 ? before + ((mb - before) * 10_000) / count : NaN });
    for (const s of socks) s.destroy();
    await sleep(1500);
  }

  // ---- report ----
  const fmt = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
  const med = (l: string, t: string, f: (s: Sample) => number | undefined) => median((results.get(`${l}\0${t}`) ?? []).map((s) => f(s) ?? NaN));
  const W = Math.max(14, ...targets.map((t) => t.name.length)) + 2;
  const lines: string[] = [];
  lines.push(`bench/proxy — ${ROUNDS} rounds × ${SECONDS} s per run, medians; upstream nginx + load on CPU 0, proxies on CPU 1${gCluster ? ' (-x2: 2 workers on CPUs 0–1)' : ''}`);
  lines.push(`load average: start ${load0.map((x) => x.toFixed(2)).join(' ')}, end ${load1.map((x) => x.toFixed(2)).join(' ')}`);
  lines.push(pathsLine);
  lines.push(`proxy NODE_OPTIONS: ${PROXY_NODE_OPTIONS}${STGC ? ` (+stgc rows: the same, and node --single-threaded-gc)` : ''}; glow-https-native terminates TLS in the addon (native/relay.c), glow-https-portable in Node`);
  if (tlsLine) lines.push(tlsLine);
  for (const l of loads) {
    const per = l.name.includes('close') ? 'conn' : 'req';
    lines.push('', `${l.name}`, `  ${'target'.padEnd(W)}${'req/s'.padStart(8)}${'× base'.padStart(8)}${'p50 µs'.padStart(9)}${'p99 µs'.padStart(9)}${'p99 ×'.padStart(7)}${`CPU µs/${per}`.padStart(13)}${'CPU ×'.padStart(7)}${'RSS MB'.padStart(8)}  errors`);
    for (const t of targets) {
      const rps = med(l.name, t.name, (s) => s.rps);
      const base = med(l.name, t.baseline, (s) => s.rps);
      const p99 = med(l.name, t.name, (s) => s.p99us);
      const p99b = med(l.name, t.baseline, (s) => s.p99us);
      const cpu = med(l.name, t.name, (s) => s.cpuUsPerReq);
      const cpub = med(l.name, t.baseline, (s) => s.cpuUsPerReq);
      const errs = (results.get(`${l.name}\0${t.name}`) ?? []).map((s) => s.errors).filter(Boolean);
      lines.push(
        `  ${t.name.padEnd(W)}${fmt(rps).padStart(8)}${fmt(rps / base, 2).padStart(8)}${fmt(med(l.name, t.name, (s) => s.p50us)).padStart(9)}${fmt(p99).padStart(9)}${fmt(p99 / p99b, 2).padStart(7)}${fmt(cpu, 1).padStart(13)}${fmt(cpu / cpub, 2).padStart(7)}${fmt(Math.max(...(results.get(`${l.name}\0${t.name}`) ?? []).map((s) => s.rssMb)), 0).padStart(8)}  ${errs.length ? errs[0] : ''}`,
      );
    }
  }
  lines.push('', 'bulk tcp stream (iperf3, 1 stream)', `  ${'target'.padEnd(W)}${'Gbit/s'.padStart(8)}${'× base'.padStart(8)}`);
  for (const t of bulkTargets) {
    const g = med(bulk.name, t.name, (s) => s.gbits);
    lines.push(`  ${t.name.padEnd(W)}${fmt(g, 2).padStart(8)}${fmt(g / med(bulk.name, 'haproxy-tcp', (s) => s.gbits), 2).padStart(8)}`);
  }
  const IW = Math.max(W, ...idle.map((i) => i.name.length + 2));
  if (idle.length) lines.push('', `RSS with idle client connections (MB: before → with N; per 10,000 extrapolated linearly when N is smaller; open-files limit ${nofile})`);
  for (const i of idle) {
    lines.push(`  ${i.name.padEnd(IW)}${fmt(i.before).padStart(6)} → ${fmt(i.mb).padStart(4)} with ${i.count}${i.count < 10_000 && Number.isFinite(i.per10k) ? `  (≈ ${fmt(i.per10k)} with 10,000)` : ''}`);
  }

  // --single-threaded-gc: each Glow row with and without the flag, same run.
  if (STGC) {
    lines.push('', '--single-threaded-gc (rows +stgc against the same rows without; Δ: with against without)');
    lines.push(`  ${'target'.padEnd(W)}${'load'.padEnd(20)}${'req/s'.padStart(22)}${'CPU µs/req (/conn)'.padStart(26)}${'p99 µs'.padStart(26)}`);
    for (const t of targets.filter((x) => x.name.endsWith('+stgc'))) {
      const base = t.name.slice(0, -'+stgc'.length);
      for (const l of loads) {
        const pair = (f: (s: Sample) => number | undefined, d: number) => {
          const a = med(l.name, base, f);
          const b = med(l.name, t.name, f);
          return `${fmt(a, d)} → ${fmt(b, d)} ${`(${b >= a ? '+' : '−'}${fmt(Math.abs((b / a - 1) * 100))}%)`.padStart(8)}`;
        };
        lines.push(`  ${base.padEnd(W)}${l.name.replace('wrk ', '').replace('Connection: ', '').padEnd(20)}${pair((s) => s.rps, 0).padStart(22)}${pair((s) => s.cpuUsPerReq, 1).padStart(26)}${pair((s) => s.p99us, 0).padStart(26)}`);
      }
    }
    for (const i of idle.filter((x) => x.name.endsWith('+stgc'))) {
      const b = idle.find((x) => x.name === i.name.slice(0, -'+stgc'.length));
      if (b) lines.push(`  ${b.name.padEnd(W)}${'RSS MB, 10,000 idle'.padEnd(20)}${`${fmt(b.per10k)} → ${fmt(i.per10k)}`.padStart(22)}`);
    }
  }

  // The native path against its targets (HTTP and TLS: the native process's listeners, on the portable path).
  const L1 = loads[0]!.name;
  const L50 = loads[1]!.name;
  const LC = loads[2]!.name;
  const ratio = (l: string, t: string) => med(l, t, (s) => s.rps) / med(l, targets.find((x) => x.name === t)?.baseline ?? '', (s) => s.rps);
  const p99ratio = (t: string) => med(L1, t, (s) => s.p99us) / med(L1, 'haproxy-tcp', (s) => s.p99us);
  const verdict = (ok: boolean, x: number) => (Number.isFinite(x) ? (ok ? 'met' : 'NOT MET') : '–');
  const also = (f: (t: string) => number, names: string[]) =>
    names
      .filter((n) => targets.some((t) => t.name === n))
      .map((n) => `${n} ${fmt(f(n), 2)}×`)
      .join(', ');
  const goal = (what: string, want: string, got: number, ok: boolean, more = '') => lines.push(`  ${what.padEnd(40)}${want.padEnd(10)}${`${fmt(got, 2)}×`.padStart(8)}  ${verdict(ok, got).padEnd(8)}${more ? `  (${more})` : ''}`);
  lines.push('', 'targets of the native path (glow-tcp-native, glow-http-native, glow-https-native)');
  lines.push(`  ${'target'.padEnd(40)}${'want'.padEnd(10)}${'measured'.padStart(8)}`);
  const tcp50 = ratio(L50, 'glow-tcp-native');
  goal('TCP 50 keep-alive, req/s vs haproxy-tcp', '≥ 1.00×', tcp50, tcp50 >= 1.0, also((n) => ratio(L50, n), ['glow-tcp-portable', 'node-pipe']));
  const tcpC = ratio(LC, 'glow-tcp-native');
  goal('TCP new connection per request', '≥ 0.85×', tcpC, tcpC >= 0.85, also((n) => ratio(LC, n), ['glow-tcp-portable', 'node-pipe']));
  const p99 = p99ratio('glow-tcp-native');
  goal('TCP p99 at 1 connection vs haproxy-tcp', '≤ 1.20×', p99, p99 <= 1.2, `${fmt(med(L1, 'glow-tcp-native', (s) => s.p99us))} against ${fmt(med(L1, 'haproxy-tcp', (s) => s.p99us))} µs; ${also(p99ratio, ['glow-tcp-portable', 'node-pipe'])}`);
  const http50 = ratio(L50, 'glow-http-native');
  goal('HTTP 50 keep-alive vs haproxy-http', '≥ 0.80×', http50, http50 >= 0.8, `1 connection ${fmt(ratio(L1, 'glow-http-native'), 2)}×; ${also((n) => ratio(L50, n), ['glow-http-portable'])}`);
  const httpC = ratio(LC, 'glow-http-native');
  goal('HTTP new connection per request', '≥ 0.80×', httpC, httpC >= 0.8, also((n) => ratio(LC, n), ['glow-http-portable']));
  const tls50 = ratio(L50, 'glow-https-native');
  goal('TLS 50 keep-alive vs haproxy-https', '≥ 0.70×', tls50, tls50 >= 0.7, `1 connection ${fmt(ratio(L1, 'glow-https-native'), 2)}×; new connection per request ${fmt(ratio(LC, 'glow-https-native'), 2)}×; ${also((n) => ratio(L50, n), ['glow-https-portable'])}`);
  for (const name of ['glow-tcp-native', 'glow-tcp-native fresh', 'glow-http-native', 'glow-http-native fresh']) {
    const i = idle.find((x) => x.name === name);
    if (i) lines.push(`  ${`RSS 10,000 idle, ${name.includes('http') ? 'http' : 'tcp'}, ${name.endsWith('fresh') ? 'fresh process' : 'after load'}`.padEnd(40)}${'< 100 MB'.padEnd(10)}${`${fmt(i.per10k)} MB`.padStart(8)}  ${verdict(i.per10k < 100, i.per10k)}`);
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
