/**
 * bench/check: times `glow check` and `glow plan --node` on a generated repository of 500 nodes, 2,000 apps and
 * 10,000 deployments — whole CLI processes, five runs each, interleaved with the floor (reading and parsing the
 * same YAML files with the yaml library alone), medians printed with the ratio to the floor.
 *
 *   npm run build && node dist/bench/check/run.js [--runs 5] [--nodes 500 --apps 2000 --instances 10000]
 *
 * Targets on a 2-core machine: check < 3 s, plan < 3 s, peak RSS < 500 MB. It prints; it does not assert.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateRepo } from './generate.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    nodes: { type: 'string', default: '500' },
    apps: { type: 'string', default: '2000' },
    instances: { type: 'string', default: '10000' },
  },
});
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const glow = here('../../src/cli/glow.js');
const rusage = here('./rusage.js');
const floor = here('./floor.js');

interface Sample {
  ms: number;
  rssMb: number;
  cpuMs: number;
}

function measure(args: string[], expectStatus = 0): Sample {
  const out = join(work, 'rusage.json');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--import', rusage, ...args], {
    env: { ...process.env, GLOW_BENCH_RUSAGE: out },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== expectStatus) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout.slice(0, 2000)}`);
  const u = JSON.parse(readFileSync(out, 'utf8')) as { maxRssKb: number; cpuUs: number };
  return { ms, rssMb: u.maxRssKb / 1024, cpuMs: u.cpuUs / 1000 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const work = mkdtempSync(join(tmpdir(), 'glow-bench-check-'));
try {
  const size = { nodes: Number(values.nodes), apps: Number(values.apps), instances: Number(values.instances) };
  const repo = join(work, 'repo');
  generateRepo(repo, size);
  const runs = Number(values.runs);
  const cases: Record<string, string[]> = {
    'floor: read + yaml.parse': [floor, repo],
    'glow check': [glow, 'check', repo],
    'glow plan --node node-7': [glow, 'plan', repo, '--node', 'node-7', '--json'],
  };
  const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, args] of Object.entries(cases)) samples[name]!.push(measure(args));
  }
  const floorMs = median(samples['floor: read + yaml.parse']!.map((s) => s.ms));
  console.log(`bench/check: ${size.nodes} nodes, ${size.apps} apps, ${size.instances} deployments; ${runs} runs each, interleaved; medians`);
  console.log(`${'command'.padEnd(28)} ${'wall ms'.padStart(9)} ${'cpu ms'.padStart(9)} ${'peak RSS MB'.padStart(12)} ${'x floor'.padStart(8)}`);
  for (const [name, list] of Object.entries(samples)) {
    const ms = median(list.map((s) => s.ms));
    const cpu = median(list.map((s) => s.cpuMs));
    const rss = Math.max(...list.map((s) => s.rssMb));
    console.log(`${name.padEnd(28)} ${ms.toFixed(0).padStart(9)} ${cpu.toFixed(0).padStart(9)} ${rss.toFixed(0).padStart(12)} ${(ms / floorMs).toFixed(2).padStart(8)}`);
  }
  console.log('targets: glow check < 3000 ms, glow plan < 3000 ms, peak RSS < 500 MB');
} finally {
  rmSync(work, { recursive: true, force: true });
}
