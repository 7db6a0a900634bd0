/**
 * The forwarder side of bench/logs, run inside the benchmark's systemd node: one file sink through the very code
 * glowd runs (LogForwarders → Forwarder → journalctl → FileSink), in a process of its own so that its memory is
 * measured alone. Prints one JSON line of figures.
 *
 *   node driver.js --records N --path /var/lib/bench/out/{app}.log --state DIR [--live]
 *
 * Without --live it forwards the backlog (no cursor: from the start of the boot) and times it. With --live it
 * resumes after the stored cursor, prints "ready", and samples the lag until N more records are forwarded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Registry } from 'prom-client';
import { LogForwarders } from '../../src/logs/manager.js';

const { values } = parseArgs({
  options: { records: { type: 'string' }, path: { type: 'string' }, state: { type: 'string' }, live: { type: 'boolean', default: false } },
});
const N = Number(values.records);

function rssOf(pid: number | 'self'): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function childPids(): number[] {
  const out: number[] = [];
  for (const t of readdirSync('/proc/self/task')) {
    try {
      out.push(...readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // the thread ended
    }
  }
  return out;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : 0;
};

async function main(): Promise<void> {
  const logs = new LogForwarders({ node: 'bench', stateDir: values.state!, registry: new Registry(), log: pino({ level: 'warn' }) });
  const sink = { name: 'bench-file', type: 'file' as const, path: values.path!, batchSize: 1000, batchWaitMs: 250 };
  let peakRss = 0;
  let peakJournalctl = 0;
  const lags: number[] = [];
  const t0 = performance.now();
  logs.apply([sink], new Map());
  const base = values.live ? await new Promise<number>((resolve) => {
    // Wait until the sink runs and has caught up with what is already there, then say so.
    const check = setInterval(() => {
      const s = logs.status()[0];
      if (s?.state === 'running' && s.lagSeconds === 0) {
        clearInterval(check);
        setTimeout(() => resolve(logs.status()[0]!.forwarded), 300);
      }
    }, 50);
  }) : 0;
  if (values.live) process.stdout.write('ready\n');
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      peakRss = Math.max(peakRss, rssOf('self'));
      for (const pid of childPids()) peakJournalctl = Math.max(peakJournalctl, rssOf(pid));
      const s = logs.status()[0];
      if (values.live) lags.push(s?.lagSeconds ?? 0);
      if (s && s.forwarded - base >= N) {
        clearInterval(tick);
        resolve();
      }
    }, values.live ? 50 : 20);
  });
  const seconds = (performance.now() - (values.live ? started : t0)) / 1000;
  await logs.stop();
  process.stdout.write(
    `${JSON.stringify({
      records: N,
      seconds,
      recordsPerSecond: N / seconds,
      peakRssMiB: peakRss,
      peakJournalctlRssMiB: peakJournalctl,
      ...(values.live ? { lagP50: pct(lags, 50), lagP99: pct(lags, 99), lagMax: Math.max(...lags) } : {}),
    })}\n`,
  );
}

void main();
