/**
 * bench/reconcile: from writing a deployment file to the instance answering on its port, for 20 instances, with
 * glowd — side by side, interleaved, with the floor: a shell script that writes the same unit (rendered by the
 * same code), runs `systemctl daemon-reload` and `systemctl start`. Both run in the same real systemd node
 * (test/harness); a prober inside the node reports when each port first accepts a connection.
 *
 *   npm run build && node dist/bench/reconcile/run.js [--instances 20]
 *
 * Target: glowd within 1.5x of the floor and under 1 s median. Needs root. It prints; it does not assert.
 */
import { DEFAULT_PATHS } from '../../src/base/paths.js';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { loadRepository } from '../../src/config/load.js';
import { memorySource } from '../../src/config/source.js';
import { renderUnits } from '../../src/render/units.js';
import { planNode } from '../../src/plan/node-plan.js';
import { Glowd, NODE, Repo } from '../../test/systemd/fixture.js';
import { bootNode, stopAll } from '../../test/harness/systemd-node.js';

const { values } = parseArgs({ options: { instances: { type: 'string', default: '20' } } });
const N = Number(values.instances);

const app = (name: string, port: number) => `image: svc\nversion: "1"\nruntime: exec\ncommand: [bin/server, "${port}"]\nprovides: [${port}/tcp]\n`;

/** A process inside the node that answers "ready PORT" once PORT accepts a TCP connection. */
const PROBER = `
const net = require('net');
require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const port = Number(line);
  const tryOnce = () => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); process.stdout.write('ready ' + port + '\\n'); });
    s.once('error', () => { s.destroy(); setTimeout(tryOnce, 2); });
  };
  tryOnce();
});
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)]!;

async function main(): Promise<void> {
  const repo = new Repo('glow-bench-reconcile-');
  repo.artifact('svc', '1');
  repo.write('glow.yaml', `artifacts: ${repo.artifacts}\n`);
  repo.write('nodes/bench.yaml', 'address: 10.77.0.11\n');
  for (let i = 1; i <= N; i++) {
    repo.write(`apps/svc-${i}.yaml`, app(`svc-${i}`, 10000 + i));
    repo.write(`apps/floor-${i}.yaml`, app(`floor-${i}`, 11000 + i));
  }
  const node = await bootNode({ name: 'bench', binds: [repo.root] });
  const glowd = new Glowd(node, repo);
  try {
    // The floor's units: exactly what glowd renders for the twin apps (unpack the artifact once, as glowd does).
    const floorFiles: Record<string, string> = {};
    for (let i = 1; i <= N; i++) {
      floorFiles[`apps/floor-${i}.yaml`] = app(`floor-${i}`, 11000 + i);
      floorFiles[`deployments/floor-${i}.yaml`] = `app: floor-${i}\nnode: bench\n`;
    }
    const loaded = loadRepository(memorySource({ 'glow.yaml': `artifacts: ${repo.artifacts}\n`, 'nodes/bench.yaml': 'address: 10.77.0.11\n', ...floorFiles }));
    if (!loaded.ok) throw new Error(loaded.errors.map(String).join('\n'));
    const floorUnits = renderUnits(planNode(loaded.snapshot, 'bench'), { ...DEFAULT_PATHS, glowCommand: [NODE, '/nonexistent'] }).files;

    glowd.start();
    await glowd.until((s) => s.revision !== undefined, 'glowd ready');
    // Warm up: the artifact is unpacked by glowd's first exec instance.
    repo.write('deployments/svc-1.yaml', 'app: svc-1\nnode: bench\n');
    await glowd.until((s) => s.instances.some((i) => i.unit === 'glow-svc-1@1.service' && i.activeState === 'active'), 'warm-up instance');

    const prober = node.spawn([NODE, '-e', PROBER]);
    const ready = new Map<number, () => void>();
    createInterface({ input: prober.stdout! }).on('line', (line) => {
      const port = Number(line.split(' ')[1]);
      ready.get(port)?.();
    });
    const waitPort = (port: number) =>
      new Promise<void>((resolve) => {
        ready.set(port, resolve);
        prober.stdin!.write(`${port}\n`);
      });

    const glowdMs: number[] = [];
    const floorMs: number[] = [];
    for (let i = 2; i <= N; i++) {
      // glowd: drop the file, wait for the port.
      let t0 = performance.now();
      const wall0 = Date.now();
      const g = waitPort(10000 + i);
      repo.write(`deployments/svc-${i}.yaml`, `app: svc-${i}\nnode: bench\n`);
      await g;
      glowdMs.push(performance.now() - t0);
      if (process.env.GLOW_BENCH_VERBOSE) {
        const lines = glowd.log.split('\n').filter((l) => l.includes('"time"')).map((l) => JSON.parse(l) as { time: number; msg: string; loadMs?: number; observeMs?: number }).filter((l) => l.time >= wall0 - 3000);
        console.error('glowd', i, glowdMs.at(-1)!.toFixed(0), lines.map((l) => `${l.msg}${l.msg === 'reconciling' ? JSON.stringify((l as unknown as { steps: string[]; reason: string }).steps) + (l as unknown as { reason: string }).reason : ''}@${l.time - wall0}${l.loadMs !== undefined ? `(load ${l.loadMs}, observe ${l.observeMs})` : ''}`).join(' '));
      }
      // The floor: write the same unit, daemon-reload, start.
      // Not named glow-* and without glow's header: glowd would (rightly) remove it as its own orphan.
      const unit = floorUnits.get(`glow-floor-${i}@.service`)!.split('\n').slice(1).join('\n');
      const script = `cat > /etc/systemd/system/floor-${i}@.service <<'UNIT'\n${unit}UNIT\nsystemctl daemon-reload && systemctl start floor-${i}@1.service`;
      t0 = performance.now();
      const f = waitPort(11000 + i);
      const sh = node.exec(['sh', '-c', script], { timeoutMs: 30_000 });
      await Promise.all([f, sh.then((r) => {
        if (r.code !== 0) throw new Error(`floor script failed: ${r.stderr}`);
      })]);
      floorMs.push(performance.now() - t0);
      if (process.env.GLOW_BENCH_VERBOSE) console.error('floor', i, floorMs.at(-1));
    }
    prober.kill();
    if (process.env.GLOW_BENCH_VERBOSE) console.error(glowd.log.split('\n').filter((l) => /"level":(40|50)/.test(l)).join('\n'));
    const load = (await import('node:os')).loadavg()[0]!.toFixed(2);
    console.log(`bench/reconcile: deployment file written → port answering, ${glowdMs.length} instances each, interleaved (load average ${load})`);
    console.log(`${'path'.padEnd(44)} ${'median ms'.padStart(10)} ${'p95 ms'.padStart(8)} ${'x floor'.padStart(8)}`);
    const fm = median(floorMs);
    const row = (name: string, xs: number[]) =>
      console.log(`${name.padEnd(44)} ${median(xs).toFixed(0).padStart(10)} ${p95(xs).toFixed(0).padStart(8)} ${(median(xs) / fm).toFixed(2).padStart(8)}`);
    row('floor: write unit, daemon-reload, start', floorMs);
    row('glowd: write deployments/<x>.yaml', glowdMs);
    console.log('target: glowd within 1.5x of the floor, median under 1000 ms');
  } finally {
    await glowd.stop();
    await stopAll();
    repo.cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
