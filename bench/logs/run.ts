/**
 * bench/logs: how fast glowd's log forwarding reads the journal and writes the file sink, against the floor
 * measured in the same run: `journalctl -o json` of the same records into a file — what the forwarder cannot beat,
 * since it reads through journalctl itself. Both run in one real systemd node (test/harness) with its own
 * journald; the forwarder runs as its own process (driver.ts) with the code glowd runs, so its memory is its own.
 *
 *   npm run build && node dist/bench/logs/run.js [--records 100000] [--rounds 3] [--rate 5000] [--live-seconds 20]
 *
 * 1. Throughput: `--records` lines of one instance are written to the journal; then, interleaved `--rounds` times,
 *    the floor (journalctl -o json > file) and the forwarder catching up on that backlog (file sink, default batch
 *    settings, fdatasync per batch) on the same file system. Records per second, peak RSS of the forwarder's
 *    process and of its journalctl.
 * 2. Lag: a generator writes `--rate` lines per second for `--live-seconds` while the forwarder follows; its lag
 *    (age of the oldest record read but not acknowledged) is sampled every 50 ms.
 *
 * Targets: at least 0.7x of the floor, under 200 MB RSS, lag under 1 s at 5,000 records/s. Needs root. It prints
 * figures, with the load average (a shared machine makes them noisy); it does not assert.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { NODE } from '../../test/systemd/fixture.js';
import { bootNode, stopAll } from '../../test/harness/systemd-node.js';
import type { SystemdNode } from '../../test/harness/systemd-node.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    rate: { type: 'string', default: '5000' },
    'live-seconds': { type: 'string', default: '20' },
  },
});
const N = Number(values.records);
const ROUNDS = Number(values.rounds);
const RATE = Number(values.rate);
const LIVE_S = Number(values['live-seconds']);
const DRIVER = fileURLToPath(new URL('./driver.js', import.meta.url));

/** Writes `count` lines at `rate` per second (0: as fast as journald takes them) as instance 1 of app `bench`. */
const GENERATOR = `
const [count, rate] = process.argv.slice(1).map(Number);
const pad = ' the quick brown fox jumps over the lazy dog; a log line of about a hundred bytes';
let i = 0;
const t0 = Date.now();
function more() {
  while (i < count) {
    i++;
    const ok = process.stdout.write('bench line ' + String(i).padStart(8, '0') + pad + '\\n');
    if (rate && i % 50 === 0) {
      const wait = t0 + (i * 1000) / rate - Date.now();
      if (wait > 0) return setTimeout(more, wait);
    }
    if (!ok) return process.stdout.once('drain', more);
  }
}
more();
`;

function generatorUnit(unit: string, count: number, rate: number, wait: boolean): string[] {
  return [
    'systemd-run', `--unit=${unit}`, ...(wait ? ['--wait'] : []), '-q', '-p', 'Type=exec',
    '-p', 'LogExtraFields=GLOW_APP=bench', '-p', 'LogExtraFields=GLOW_VERSION=1', '-p', 'LogExtraFields=GLOW_INSTANCE=1', '-p', 'LogExtraFields=GLOW_NODE=bench',
    NODE, '-e', GENERATOR, String(count), String(rate),
  ];
}

async function journalCount(node: SystemdNode): Promise<number> {
  const r = await node.execOk(['sh', '-c', 'journalctl -q --no-pager -o cat GLOW_NODE=bench | wc -l'], { timeoutMs: 120_000 });
  return Number(r.stdout.trim());
}

async function floor(node: SystemdNode): Promise<{ seconds: number; lines: number }> {
  const r = await node.execOk(['sh', '-c', 't0=$(date +%s%N); journalctl -o json --no-pager GLOW_NODE=bench > /var/lib/bench/floor.json; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )) $(wc -l < /var/lib/bench/floor.json)'], { timeoutMs: 300_000 });
  const [us, lines] = r.stdout.trim().split(' ').map(Number);
  return { seconds: us! / 1e6, lines: lines! };
}

interface DriverResult {
  records: number;
  seconds: number;
  recordsPerSecond: number;
  peakRssMiB: number;
  peakJournalctlRssMiB: number;
  lagP50?: number;
  lagP99?: number;
  lagMax?: number;
}

