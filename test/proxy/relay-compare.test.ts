/**
 * The native data path (native/relay.c) against the portable one (src/proxy/tcp-session.ts, the reference): two
 * proxies in this process, one of each, each with a tcp exposure to a programmable upstream of its own, one to a
 * dead port and one with a short idle timeout, are driven through the same random scripts, connection by
 * connection, and must agree on everything a user of the proxy can see:
 *
 * - the bytes the upstream received and the bytes the client received (count and SHA-1);
 * - how each side saw its connection end: a clean end (FIN) or not, and the class of its error (reset, or a code);
 * - the route's counters over each batch (opened, closed, refused, received and sent bytes, active back to 0) and
 *   each connection's access-log line (result, received and sent bytes);
 * - and after each batch nothing is held: no session on either proxy, `nativeRelay().open === 0`.
 *
 * A script is a list of steps, each run to completion before the next (the harness sees both ends of the
 * connection, so it waits for the bytes or the end to arrive instead of sleeping): the client sends a chunk, the
 * upstream sends a chunk, either half-closes, a slow reader (the client stops reading while the upstream sends
 * megabytes, so that backpressure engages all the way back to the upstream, then reads it all), and one of the
 * ends: both half-close (clean), the client resets, the upstream resets, the upstream dies (closes both ways at
 * once) while the client goes on writing, nobody sends until the idle timeout, or a refusal (the exposure's only
 * upstream is a dead port: the proxy resets the client).
 *
 * What is not compared, because it differs by nature and not by defect:
 * - how many bytes the slow reader's upstream could write before it stalled (each path's buffers differ: Node's
 *   stream buffers against one 64 KiB write in flight per direction), only that it stalled and that every byte
 *   arrived once the client read again;
 * - a refusal's reason, connect_failed or no_upstream: the dead upstream is ejected after some failures and comes
 *   back after a time, at moments that differ between the two runs; both are counted as refused;
 * - the timing of anything (an idle timeout fires on a 100 ms sweep on the native path, by a timer per socket on
 *   the portable one): the test waits for outcomes, never for a time.
 *
 * The scripts come from a seeded PRNG: the seed is printed, GLOW_COMPARE_SEED replays a run, GLOW_COMPARE_SCRIPTS
 * sets how many scripts (default 2400, each run on both paths). The run is bounded in time: no new batch starts
 * after TIME_BUDGET_MS.
 */
import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AccessLog, AccessRecord } from '../../src/proxy/access-log.js';
import { nativeRelay } from '../../src/proxy/native-relay.js';
import { Proxy } from '../../src/proxy/proxy.js';
import type { RouteStats } from '../../src/proxy/metrics.js';
import { deadPort, exposure, freePort, group, routesWith, stopAll, testLog, upstream } from './helpers.js';
import { mulberry32 } from '../harness/prng.js';

const SEED = Number(process.env['GLOW_COMPARE_SEED'] ?? 0x5eed_c0de) >>> 0;
const SCRIPTS = Number(process.env['GLOW_COMPARE_SCRIPTS'] ?? 2400);
const BATCH = 200; // at most 256: a batch's scripts have client addresses of their own
const VERBOSE = process.env['GLOW_COMPARE_VERBOSE'] === '1';
/** GLOW_COMPARE_ONLY=<index>: runs that one script of the seed's run (to study a difference). */
const ONLY = process.env['GLOW_COMPARE_ONLY'] ? Number(process.env['GLOW_COMPARE_ONLY']) : null;
const CONCURRENCY = 12;
const TIME_BUDGET_MS = 35_000;
/** Bytes the upstreams may send in slow-reader steps over the whole run (a bound on the traffic). */
const SLOW_BUDGET = 400 * 1024 * 1024;
/** Any one wait (for bytes, an end, a close) gives up after this long: the outcome then says `stuck`. */
const WAIT_MS = 5000;
const IDLE_MS = 300;
/**
 * Writes of a side that must learn of a reset by writing (see `settle`): 2 never learn it (the first reaches the
 * gone side's kernel, the second makes the proxy reset the writer, only a third fails), 8 always do.
 */
const PROBES = 8;
const PROBE_BYTES = 100;

