/**
 * `glow proxy` for the bench: the same `runProxy`, alone (GLOW_BENCH_WORKERS unset or 1) or as N `node:cluster`
 * workers sharing each listening socket (NODE_CLUSTER_SCHED_POLICY=none: the kernel spreads the accepts; the
 * default round-robin through the primary was measured slower). Each worker is a whole proxy with its own
 * health checks, metrics and admin socket (`<admin>.<worker id>`): this exists only to measure what cluster mode
 * would buy, see bench/proxy/README.md.
 */
import cluster from 'node:cluster';
import { runProxy } from '../../src/cli/proxy.js';

const workers = Number(process.env['GLOW_BENCH_WORKERS'] ?? '1');
const argv = process.argv.slice(2);

if (workers > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < workers; i++) cluster.fork();
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig);
    });
  }
  let left = workers;
  cluster.on('exit', () => {
    left -= 1;
    if (left === 0) process.exit(0);
  });
} else {
  const i = argv.indexOf('--admin');
  if (cluster.isWorker && i >= 0) argv[i + 1] = `${argv[i + 1]}.${cluster.worker!.id}`;
  runProxy(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`glow proxy: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
