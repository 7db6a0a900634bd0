/**
 * Preloaded into a measured process with `node --import`: on exit, writes its peak RSS (kB) and CPU time (µs)
 * as JSON to the file named by GLOW_BENCH_RUSAGE. Keeps measurement out of the product's code.
 */
import { writeFileSync } from 'node:fs';

const out = process.env.GLOW_BENCH_RUSAGE;
if (out) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(out, JSON.stringify({ maxRssKb: u.maxRSS, cpuUs: u.userCPUTime + u.systemCPUTime }));
  });
}