async function forward(node: SystemdNode, round: number): Promise<DriverResult> {
  const state = `/var/lib/bench/state-${round}`;
  await node.execOk(['rm', '-rf', state, '/var/lib/bench/out']);
  const r = await node.execOk([NODE, DRIVER, '--records', String(N), '--path', '/var/lib/bench/out/{app}.log', '--state', state], { timeoutMs: 600_000 });
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as DriverResult;
  const lines = Number((await node.execOk(['sh', '-c', 'wc -l < /var/lib/bench/out/bench.log'])).stdout.trim());
  if (lines < N) throw new Error(`the file sink holds ${lines} lines, not ${N}`);
  return res;
}

async function live(node: SystemdNode): Promise<DriverResult> {
  const count = RATE * LIVE_S;
  const child = node.spawn([NODE, DRIVER, '--records', String(count), '--path', '/var/lib/bench/out/{app}.log', '--state', '/var/lib/bench/state-1', '--live']);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  const deadline = Date.now() + 120_000;
  while (!out.includes('ready\n')) {
    if (Date.now() > deadline) throw new Error('the live driver never caught up');
    await new Promise((r) => setTimeout(r, 50));
  }
  await node.execOk(generatorUnit('glow-bench@live.service', count, RATE, false));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the live phase did not end')), (LIVE_S + 120) * 1000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as DriverResult;
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f1 = (x: number) => x.toFixed(1);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const loadBefore = load();
  const node = await bootNode({ name: 'bench-logs' });
  try {
    await node.execOk(['mkdir', '-p', '/var/lib/bench']);
    // The node's volatile journal lives in its 256 MiB /run: let it keep every record of the run.
    await node.writeFile('/etc/systemd/journald.conf.d/bench.conf', '[Journal]\nRuntimeMaxUse=220M\nRuntimeKeepFree=8M\nRuntimeMaxFileSize=64M\n');
    await node.execOk(['systemctl', 'restart', 'systemd-journald']);
    process.stdout.write(`writing ${N} lines to the node's journal…\n`);
    await node.execOk(generatorUnit('glow-bench@1.service', N, 0, true), { timeoutMs: 600_000 });
    for (let i = 0; (await journalCount(node)) < N; i++) {
      if (i > 100) throw new Error('journald did not store every line');
      await new Promise((r) => setTimeout(r, 100));
    }
    const floors: { seconds: number; lines: number }[] = [];
    const fwds: DriverResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      floors.push(await floor(node));
      fwds.push(await forward(node, round));
      process.stdout.write(`round ${round}: floor ${f1(N / floors.at(-1)!.seconds)} records/s, forwarder ${f1(fwds.at(-1)!.recordsPerSecond)} records/s\n`);
    }
    const lagRun = await live(node);
    const floorRate = N / med(floors.map((x) => x.seconds));
    const fwdRate = med(fwds.map((x) => x.recordsPerSecond));
    const rows = [
      ['floor: journalctl -o json > file', `${f1(floorRate)} records/s`, `median of ${ROUNDS}, ${floors[0]!.lines} lines`],
      ['glowd forwarder → file sink', `${f1(fwdRate)} records/s`, `median of ${ROUNDS}; ${(fwdRate / floorRate).toFixed(2)}x of the floor (target ≥ 0.7x)`],
      ['forwarder peak RSS', `${f1(Math.max(...fwds.map((x) => x.peakRssMiB), lagRun.peakRssMiB))} MiB`, `its journalctl: ${f1(Math.max(...fwds.map((x) => x.peakJournalctlRssMiB), lagRun.peakJournalctlRssMiB))} MiB (target < 200 MB)`],
      [`lag at ${RATE} records/s for ${LIVE_S} s`, `p50 ${lagRun.lagP50!.toFixed(3)} s, p99 ${lagRun.lagP99!.toFixed(3)} s, max ${lagRun.lagMax!.toFixed(3)} s`, `${f1(lagRun.recordsPerSecond)} records/s forwarded (target: lag < 1 s)`],
    ];
    process.stdout.write(`\nbench/logs: ${N} records of ~110 bytes, one instance, node with volatile journald\n`);
    for (const [what, value, note] of rows) process.stdout.write(`  ${what!.padEnd(38)} ${value!.padEnd(40)} ${note}\n`);
    process.stdout.write(`load average before: ${loadBefore}; after: ${load()} (2 cores, shared: figures are noisy when others run)\n`);
  } finally {
    await stopAll();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