/** 1 MiB of seeded noise; a chunk is a slice of it at a random offset. */
const POOL = (() => {
  const r = mulberry32(SEED ^ 0xa5a5a5a5);
  const b = Buffer.alloc(1 << 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(r() * 4294967296), i);
  return b;
})();

function chunk(offset: number, n: number): Buffer {
  if (n <= POOL.length - offset) return POOL.subarray(offset, offset + n);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += POOL.length) POOL.copy(out, i, 0, Math.min(POOL.length, n - i));
  return out;
}

// ---- scripts ----

type Step =
  | { k: 'cs'; n: number; at: number } // the client sends n bytes
  | { k: 'us'; n: number; at: number } // the upstream sends n bytes
  | { k: 'ce' } // the client half-closes (and goes on reading)
  | { k: 'ue' } // the upstream half-closes (and goes on reading)
  | { k: 'slow'; n: number }; // the client stops reading; the upstream sends up to n bytes, until it stalls; the client reads again

type End =
  | { k: 'clean' } // whichever side has not half-closed does
  | { k: 'creset' } // the client resets
  | { k: 'ureset' } // the upstream resets
  | { k: 'udie'; writes: number } // the upstream closes both ways; the client goes on writing
  | { k: 'idle' } // nobody sends: the idle timeout ends it
  | { k: 'refuse'; n: number }; // the exposure's upstream is a dead port; the client sends n bytes and waits

interface Script {
  readonly index: number;
  readonly steps: Step[];
  readonly end: End;
}

function describeScript(s: Script): string {
  const step = (t: Step) => ('n' in t ? `${t.k}(${t.n})` : t.k);
  const end = s.end.k === 'udie' ? `udie(${s.end.writes})` : s.end.k === 'refuse' ? `refuse(${s.end.n})` : s.end.k;
  return `#${s.index} [${s.steps.map(step).join(' ')}] ${end}`;
}

let slowBudget = SLOW_BUDGET;

function makeScript(r: () => number, index: number): Script {
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const size = () => {
    const x = r();
    if (x < 0.3) return int(1, 64);
    if (x < 0.7) return int(65, 16 * 1024);
    if (x < 0.95) return int(16 * 1024, 256 * 1024);
    return int(256 * 1024, 2 * 1024 * 1024);
  };
  const e = r();
  if (e < 0.06) return { index, steps: [], end: { k: 'refuse', n: r() < 0.5 ? 0 : int(1, 4096) } };
  // A script that ends at the idle timeout runs on a port with a short one (IDLE_MS): it sends little, and no
  // slow reader, since under load (or a sanitizer) the harness itself may take longer than IDLE_MS to read
  // megabytes, and the timeout would then fire mid-script on either path, by timing.
  const idle = e < 0.12;
  const steps: Step[] = [];
  let cOpen = true;
  let uOpen = true;
  const n = int(0, 8);
  for (let i = 0; i < n; i++) {
    const x = r();
    if (x < 0.35 && cOpen) steps.push({ k: 'cs', n: idle ? int(1, 4096) : size(), at: int(0, POOL.length - 1) });
    else if (x < 0.7 && uOpen) steps.push({ k: 'us', n: idle ? int(1, 4096) : size(), at: int(0, POOL.length - 1) });
    else if (x < 0.78 && cOpen) {
      steps.push({ k: 'ce' });
      cOpen = false;
    } else if (x < 0.86 && uOpen) {
      steps.push({ k: 'ue' });
      uOpen = false;
    } else if (x < 0.9 && uOpen && !idle && slowBudget > 0) {
      const big = int(4, 12) * 1024 * 1024;
      slowBudget -= big;
      steps.push({ k: 'slow', n: big });
    }
    if (!cOpen && !uOpen) break;
  }
  const x = r();
  let end: End;
  if (!cOpen && !uOpen) end = { k: 'clean' };
  else if (idle) end = { k: 'idle' };
  else if (x < 0.4) end = { k: 'clean' };
  else if (x < 0.58) end = { k: 'creset' };
  else if (x < 0.76) end = { k: 'ureset' };
  else if (cOpen) end = { k: 'udie', writes: r() < 0.5 ? int(1, 2) : PROBES };
  else end = { k: 'ureset' };
  return { index, steps, end };
}

// ---- the two sides of a connection, as the harness sees them ----

class Side {
  bytes = 0;
  private readonly hash: Hash = createHash('sha1');
  ended = false;
  closed = false;
  error: string | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.bytes += d.length;
      this.hash.update(d);
      this.changed();
    });
    socket.on('end', () => {
      this.ended = true;
      this.changed();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error ??= e.code ?? e.message;
      this.changed();
    });
    socket.on('close', () => {
      this.closed = true;
      this.changed();
    });
  }

  private changed(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves true once `pred` holds, false after `ms` (a bound, not a timing). */
  until(pred: () => boolean, ms = WAIT_MS): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      const check = () => {
        if (pred()) {
          clearTimeout(timer);
          resolve(true);
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  /** What the other paths's run must match. */
  outcome(): string {
    const err = this.error === null ? 'ok' : this.error === 'ECONNRESET' || this.error === 'EPIPE' ? 'reset' : this.error;
    return `${this.bytes}B ${this.hash.copy().digest('hex').slice(0, 12)} ${this.ended ? 'fin' : 'nofin'} ${err}${this.closed ? '' : ' open'}`;
  }
}

/** The programmable upstream: takes a connection, reads its tag (which script it runs), hands it to the script. */
class ScriptServer {
  private readonly server: Server;
  private readonly byTag = new Map<number, Side>();
  private readonly waiting = new Map<number, (s: Side) => void>();
  readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly host: string) {
    this.server = createServer({ allowHalfOpen: true }, (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      const side = new Side(s);
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        if (head.length < TAG_BYTES) return;
        s.removeListener('data', onData);
        const tag = Number(head.subarray(1, TAG_BYTES - 1).toString('latin1'));
        this.byTag.set(tag, side);
        this.waiting.get(tag)?.(side);
      };
      s.on('data', onData);
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen({ host: this.host, port: 0 }, () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The upstream side of script `tag`'s connection, once it arrived (null after `ms`). */
  side(tag: number, ms = WAIT_MS): Promise<Side | null> {
    const got = this.byTag.get(tag);
    if (got) return Promise.resolve(got);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(tag);
        resolve(null);
      }, ms);
      this.waiting.set(tag, (s) => {
        clearTimeout(timer);
        this.waiting.delete(tag);
        resolve(s);
      });
    });
  }

  forget(tag: number): void {
    this.byTag.delete(tag);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const TAG_BYTES = 12;
const tagOf = (i: number) => Buffer.from(`S${String(i).padStart(10, '0')}\n`, 'latin1');

// ---- one path: a proxy, its upstream, its exposures ----

class Recorder implements AccessLog {
  readonly lines: AccessRecord[] = [];
  write(record: AccessRecord): void {
    this.lines.push(record);
  }
}

interface PathUnderTest {
  readonly name: 'native' | 'portable';
  readonly proxy: Proxy;
  readonly server: ScriptServer;
  readonly access: Recorder;
  readonly live: number;
  readonly dead: number;
  readonly idle: number;
}

const services = { live: 'cmp-live:1', dead: 'cmp-dead:1', idle: 'cmp-idle:1' } as const;

async function pathUnderTest(name: 'native' | 'portable', host: string, dead: number): Promise<PathUnderTest> {
  const server = await new ScriptServer(host).listen();
  const access = new Recorder();
  const proxy = new Proxy({ log: testLog, dataPath: name, accessLog: access });
  const [live, deadP, idle] = [await freePort(), await freePort(), await freePort()];
  const policy = { balance: 'least-conn' as const, connectTimeoutMs: 1000, idleTimeoutMs: 60_000, responseTimeoutMs: 30_000, retries: 2 };
  const r = await proxy.apply(
    routesWith(
      [],
      [
        exposure(`${name}-live`, live, 'tcp', [group(services.live, 'tcp', [upstream(host, server.port)])], { accessLog: true, policy }),
        exposure(`${name}-dead`, deadP, 'tcp', [group(services.dead, 'tcp', [upstream(host, dead)])], { accessLog: true, policy }),
        exposure(`${name}-idle`, idle, 'tcp', [group(services.idle, 'tcp', [upstream(host, server.port)])], { accessLog: true, policy: { ...policy, idleTimeoutMs: IDLE_MS } }),
      ],
    ),
  );
  assert.deepEqual(r.failed, []);
  return { name, proxy, server, access, live, dead: deadP, idle };
}

function stats(p: PathUnderTest): RouteStats[] {
  return [p.proxy.metrics.route(`${p.name}-live`, services.live), p.proxy.metrics.route(`${p.name}-dead`, services.dead), p.proxy.metrics.route(`${p.name}-idle`, services.idle)];
}

function counters(p: PathUnderTest): string {
  return stats(p)
    // The dead route's received bytes are not compared: the portable path reads a client while it connects (and
    // counts what it read of a client it then refuses), the native one reads nothing before the upstream is up.
    .map((s, i) => `opened=${s.opened} closed=${s.closed} active=${s.active} refused=${s.refusedConnectFailed + s.refusedNoUpstream}${i === 1 ? '' : ` in=${s.receivedBytes}`} out=${s.sentBytes}`)
    .join(' | ');
}

function sessions(p: PathUnderTest): number {
  const frontends = (p.proxy as unknown as { frontends: Map<string, { sessions?: Set<unknown> }> }).frontends;
  let n = 0;
  for (const f of frontends.values()) n += f.sessions?.size ?? 0;
  return n;
}

/** Each script's client connects from an address of its own, which names its access-log line. */
const clientIp = (i: number) => `127.50.${(i >> 8) & 255}.${i & 255}`;

/** The access-log lines of the batch, by client address (refusals of either reason as one). */
function accessLines(p: PathUnderTest): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of p.access.lines.splice(0)) {
    const what = l.result === 'ok' ? `ok in=${l.received_bytes} out=${l.sent_bytes}` : `refused out=${l.sent_bytes}`;
    m.set(String(l.client), m.has(String(l.client)) ? `${m.get(String(l.client))}; ${what}` : what);
  }
  return m;
}

// ---- running a script on one path ----

async function write(side: Side, data: Buffer): Promise<void> {
  await new Promise<void>((resolve) => {
    if (side.socket.destroyed) return resolve();
    side.socket.write(data, () => resolve());
  });
}

const stalls = { n: 0 };

async function run(p: PathUnderTest, s: Script): Promise<string> {
  const port = s.end.k === 'refuse' ? p.dead : s.end.k === 'idle' ? p.idle : p.live;
  const client = new Side(connect({ host: '127.0.0.1', port, localAddress: clientIp(s.index), allowHalfOpen: true }));
  const notes: string[] = [];
  try {
    if (s.end.k === 'refuse') {
      if (s.end.n > 0) client.socket.write(chunk(0, s.end.n));
      if (!(await client.until(() => client.closed))) notes.push('stuck:refusal');
      return `client ${client.outcome()}${notes.length ? ` ${notes.join(' ')}` : ''}`;
    }
    client.socket.write(tagOf(s.index));
    const up = await p.server.side(s.index);
    if (!up) return `client ${client.outcome()} upstream never connected`;
    let toUp = TAG_BYTES;
    let toClient = 0;
    for (const step of s.steps) {
      if (step.k === 'cs') {
        toUp += step.n;
        client.socket.write(chunk(step.at, step.n));
        if (!(await up.until(() => up.bytes >= toUp - TAG_BYTES))) notes.push(`stuck:cs@${toUp}`);
      } else if (step.k === 'us') {
        toClient += step.n;
        up.socket.write(chunk(step.at, step.n));
        if (!(await client.until(() => client.bytes >= toClient))) notes.push(`stuck:us@${toClient}`);
      } else if (step.k === 'ce') {
        client.socket.end();
        if (!(await up.until(() => up.ended))) notes.push('stuck:ce');
      } else if (step.k === 'ue') {
        up.socket.end();
        if (!(await client.until(() => client.ended))) notes.push('stuck:ue');
      } else {
        // The slow reader: the upstream writes all of it while the client does not read; whether its writes
        // stalled (backpressure reached it) is counted, not compared (where it stalls depends on each path's buffers).
        client.socket.pause();
        let sent = 0;
        let stalled = false;
        while (sent < step.n) {
          const n = Math.min(256 * 1024, step.n - sent);
          const more = up.socket.write(chunk(sent % (POOL.length - n), n));
          sent += n;
          if (!more && !stalled) {
            stalled = !(await new Promise<boolean>((resolve) => {
              const t = setTimeout(() => resolve(false), 50);
              up.socket.once('drain', () => {
                clearTimeout(t);
                resolve(true);
              });
            }));
          }
        }
        toClient += sent;
        if (stalled) stalls.n += 1;
        client.socket.resume();
        if (!(await client.until(() => client.bytes >= toClient, WAIT_MS * 2))) notes.push(`stuck:slow@${toClient}`);
      }
    }
    switch (s.end.k) {
      case 'clean':
        if (!client.socket.writableEnded) client.socket.end();
        if (!up.socket.writableEnded) up.socket.end();
        break;
      case 'creset':
        client.socket.resetAndDestroy();
        break;
      case 'ureset':
        up.socket.resetAndDestroy();
        break;
      case 'udie':
        up.socket.destroy();
        break;
      case 'idle':
        break;
    }
    // Then each side does what a program does: it ends its side once it saw the other's end. A side that stopped
    // reading (it saw an end) learns of a reset only by writing: the first write after the far side is gone reaches
    // the proxy, whose own write then fails (or is answered by a reset) and which resets the writer, who sees it on
    // its next write. So after a reset or death of one side, the other one, once it saw an end, writes `probes`
    // times before it ends its side.
    const probes = s.end.k === 'udie' ? s.end.writes : PROBES;
    const prober = s.end.k === 'creset' ? up : s.end.k === 'ureset' || s.end.k === 'udie' ? client : null;
    const settle = async (me: Side, what: string) => {
      if (!(await me.until(() => me.closed || me.ended))) return notes.push(`stuck:${what}`);
      for (let i = 0; me === prober && i < probes && !me.closed && !me.socket.writableEnded; i++) {
        await write(me, chunk(i * PROBE_BYTES, PROBE_BYTES));
        await new Promise((res) => setTimeout(res, 15));
      }
      if (!me.closed && !me.socket.writableEnded) {
        if (me === prober) notes.push(`${what}:unreset`);
        me.socket.end();
      }
      if (!(await me.until(() => me.closed))) notes.push(`stuck:${what}-close`);
    };
    await Promise.all([settle(client, 'client'), settle(up, 'upstream')]);
    p.server.forget(s.index);
    return `client ${client.outcome()} | upstream ${up.outcome()}${notes.length ? ` ${notes.join(' ')}` : ''}`;
  } finally {
    if (!client.socket.destroyed) client.socket.destroy();
  }
}

// ---- the test ----

const native = nativeRelay();
let paths: { native: PathUnderTest; portable: PathUnderTest } | null = null;

before(async () => {
  if (!native) return;
  const dead = await deadPort('127.0.0.30');
  paths = { native: await pathUnderTest('native', '127.0.0.31', dead), portable: await pathUnderTest('portable', '127.0.0.32', dead) };
});

after(async () => {
  if (paths) {
    for (const p of [paths.native, paths.portable]) {
      await p.proxy.stop(1000);
      await p.server.close();
    }
  }
  await stopAll();
});

describe('the native data path against the portable one', () => {
  test('random scripts: same bytes, same ends, same counters', { timeout: 150_000, skip: native ? false : 'the native relay is not built' }, async () => {
    const { native: n, portable: q } = paths!;
    console.log(`relay-compare: seed ${SEED} (GLOW_COMPARE_SEED=${SEED} replays it), up to ${SCRIPTS} scripts`);
    const r = mulberry32(SEED);
    const diffs: string[] = [];
    const t0 = Date.now();
    let done = 0;
    let connections = 0;
    while (done < SCRIPTS && Date.now() - t0 < TIME_BUDGET_MS) {
      const batch = Array.from({ length: Math.min(BATCH, SCRIPTS - done) }, (_, i) => makeScript(r, done + i)).filter((x) => ONLY === null || x.index === ONLY);
      const before = [counters(n), counters(q)];
      let next = 0;
      const outcomes = new Map<Script, string[]>();
      const worker = async () => {
        while (next < batch.length) {
          const s = batch[next++]!;
          outcomes.set(s, await Promise.all([run(n, s), run(q, s)]));
          connections += 2;
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      done += batch.length;
      // Every connection of the batch is closed on both paths, and nothing is held.
      const settled = async () => {
        const end = Date.now() + WAIT_MS;
        while (Date.now() < end) {
          if (sessions(n) === 0 && sessions(q) === 0 && nativeRelay()!.open === 0 && stats(n).every((x) => x.active === 0) && stats(q).every((x) => x.active === 0)) return true;
          await new Promise((res) => setTimeout(res, 10));
        }
        return false;
      };
      if (!(await settled())) {
        diffs.push(`batch ending at #${done}: still held: native sessions ${sessions(n)}, portable sessions ${sessions(q)}, addon open ${nativeRelay()!.open}`);
        break;
      }
      await new Promise((res) => setImmediate(res)); // the access log's lines of the last closes
      const [ln, lq] = [accessLines(n), accessLines(q)];
      const probeSlack = [0, 0, 0, 0, 0, 0];
      for (const [script, [a, b]] of outcomes) {
        const ip = clientIp(script.index);
        const x = `${a} | log ${ln.get(ip) ?? 'none'}`;
        let y = `${b} | log ${lq.get(ip) ?? 'none'}`;
        // The probes (see `settle`) after one side is gone reach the proxy, and the proxy counts those it read
        // (received bytes, from a client) or wrote (sent bytes, to a client) before it learnt that the far side is
        // gone. How many that is depends on how the probes, 15 ms apart, fall into the proxy's reads under load, and
        // on the portable path's count of sent bytes, which includes a write that failed (Node's bytesWritten
        // counts what was handed to the socket; the native path counts what the kernel took). So the field the
        // prober feeds may differ by whole probes; the rest of the line must be equal.
        const field = script.end.k === 'creset' ? 'out' : script.end.k === 'ureset' || script.end.k === 'udie' ? 'in' : null;
        if (field) {
          const re = new RegExp(`${field}=(\\d+)`);
          const [xv, yv] = [Number(re.exec(x)?.[1]), Number(re.exec(y)?.[1])];
          const d = yv - xv;
          if (d !== 0 && d % PROBE_BYTES === 0 && Math.abs(d) <= PROBES * PROBE_BYTES) {
            y = y.replace(`${field}=${yv}`, `${field}=${xv}`);
            probeSlack[field === 'in' ? 4 : 5]! += d;
          }
        }
        if (VERBOSE) console.log(`${describeScript(script)}\n    native:   ${x}\n    portable: ${y}`);
        if (x !== y) diffs.push(`${describeScript(script)}\n    native:   ${x}\n    portable: ${y}`);
      }
      // The live route's received and sent bytes (the fifth and sixth numbers) less the probes' slack (see above).
      const delta = (b: string, a: string, less: number[] = []) => {
        const nums = (x: string) => x.match(/-?\d+/g)!.map(Number);
        const [x, y] = [nums(b), nums(a)];
        return y.map((v, i) => v - x[i]! - (less[i] ?? 0)).join(',');
      };
      const dn = delta(before[0]!, counters(n));
      const dq = delta(before[1]!, counters(q), probeSlack);
      if (dn !== dq) diffs.push(`batch ending at #${done}: counters differ\n    native:   ${dn}\n    portable: ${dq}`);
      if (diffs.length > 20) break;
    }
    console.log(`relay-compare: ${done} scripts, ${connections} connections in ${Date.now() - t0} ms (${stalls.n} slow readers stalled their upstream); ${diffs.length} differences`);
    assert.ok(ONLY !== null || done >= Math.min(SCRIPTS, 400), `only ${done} scripts ran within the time budget`);
    assert.equal(diffs.length, 0, `seed ${SEED}: the paths differ:\n${diffs.slice(0, 12).join('\n')}`);
  });
});
