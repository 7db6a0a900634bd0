/**
 * HTTP on the native data path (an http listener's connections and its upstream connections are the addon's
 * stream sockets, src/proxy/native-socket.ts) against the portable one (Node sockets, the reference): two proxies
 * in this process, one of each, each with http listeners in front of programmable raw-TCP upstreams of its own,
 * are driven through the same seeded random scripts and must agree on everything a user of the proxy can see.
 *
 * A script is one client connection carrying one or more requests (GET, HEAD, POST, PUT; no body, a
 * Content-Length body or a chunked one, 0 to 200 KiB, written in random splits with random small gaps; one after
 * the other, each once the previous response is in, or pipelined), and for each attempt of each request what the
 * upstream does: answer it (200, 201, 404, 500, and 502 or 503, which an idempotent request is retried on; with
 * Content-Length, chunked, or delimited by the upstream's close, HTTP/1.0 or HTTP/1.1 with Connection: close; up
 * to 300 KiB, in random splits), reset or close before answering (after the whole request, or in the middle of its
 * body), reset or close in the middle of its response, or hold (no answer: the client resets). The client may read
 * slowly (it pauses while the response is written, then reads it all), half-close after its last request, reset
 * in the middle of its request or in the middle of a response. A script runs on a listener whose group has one
 * upstream (a failure before the response is answered by the proxy: a GET cannot be retried on the upstream it
 * failed on) or two (the retries of idempotent requests go to the other one).
 *
 * The harness sees both ends (client and upstream are in this process), so it never sleeps to let something
 * happen: it waits (bounded, WAIT_MS) for the bytes or the event it needs, e.g. for the upstream to have received
 * k body bytes before the client resets, or for the client to have received m body bytes before the upstream
 * resets in the middle of its response. Compared per script:
 * - what the client received, response by response: the whole head as received (status line and every header,
 *   those the proxy adds such as Connection: close included), the raw body (chunked framing included: the proxy
 *   forwards it as it came) as a byte count and SHA-1, whether the response was complete or cut, bytes after the
 *   last response;
 * - how the client saw its connection end: a clean end (FIN) or a reset, and whether it closed; when the last
 *   response says the connection closes (or was cut, or the client half-closed), whether the proxy ended it by
 *   itself;
 * - what the upstream received, request by request and attempt by attempt: the head as received, the raw body as
 *   a byte count and SHA-1, whether the request was complete, whether the proxy closed the connection while the
 *   request was unanswered, and (two upstreams) whether a retry went to the other upstream;
 * - the route's counters, as a delta over the script (each worker has listeners of its own, so that the route's
 *   counters over a script are that script's alone): opened, closed, active (back to 0), received and sent bytes,
 *   refusals by reason, retries by reason, requests by method and status class (the histogram's counts).
 * At the end, before the proxies stop, no session is left on either, and the addon holds exactly the pooled
 * upstream connections of the native proxy; after they stop, `nativeRelay().open === 0`.
 *
 * What is not compared, because it differs by nature and not by defect:
 * - which of two upstreams serves a first attempt (least-conn over the requests in flight of every worker; only
 *   whether a retry went to the other one), and which upstream connection (new or pooled) carries a request;
 * - how an upstream connection ended (FIN or RST: closing a socket with unread bytes resets it, and what is unread
 *   depends on each path's buffers), only whether the proxy closed it while a request on it was unanswered;
 * - when the upstream kills its connection in the middle of a request body, how much more than the kill point it
 *   had read (the read that crossed it brings what the proxy had sent by then): the body up to that point is;
 * - read-ahead: while a pipelined request waits for the response before it, the proxy does not read the client;
 *   both paths go on reading up to 16 KiB, but by reads of different sizes, so how much more than that each has
 *   read differs (Node's stream asks for more once its buffer is under the mark, the NativeSocket once the addon
 *   stopped at it). When the proxy
 *   then cuts the connection (a response cut by the upstream), what it had read shows in the received-bytes
 *   counter, and bytes left unread make the kernel reset the connection instead of ending it. For such scripts
 *   (pipelined, a response cut, requests left unanswered) the client's end (fin or reset) and the received bytes
 *   are tolerated to differ, everything else is compared; the count of them is printed;
 * - the timing of anything (the request histogram's counts are compared, not its buckets).
 * Passive ejection and the retry budget are made unreachable (ProxyOptions): they depend on the order in which
 * the failures of concurrent scripts reach each proxy, which differs between the two runs. An upstream kills a
 * connection in the middle of a request body only when the outcome does not depend on how much of it the proxy
 * had read by then (see `act` in makeScript).
 *
 * Known limits, alike on both paths, left out of the scripts unless GLOW_HC_STRICT=1 (which also compares without
 * the read-ahead tolerance, and gives up waits that never end, so it runs fewer scripts in the time):
 * - a client's reset while the proxy does not read the client because a pipelined request waits, and the upstream
 *   is silent, is noticed only while the pipelined bytes fit in the read-ahead (16 KiB, a Node socket's and the
 *   NativeSocket's alike); beyond it the session, its upstream connection and the upstream's request stay until the
 *   upstream writes again or the idle timeout;
 * - neither path notices a client's reset after the client half-closed, while the upstream is silent (neither
 *   reads after the client's end of stream): the same hold until the upstream writes or the idle timeout.
 * (An HTTP/1.1 response delimited by the upstream's close without `Connection: close` — framing `bare11` — left
 * the client's connection open on both paths, so that the client could not find where the body ended; this test
 * found it, and the proxy now ends the client's connection after such a response.)
 *
 * TLS. A second test runs scripts of the same kind with the client on TLS, on two other proxies (one per path)
 * whose ports are http exposures with a certificate instead of listeners: each port's catch-all route, its
 * certificate for compare.test signed by a CA of the test's own (test/proxy/certs.ts). The native proxy terminates
 * their TLS in the addon (the `tls` mode of src/proxy/tcp-frontend.ts), the portable one with Node's TLSSocket;
 * the upstreams stay plain HTTP. A script's client offers one version, TLS 1.2 or TLS 1.3 (half the scripts
 * each), with SNI and ALPN http/1.1, and its acts map onto TLS so: a reset resets the TCP socket under the TLS
 * socket (an RST, no alert); a half-close is the TLS socket's end() (a close_notify, then the FIN), which either
 * path takes as the client's end of stream; a slow reader pauses the TLS socket (which stops reading the TCP socket
 * once its buffer is full). Everything above is compared as it is, and:
 * - the client's end (`end: fin`) is the TLS socket's: the proxy's close_notify or a FIN without it, which Node
 *   does not tell apart. On TLS 1.2 the client also reads the TLS records through a tap that sees their headers,
 *   which TLS 1.2 leaves in the clear (an alert's type too, not its content): `alerts=1` is the proxy's
 *   close_notify, the only alert a connection whose handshake succeeded gets; both paths send it when they end
 *   a connection, and not when they drop it (a cut response, a reset). TLS 1.3 encrypts the record type, so its
 *   scripts compare the end only;
 * - the received and sent bytes counters: both paths count what the session read and wrote, the HTTP bytes
 *   (plaintext: the TLSSocket's bytes, the addon's decrypted stream), not the TLS records (handshake, record
 *   overhead, session tickets, alerts), so they agree and are compared as they are;
 * - the frontends' TLS handshake failures: none, on either path.
 * Not compared over TLS: the records themselves (how each path cuts its writes into records, the session
 * tickets it sends, the ciphertext), whose sizes differ by nature. The read-ahead tolerance applies as in the
 * plain part (and covers `alerts=` with the end: what the client reads before the kernel's reset decides both),
 * and so do the known limits.
 *
 * The scripts come from a seeded PRNG: the seed is printed, GLOW_HC_SEED replays a run, GLOW_HC_SCRIPTS sets how
 * many scripts (default 1000, each run on both paths), GLOW_HC_ONLY=<index> runs that one script of the seed's
 * run, GLOW_HC_VERBOSE=1 prints every script and outcome, GLOW_HC_BUDGET_MS the time budget: no new script starts
 * after it (18 s by default; at least 300 scripts must have run). The TLS part: GLOW_HC_TLS_SCRIPTS (default 300;
 * 0 skips it), GLOW_HC_TLS_ONLY=<index> (either ONLY runs its own part only), GLOW_HC_TLS_BUDGET_MS (10 s by
 * default; at least 100 scripts must have run).
 */
import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { nativeRelay } from '../../src/proxy/native-relay.js';
import type { RouteStats } from '../../src/proxy/metrics.js';
import { MAX_RETAINED_BYTES } from '../../src/proxy/http-session.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { makeCa, makeCert, type Pem } from './certs.js';
import { exposure, group, listener, NONE, routes, routesWith, stopAll, testLog, until, upstream } from './helpers.js';
import { mulberry32 } from '../harness/prng.js';

const SEED = Number(process.env['GLOW_HC_SEED'] ?? 0x4c0ffee5) >>> 0;
const SCRIPTS = Number(process.env['GLOW_HC_SCRIPTS'] ?? 1000);
const ONLY = process.env['GLOW_HC_ONLY'] ? Number(process.env['GLOW_HC_ONLY']) : null;
/** The TLS part (see the file comment): how many scripts, one of them only, its time budget. */
const TLS_SCRIPTS = Number(process.env['GLOW_HC_TLS_SCRIPTS'] ?? 300);
const TLS_ONLY = process.env['GLOW_HC_TLS_ONLY'] ? Number(process.env['GLOW_HC_TLS_ONLY']) : null;
const TLS_BUDGET_MS = Number(process.env['GLOW_HC_TLS_BUDGET_MS'] ?? 10_000);
const VERBOSE = process.env['GLOW_HC_VERBOSE'] === '1';
/** GLOW_HC_STRICT=1: also the scripts of the known differences, compared without tolerance (see the file comment). */
const STRICT = process.env['GLOW_HC_STRICT'] === '1';
/** Workers, each with listeners of its own on each proxy, running one script (on both paths) at a time. */
const WORKERS = 10;
const TIME_BUDGET_MS = Number(process.env['GLOW_HC_BUDGET_MS'] ?? 18_000);
/** Any one wait gives up after this long: the outcome then notes `stuck:...`. */
const WAIT_MS = 3000;
/** How long a slow reader leaves its response unread (while the upstream writes it all). */
const SLOW_MS = 25;

/** 1 MiB of seeded noise; bodies are slices of it. */
const POOL = (() => {
  const r = mulberry32(SEED ^ 0x5a5a5a5a);
  const b = Buffer.alloc(1 << 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(r() * 4294967296), i);
  return b;
})();

const noise = (at: number, n: number) => POOL.subarray(at, at + n);
const sha = (b: Buffer) => createHash('sha1').update(b).digest('hex').slice(0, 10);
const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));
const show = (head: string) => head.replace(/\r\n$/, '').replace(/\r\n/g, ' | ');

// ---- scripts ----

/** Where a piece of bytes is cut (fractions of its length) and the gap after each piece (ms). */
interface Pieces {
  readonly cuts: number[];
  readonly gaps: number[];
}

/** close10: HTTP/1.0, no headers; close11: HTTP/1.1 with Connection: close; bare11: HTTP/1.1 and neither. */
type Framing = 'cl' | 'chunked' | 'close10' | 'close11' | 'bare11';

interface Reply {
  readonly status: number;
  readonly framing: Framing;
  readonly size: number;
  readonly at: number;
  /** Chunk sizes of a chunked body (they sum to size). */
  readonly chunks: number[];
  readonly pieces: Pieces;
}

/** What the upstream does with one attempt of a request. `frac` places a point in a body (resolved when run). */
type Act =
  | { readonly k: 'respond'; readonly reply: Reply }
  | { readonly k: 'reset-before' | 'close-before' } // once the whole request is in
  | { readonly k: 'reset-early' | 'close-early'; readonly frac: number } // once that much of the request body is in
  | { readonly k: 'reset-within' | 'close-within'; readonly reply: Reply; readonly frac: number } // after the head and that much of the body, once the client has it
  | { readonly k: 'hold' }; // never answers (the client resets)

type ClientAct =
  | { readonly k: 'normal' }
  | { readonly k: 'slow' } // does not read while the response is written
  | { readonly k: 'reset-req'; readonly frac: number } // resets once the upstream has that much of the request body
  | { readonly k: 'reset-res'; readonly frac: number }; // resets once it has that much of the response body

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT';

interface Req {
  readonly method: Method;
  readonly framing: 'none' | 'cl' | 'chunked';
  readonly size: number;
  readonly at: number;
  readonly chunks: number[];
  /** Length of a query string that varies the head's size. */
  readonly extra: number;
  readonly close: boolean;
  readonly pieces: Pieces;
  /** The upstream's act for attempt 1, 2, 3. */
  readonly acts: Act[];
  readonly client: ClientAct;
}

interface Script {
  readonly index: number;
  /** The listener's group has two upstreams (else one). */
  readonly two: boolean;
  readonly pipelined: boolean;
  /** The client half-closes after its last request. */
  readonly halfClose: boolean;
  readonly reqs: Req[];
  /** The client connects over TLS of this version (the TLS part; plain TCP without). */
  readonly tls?: TlsVersion;
}

const REASONS: Record<number, string> = { 200: 'OK', 201: 'Created', 404: 'Not Found', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

function makeScript(r: () => number, index: number): Script {
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const pieces = (): Pieces => {
    const n = r() < 0.3 ? 0 : int(1, 6);
    const cuts = Array.from({ length: n }, () => r()).sort((a, b) => a - b);
    const gaps = Array.from({ length: n + 1 }, () => (r() < 0.6 ? 0 : int(1, 3)));
    return { cuts, gaps };
  };
  const chunksOf = (size: number): number[] => {
    const out: number[] = [];
    let left = size;
    while (left > 0) {
      const n = Math.min(left, r() < 0.5 ? int(1, 512) : int(512, 64 * 1024));
      out.push(n);
      left -= n;
    }
    return out;
  };
  /** A size from the first band whose share (cumulative, the last one 1) the draw falls under: [share, min, max]. */
  const sized = (bands: readonly (readonly [number, number, number])[]) => () => {
    const x = r();
    const [, min, max] = bands.find(([share]) => x < share) ?? bands[bands.length - 1]!;
    return int(min, max);
  };
  const K = 1024;
  const reqSize = sized([[0.3, 0, 64], [0.7, 65, 16 * K], [0.85, 16 * K, 60 * K], [1, 60 * K, 200 * K]]);
  const resSize = sized([[0.3, 0, 64], [0.65, 65, 16 * K], [0.8, 16 * K, 64 * K], [1, 64 * K, 300 * K]]);
  const reply = (status = r() < 0.8 ? 200 : pick([201, 404, 500])): Reply => {
    const x = r();
    const framing: Framing = x < 0.45 ? 'cl' : x < 0.8 ? 'chunked' : x < 0.9 ? 'close10' : x < 0.93 ? 'bare11' : 'close11';
    const size = status >= 500 && r() < 0.7 ? int(0, 64) : resSize();
    return { status, framing, size, at: int(0, POOL.length - size), chunks: framing === 'chunked' ? chunksOf(size) : [], pieces: pieces() };
  };
  /**
   * `early`: the upstream may kill the connection in the middle of the request body. Not for an idempotent
   * request larger than the proxy keeps for a retry (MAX_RETAINED_BYTES, 64 KiB): whether it is retried (or
   * answered 502) would depend on how much of it the proxy had read when it learnt of the kill, a matter of timing.
   */
  const act = (attempt: number, early: boolean): Act => {
    const fail = attempt === 1 ? 0.4 : attempt === 2 ? 0.25 : 0.1;
    if (r() >= fail) return { k: 'respond', reply: reply() };
    const x = r();
    if (x < 0.25) return { k: 'respond', reply: reply(pick([502, 503, 503])) };
    if (x < 0.4) return { k: 'reset-before' };
    if (x < 0.5) return { k: 'close-before' };
    if (x < 0.62 && early) return { k: r() < 0.6 ? 'reset-early' : 'close-early', frac: r() };
    return { k: r() < 0.55 ? 'reset-within' : 'close-within', reply: reply(), frac: r() };
  };
  const two = r() < 0.5;
  const x = r();
  const n = x < 0.4 ? 1 : x < 0.65 ? 2 : x < 0.85 ? 3 : int(4, 6);
  const pipelined = n > 1 && r() < 0.25;
  const halfClose = r() < 0.15;
  const reqs: Req[] = [];
  for (let i = 0; i < n; i++) {
    const method = pick<Method>(['GET', 'GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'PUT']);
    const safe = method === 'GET' || method === 'HEAD';
    const f = r();
    const framing = safe ? (f < 0.85 ? 'none' : 'cl') : f < 0.05 ? 'none' : f < 0.55 ? 'cl' : 'chunked';
    const size = framing === 'none' ? 0 : safe ? int(0, 2048) : reqSize();
    const c = r();
    // A client reset in the middle of a request goes with an upstream that holds (does not answer). A reset in the
    // middle of a response, while the proxy does not read the client (a pipelined request waits, or the client
    // half-closed), is one of the known limits (the file comment): strict mode only.
    const frac = r();
    const client: ClientAct =
      c < 0.1
        ? { k: 'slow' }
        : c < 0.17 && !pipelined
          ? { k: 'reset-req', frac }
          : c < 0.24 && ((!pipelined && !(halfClose && i === n - 1)) || STRICT)
            ? { k: 'reset-res', frac }
            : { k: 'normal' };
    // Well within MAX_RETAINED_BYTES with the head and the chunked framing (at most a few % of a body).
    const early = size > 0 && (method === 'POST' || size <= (MAX_RETAINED_BYTES * 3) / 4);
    const planned = client.k === 'reset-req' ? [{ k: 'hold' } as Act] : [act(1, early), act(2, early), act(3, early)];
    // A response to HEAD has no body whatever its head says, so one delimited by the upstream's close (bare11)
    // would be an upstream closing a connection it never said it would: whether the proxy reuses it first is a
    // race. Such an upstream says Connection: close.
    const acts = planned.map((a) => (method === 'HEAD' && 'reply' in a && a.reply.framing === 'bare11' ? { ...a, reply: { ...a.reply, framing: 'close11' as const } } : a));
    reqs.push({
      method,
      framing,
      size,
      at: int(0, POOL.length - size),
      chunks: framing === 'chunked' ? chunksOf(size) : [],
      extra: r() < 0.5 ? 0 : int(1, 300),
      close: i === n - 1 && r() < 0.1,
      pieces: pieces(),
      acts,
      client,
    });
  }
  return { index, two, pipelined, halfClose, reqs };
}

function describeScript(s: Script): string {
  const rep = (p: Reply) => `${p.status} ${p.framing} ${p.size}B`;
  const act = (a: Act) => (a.k === 'respond' ? rep(a.reply) : a.k === 'reset-within' || a.k === 'close-within' ? `${a.k}(${rep(a.reply)} @${a.frac.toFixed(2)})` : 'frac' in a ? `${a.k}(@${a.frac.toFixed(2)})` : a.k);
  const req = (q: Req, i: number) => {
    const cl = q.client.k === 'normal' ? '' : ` client:${q.client.k}${'frac' in q.client ? `@${q.client.frac.toFixed(2)}` : ''}`;
    return `r${i} ${q.method} ${q.framing}${q.framing === 'none' ? '' : ` ${q.size}B`}${q.close ? ' Connection:close' : ''} in ${q.pieces.cuts.length + 1}${cl} -> ${q.acts.map(act).join(' / ')}`;
  };
  return `#${s.index}${s.tls ? ` ${s.tls}` : ''} ${s.two ? 'two upstreams' : 'one upstream'}${s.pipelined ? ' pipelined' : ''}${s.halfClose ? ' half-close' : ''}\n      ${s.reqs.map(req).join('\n      ')}`;
}

// ---- encoding ----

function chunked(at: number, chunks: number[]): Buffer {
  const parts: Buffer[] = [];
  let off = at;
  for (const n of chunks) {
    parts.push(Buffer.from(`${n.toString(16)}\r\n`, 'latin1'), noise(off, n), Buffer.from('\r\n', 'latin1'));
    off += n;
  }
  parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return Buffer.concat(parts);
}

const tagOf = (s: Script, i: number) => `s${s.index}r${i}`;

function requestBytes(s: Script, i: number): { head: Buffer; body: Buffer } {
  const q = s.reqs[i]!;
  let h = `${q.method} /${tagOf(s, i)}${q.extra ? `?q=${'x'.repeat(q.extra)}` : ''} HTTP/1.1\r\nHost: ${HOST}\r\nUser-Agent: http-compare\r\n`;
  if (q.framing === 'cl') h += `Content-Length: ${q.size}\r\n`;
  if (q.framing === 'chunked') h += 'Transfer-Encoding: chunked\r\n';
  if (q.close) h += 'Connection: close\r\n';
  const body = q.framing === 'chunked' ? chunked(q.at, q.chunks) : noise(q.at, q.size);
  return { head: Buffer.from(`${h}\r\n`, 'latin1'), body };
}

function replyBytes(method: Method, p: Reply, tag: string): { head: Buffer; body: Buffer } {
  let h = `${p.framing === 'close10' ? 'HTTP/1.0' : 'HTTP/1.1'} ${p.status} ${REASONS[p.status]}\r\nX-Tag: ${tag}\r\n`;
  if (p.framing === 'cl') h += `Content-Length: ${p.size}\r\n`;
  if (p.framing === 'chunked') h += 'Transfer-Encoding: chunked\r\n';
  if (p.framing === 'close11') h += 'Connection: close\r\n';
  const body = method === 'HEAD' ? Buffer.alloc(0) : p.framing === 'chunked' ? chunked(p.at, p.chunks) : noise(p.at, p.size);
  return { head: Buffer.from(`${h}\r\n`, 'latin1'), body };
}

/** A point inside a body of n bytes: at least 1, at most n - 1 (null when there is none). */
function inside(frac: number, n: number): number | null {
  return n < 2 ? null : 1 + Math.floor(frac * (n - 1));
}

/** Writes `bytes` in the pieces given, with their gaps; stops once the socket is gone or ended. */
async function writePieces(sock: Socket, bytes: Buffer, p: Pieces): Promise<void> {
  const cuts = [...new Set(p.cuts.map((f) => Math.floor(f * bytes.length)))].filter((o) => o > 0 && o < bytes.length);
  let prev = 0;
  for (let k = 0; k <= cuts.length; k++) {
    if (sock.destroyed || sock.writableEnded) return;
    const end = k < cuts.length ? cuts[k]! : bytes.length;
    if (end > prev) sock.write(bytes.subarray(prev, end));
    prev = end;
    const g = p.gaps[k] ?? 0;
    if (g > 0 && k < cuts.length) await sleep(g);
  }
}

// ---- waiting: one bus for every change on every socket of the harness ----

class Bus {
  private waiters: (() => void)[] = [];

  changed(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves true once `pred` holds, false after `ms` (a bound, not a timing). */
  until(pred: () => boolean, ms = WAIT_MS): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        resolve(pred());
      }, ms);
      const check = () => {
        if (pred()) {
          clearTimeout(timer);
          resolve(true);
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }
}

const bus = new Bus();

/** The framing of a chunked body as this harness writes it (no extensions, no trailers): where it ends. */
class ChunkScan {
  private state: 'size' | 'data' | 'crlf' | 'last' = 'size';
  private line = '';
  private left = 0;

  /** Index just past the body's end in b[i, end), or -1 when it goes on. */
  feed(b: Buffer, i: number, end: number): number {
    while (i < end) {
      if (this.state === 'size') {
        const c = b[i++]!;
        if (c !== 10) {
          this.line += String.fromCharCode(c);
          continue;
        }
        const n = parseInt(this.line.trim(), 16);
        this.line = '';
        if (n === 0) {
          this.state = 'last';
          this.left = 2;
        } else {
          this.state = 'data';
          this.left = n;
        }
      } else if (this.state === 'data') {
        const n = Math.min(this.left, end - i);
        this.left -= n;
        i += n;
        if (this.left === 0) {
          this.state = 'crlf';
          this.left = 2;
        }
      } else {
        const n = Math.min(this.left, end - i);
        this.left -= n;
        i += n;
        if (this.left === 0) {
          if (this.state === 'last') return i;
          this.state = 'size';
        }
      }
    }
    return -1;
  }
}

function headerOf(head: string, name: string): string | null {
  const m = new RegExp(`\\r\\n${name}:[ \\t]*([^\\r\\n]*)`, 'i').exec(head);
  return m ? m[1]!.trim() : null;
}

// ---- the client ----

interface Response {
  readonly head: string;
  readonly framing: 'none' | 'length' | 'chunked' | 'close';
  left: number;
  readonly scan: ChunkScan | null;
  bodyBytes: number;
  readonly hash: Hash;
  complete: boolean;
  /** The response says the connection closes after it. */
  readonly close: boolean;
}

/** How a client connects over TLS: the CA it trusts, the one version it offers. */
interface Transport {
  readonly ca: string;
  readonly version: TlsVersion;
}

type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** The server name (SNI) and Host of every request. */
const HOST = 'compare.test';

/**
 * A client's TLS socket over its TCP socket `tcp`. TLS 1.3: the TLS socket reads and writes the TCP socket's handle
 * itself, as any Node client does. TLS 1.2: through a stream between them that reads the TLS records the proxy
 * sends (their 5-byte headers are in the clear in TLS 1.2, an encrypted alert's type too) and reports each one's
 * type, so that the outcome can say whether the proxy sent an alert (its close_notify) before its end. It passes
 * on the TCP socket's end, and pauses it while the TLS socket does not read (a slow reader stays one).
 */
function tlsOver(tcp: Socket, t: Transport, onRecord: (type: number) => void): Socket {
  let under: Duplex = tcp;
  if (t.version === 'TLSv1.2') {
    let pending: Buffer = Buffer.alloc(0);
    const tap = new Duplex({
      allowHalfOpen: true,
      read: () => void tcp.resume(),
      // Once the TCP socket is reset, what the TLS socket still writes goes nowhere (as on a reset Node socket).
      write: (chunk: Buffer, _enc, cb) => (tcp.destroyed ? cb() : void tcp.write(chunk, () => cb())),
      final: (cb) => {
        if (!tcp.destroyed) tcp.end();
        cb();
      },
      destroy: (err, cb) => {
        if (!tcp.destroyed) tcp.destroy();
        cb(err);
      },
    });
    tcp.on('data', (d: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
        onRecord(pending[0]!);
        pending = pending.subarray(5 + pending.readUInt16BE(3));
      }
      if (!tap.push(d)) tcp.pause();
    });
    let ended = false;
    tcp.on('end', () => {
      ended = true;
      tap.push(null);
    });
    // After a clean end the tap ends once the TLS socket has read it all (a slow reader may not have yet); a
    // reset or an error takes it down at once, unread bytes with it (as a reset TCP socket's).
    tcp.on('close', (hadError: boolean) => (hadError || !ended) && tap.destroy());
    under = tap;
  }
  // Half-open as the TCP socket (or the tap) is: a TLS socket over a socket takes its allowHalfOpen.
  const s = tlsConnect({ socket: under, servername: HOST, ca: t.ca, minVersion: t.version, maxVersion: t.version, ALPNProtocols: ['http/1.1'] });
  assert.ok(s.allowHalfOpen);
  return s;
}

class Client {
  /** What the client reads and writes: its TCP socket, or its TLS socket over it. */
  readonly socket: Socket;
  /** The TCP connection (the same as `socket` without TLS). */
  private readonly tcp: Socket;
  /** The end of stream came (over TLS: the TLS socket's, a close_notify or a FIN). */
  ended = false;
  closed = false;
  error: string | null = null;
  readonly responses: Response[] = [];
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes after a complete response that start no response head. */
  extra = 0;
  /** TLS 1.2: alert records received (null: not seen, on another transport). */
  private alerts: number | null = null;

  constructor(
    port: number,
    private readonly methods: Method[],
    transport: Transport | null = null,
  ) {
    this.tcp = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    if (transport?.version === 'TLSv1.2') this.alerts = 0;
    // 21: an alert. After the handshake (the only alerts of a script's run) TLS 1.2 encrypts it but not its type.
    this.socket = transport ? tlsOver(this.tcp, transport, (type) => type === 21 && this.alerts !== null && (this.alerts += 1)) : this.tcp;
    if (transport) {
      // An error of the TCP socket under the TLS one (its reset by the proxy, through the TLS 1.2 tap).
      this.tcp.on('error', (e: NodeJS.ErrnoException) => {
        this.error ??= e.code ?? e.message;
        bus.changed();
      });
    }
    this.socket.on('data', (d: Buffer) => {
      this.data(d);
      bus.changed();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.finishClose();
      bus.changed();
    });
    this.socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error ??= e.code ?? e.message;
      bus.changed();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.finishClose();
      bus.changed();
    });
  }

  /** Resets the connection (RST); over TLS, the TCP socket under the TLS one, which goes with it. */
  reset(): void {
    this.tcp.resetAndDestroy();
    if (this.socket !== this.tcp) this.socket.destroy();
  }

  /** The response being read, if its head is in and its body is not complete. */
  get current(): Response | null {
    const r = this.responses[this.responses.length - 1];
    return r && !r.complete ? r : null;
  }

  /** Response i is complete, or the connection is gone. */
  settled(i: number): boolean {
    return this.responses[i]?.complete === true || this.ended || this.closed;
  }

  private finishClose(): void {
    const r = this.current;
    if (r && r.framing === 'close') r.complete = true;
  }

  private data(d: Buffer): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    this.pending = Buffer.alloc(0);
    let off = 0;
    while (off < buf.length) {
      const r = this.current;
      if (r) {
        off = this.body(r, buf, off);
        continue;
      }
      const end = buf.indexOf('\r\n\r\n', off, 'latin1');
      if (end < 0) {
        if (buf.length - off > 65536) {
          this.extra += buf.length - off;
          return;
        }
        this.pending = Buffer.from(buf.subarray(off));
        return;
      }
      const head = buf.toString('latin1', off, end + 4);
      if (!/^HTTP\/1\.[01] \d{3}/.test(head)) {
        this.extra += buf.length - off;
        return;
      }
      off = end + 4;
      const status = Number(head.slice(9, 12));
      const method = this.methods[this.responses.length] ?? 'GET';
      const te = headerOf(head, 'Transfer-Encoding');
      const cl = headerOf(head, 'Content-Length');
      const conn = headerOf(head, 'Connection');
      const framing = method === 'HEAD' || status === 204 || status === 304 ? 'none' : te && /chunked/i.test(te) ? 'chunked' : cl !== null ? 'length' : 'close';
      const res: Response = {
        head,
        framing,
        left: framing === 'length' ? Number(cl) : 0,
        scan: framing === 'chunked' ? new ChunkScan() : null,
        bodyBytes: 0,
        hash: createHash('sha1'),
        complete: framing === 'none' || (framing === 'length' && Number(cl) === 0),
        close: framing === 'close' || (conn !== null && /close/i.test(conn)) || (head.startsWith('HTTP/1.0') && !(conn && /keep-alive/i.test(conn))),
      };
      this.responses.push(res);
    }
  }

  private body(r: Response, buf: Buffer, off: number): number {
    let to = buf.length;
    if (r.framing === 'length') {
      to = off + Math.min(r.left, buf.length - off);
      r.left -= to - off;
      if (r.left === 0) r.complete = true;
    } else if (r.framing === 'chunked') {
      const e = r.scan!.feed(buf, off, buf.length);
      if (e >= 0) {
        to = e;
        r.complete = true;
      }
    }
    r.bodyBytes += to - off;
    r.hash.update(buf.subarray(off, to));
    return to;
  }

  outcome(): string {
    const rs = this.responses.map((r, i) => `resp${i} [${show(r.head)}] body=${r.bodyBytes}:${r.hash.copy().digest('hex').slice(0, 10)}${r.complete ? '' : ' CUT'}`);
    const err = this.error === null ? 'ok' : this.error === 'ECONNRESET' || this.error === 'EPIPE' ? 'reset' : this.error;
    const alerts = this.alerts === null ? '' : ` alerts=${this.alerts}`;
    return `${rs.join('\n        ')}${rs.length ? '\n        ' : ''}${this.extra ? `extra=${this.extra}B ` : ''}end: ${this.ended ? 'fin' : 'nofin'} ${err}${this.closed ? '' : ' OPEN'}${alerts}`;
  }
}

// ---- the upstreams ----

interface Conn {
  readonly socket: Socket;
  readonly server: number;
  closed: boolean;
  last: Attempt | null;
}

/** One attempt of a request, as an upstream received it. */
interface Attempt {
  readonly tag: string;
  readonly n: number;
  readonly conn: Conn;
  readonly head: string;
  bodyBytes: number;
  readonly body: Buffer[];
  /**
   * The upstream killed the connection once it had this many body bytes: only they are compared (the read that
   * crossed the point may have brought more, as many as the proxy had sent by then).
   */
  cap: number | null;
  complete: boolean;
  /** The harness finished what it does with it (answered, or reset or closed the connection). */
  done: boolean;
  /** The connection closed while the attempt was not done: the proxy closed it. */
  closedByProxy: boolean;
}

/** Raw HTTP/1.1 upstreams (one or two servers) that record every request by its tag and let the script answer. */
class Upstreams {
  private readonly servers: Server[] = [];
  readonly ports: number[] = [];
  readonly attempts = new Map<string, Attempt[]>();
  private readonly sockets = new Set<Socket>();

  constructor(private readonly hosts: string[]) {}

  async listen(): Promise<this> {
    for (const [i, host] of this.hosts.entries()) {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.accept(s, i));
      await new Promise<void>((resolve) => server.listen({ host, port: 0 }, () => resolve()));
      this.servers.push(server);
      this.ports.push((server.address() as AddressInfo).port);
    }
    return this;
  }

  get(tag: string, n: number): Attempt | null {
    return this.attempts.get(tag)?.[n - 1] ?? null;
  }

  private accept(s: Socket, server: number): void {
    this.sockets.add(s);
    const conn: Conn = { socket: s, server, closed: false, last: null };
    let pending = Buffer.alloc(0);
    let cur: Attempt | null = null;
    let left = 0;
    let scan: ChunkScan | null = null;
    const gone = () => {
      if (conn.closed) return;
      conn.closed = true;
      if (conn.last && !conn.last.done) conn.last.closedByProxy = true;
      bus.changed();
    };
    s.on('error', () => {});
    // The proxy's end (FIN) is the end of the connection: the upstream ends its side too.
    s.on('end', () => {
      gone();
      if (!s.destroyed) s.end();
    });
    s.on('close', () => {
      this.sockets.delete(s);
      gone();
    });
    s.on('data', (d: Buffer) => {
      const buf = pending.length ? Buffer.concat([pending, d]) : d;
      pending = Buffer.alloc(0);
      let off = 0;
      while (off < buf.length) {
        if (!cur) {
          const end = buf.indexOf('\r\n\r\n', off, 'latin1');
          if (end < 0) {
            pending = Buffer.from(buf.subarray(off));
            break;
          }
          const head = buf.toString('latin1', off, end + 4);
          off = end + 4;
          const tag = /^[A-Z]+ \/(s\d+r\d+)/.exec(head)?.[1] ?? 'untagged';
          const list = this.attempts.get(tag) ?? [];
          this.attempts.set(tag, list);
          const te = headerOf(head, 'Transfer-Encoding');
          const cl = headerOf(head, 'Content-Length');
          cur = { tag, n: list.length + 1, conn, head, bodyBytes: 0, body: [], cap: null, complete: false, done: false, closedByProxy: false };
          list.push(cur);
          conn.last = cur;
          scan = te && /chunked/i.test(te) ? new ChunkScan() : null;
          left = scan ? 0 : Number(cl ?? 0);
          if (!scan && left === 0) {
            cur.complete = true;
            cur = null;
          }
          continue;
        }
        let to: number;
        let complete: boolean;
        if (scan) {
          const e = scan.feed(buf, off, buf.length);
          to = e >= 0 ? e : buf.length;
          complete = e >= 0;
        } else {
          to = off + Math.min(left, buf.length - off);
          left -= to - off;
          complete = left === 0;
        }
        cur.bodyBytes += to - off;
        if (to > off) cur.body.push(buf.subarray(off, to));
        off = to;
        if (complete) {
          cur.complete = true;
          cur = null;
        }
      }
      bus.changed();
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return Promise.all(this.servers.map((sv) => new Promise<void>((resolve) => sv.close(() => resolve())))).then(() => {});
  }
}

// ---- one path: a proxy, its upstreams, its listeners ----

interface Slot {
  /** Listener ports: a group of one upstream, of two. */
  readonly one: number;
  readonly two: number;
  /** The listeners' (or TLS exposures') names, which the route's counters go by. */
  readonly names: readonly [string, string];
}

interface PathUnderTest {
  readonly name: 'native' | 'portable';
  readonly proxy: Proxy;
  readonly ups: Upstreams;
  readonly slots: Slot[];
  /** TLS exposures instead of listeners: the CA their certificate is signed by, which clients trust. */
  readonly ca: string | null;
}

const SVC_ONE = 'svc:1';
const SVC_TWO = 'svc:2';

/**
 * n distinct free ports on 127.0.0.1, all bound at once and then released (one freePort() after another may
 * return a port twice: two listeners would then share a port, and their routes their connections).
 */
async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  await Promise.all(servers.map((sv) => new Promise<void>((resolve) => sv.listen({ host: '127.0.0.1', port: 0 }, () => resolve()))));
  const ports = servers.map((sv) => (sv.address() as AddressInfo).port);
  await Promise.all(servers.map((sv) => new Promise<void>((resolve) => sv.close(() => resolve()))));
  return ports;
}

/**
 * A proxy with WORKERS slots of two ports each. `tls`: each port is an http exposure (the catch-all route of its
 * port, as on a node) with that certificate, for HOST, instead of a listener.
 */
async function pathUnderTest(name: 'native' | 'portable', hosts: [string, string], ports: number[], tls: { ca: Pem; cert: Pem } | null = null): Promise<PathUnderTest> {
  const ups = await new Upstreams(hosts).listen();
  const proxy = new Proxy({
    log: testLog,
    dataPath: name,
    // Unreachable: see the file comment.
    ejection: { consecutiveFailures: 1_000_000_000, baseEjectionMs: 5000, maxEjectionMs: 300_000, maxEjectedShare: 0.5 },
    retryBudget: { ratio: 1, minPerSecond: 1_000_000, windowMs: 10_000 },
  });
  const slots: Slot[] = [];
  const listeners = [];
  const exposures = [];
  for (let w = 0; w < WORKERS; w++) {
    const [one, two] = [ports[2 * w]!, ports[2 * w + 1]!];
    const groups = [[group(SVC_ONE, 'http', [upstream(hosts[0], ups.ports[0]!)], NONE)], [group(SVC_TWO, 'http', [upstream(hosts[0], ups.ports[0]!), upstream(hosts[1], ups.ports[1]!)], NONE)]];
    if (tls) {
      const files = { cert: tls.cert.certPath, key: tls.cert.keyPath };
      const names = [`tls${w}-one`, `tls${w}-two`] as const;
      slots.push({ one, two, names });
      // The policy of listener() (the exposure helper's is the same), so that only the transport differs.
      exposures.push(exposure(names[0], one, 'http', groups[0]!, { tls: files }), exposure(names[1], two, 'http', groups[1]!, { tls: files }));
    } else {
      slots.push({ one, two, names: [String(one), String(two)] });
      listeners.push(listener(one, 'http', groups[0]!), listener(two, 'http', groups[1]!));
    }
  }
  const r = await proxy.apply(tls ? routesWith([], exposures) : routes(...listeners));
  assert.deepEqual(r.failed, []);
  return { name, proxy, ups, slots, ca: tls ? tls.ca.cert : null };
}

function routeStats(p: PathUnderTest, slot: Slot): RouteStats[] {
  return [p.proxy.metrics.route(slot.names[0], SVC_ONE), p.proxy.metrics.route(slot.names[1], SVC_TWO)];
}

function countersOf(st: RouteStats): Map<string, number> {
  const m = new Map<string, number>([
    ['opened', st.opened],
    ['closed', st.closed],
    ['active', st.active],
    ['in', st.receivedBytes],
    ['out', st.sentBytes],
    ['refused.no_upstream', st.refusedNoUpstream],
    ['refused.connect_failed', st.refusedConnectFailed],
  ]);
  for (const [k, v] of st.retries) m.set(`retry.${k}`, v);
  for (const h of st.http) if (h) m.set(`req.${h.method}.${h.statusClass}`, h.count);
  return m;
}

function counterDelta(before: Map<string, number>[], after: Map<string, number>[]): string {
  return after
    .map((a, i) => {
      const b = before[i]!;
      const parts: string[] = [];
      for (const [k, v] of a) if (v !== (b.get(k) ?? 0)) parts.push(`${k}=${v - (b.get(k) ?? 0)}`);
      return parts.join(' ') || '-';
    })
    .join(' || ');
}

function sessions(p: PathUnderTest): number {
  const frontends = (p.proxy as unknown as { frontends: Map<string, { sessions?: Set<unknown> }> }).frontends;
  let n = 0;
  for (const f of frontends.values()) n += f.sessions?.size ?? 0;
  return n;
}

function pooled(p: PathUnderTest): { idle: number; busy: number } {
  let idle = 0;
  let busy = 0;
  for (const u of p.proxy.registry.upstreams()) {
    idle += u.idle.length;
    busy += u.busy.size;
  }
  return { idle, busy };
}

// ---- running a script on one path ----

interface Outcome {
  readonly text: string;
  /**
   * Pipelined requests were left unread when the proxy cut the connection (a response cut by the upstream): how
   * much of them the proxy had read (Node reads ahead into its stream buffer while paused, the native path not at
   * all) decides the received-bytes counter, and unread bytes make the kernel reset the connection instead of
   * ending it. So those two may differ (see the file comment).
   */
  readonly readAhead: boolean;
}

async function run(p: PathUnderTest, slot: Slot, s: Script): Promise<Outcome> {
  const notes: string[] = [];
  const stats = routeStats(p, slot);
  const before = stats.map(countersOf);
  const c = new Client(s.two ? slot.two : slot.one, s.reqs.map((q) => q.method), p.ca !== null && s.tls ? { ca: p.ca, version: s.tls } : null);
  const enc = s.reqs.map((_, i) => requestBytes(s, i));
  let writer: Promise<void> | null = null;
  if (s.pipelined) {
    writer = (async () => {
      for (const [i, e] of enc.entries()) await writePieces(c.socket, Buffer.concat([e.head, e.body]), s.reqs[i]!.pieces);
      if (s.halfClose && !c.socket.destroyed && !c.socket.writableEnded) c.socket.end();
    })();
  }
  let reset = false;
  try {
    for (let i = 0; i < s.reqs.length && !reset; i++) {
      const q = s.reqs[i]!;
      const e = enc[i]!;
      const tag = tagOf(s, i);
      let w: Promise<void> | null = null;
      if (!s.pipelined) {
        if (q.client.k === 'reset-req') {
          // Part of the request (the head and k of its body bytes), then a reset once the upstream has it all.
          const k = e.body.length === 0 ? 0 : Math.floor(q.client.frac * e.body.length);
          await writePieces(c.socket, Buffer.concat([e.head, e.body.subarray(0, k)]), q.pieces);
          if (!(await bus.until(() => (p.ups.get(tag, 1)?.bodyBytes ?? -1) >= k || c.ended || c.closed))) notes.push(`stuck:reset-req r${i}`);
          const a = p.ups.get(tag, 1);
          c.reset();
          reset = true;
          if (a && !(await bus.until(() => a.conn.closed))) notes.push(`stuck:upstream-close r${i}`);
          break;
        }
        w = writePieces(c.socket, Buffer.concat([e.head, e.body]), q.pieces).then(() => {
          if (s.halfClose && i === s.reqs.length - 1 && !c.socket.destroyed && !c.socket.writableEnded) c.socket.end();
        });
      }
      // The attempts of this request, until the client has its response (or the connection is gone).
      for (let n = 1; n <= 4 && !reset; n++) {
        if (!(await bus.until(() => p.ups.get(tag, n) !== null || c.settled(i)))) {
          notes.push(`stuck:attempt r${i}.${n}`);
          break;
        }
        const a = p.ups.get(tag, n);
        if (!a) break;
        const act: Act = q.acts[n - 1] ?? { k: 'respond', reply: { status: 200, framing: 'cl', size: 10, at: 0, chunks: [], pieces: { cuts: [], gaps: [] } } };
        reset = await perform(c, s, i, a, act, notes);
      }
      if (w) await w;
      if (reset) break;
      if (!(await bus.until(() => c.settled(i)))) {
        notes.push(`stuck:response r${i}`);
        break;
      }
      const r = c.responses[i];
      if (c.ended || c.closed || !r || !r.complete || r.close) break;
    }
    if (writer) await writer;
    if (!c.closed) {
      const last = c.responses[c.responses.length - 1];
      // The proxy said it closes (or cut the response, or the client half-closed): it ends the connection itself.
      const closes = c.ended || (last !== undefined && (!last.complete || last.close)) || (s.halfClose && c.socket.writableEnded);
      if (closes && !(await bus.until(() => c.ended || c.closed))) notes.push('proxy-did-not-close');
      if (!c.closed && !c.socket.writableEnded) c.socket.end();
      if (!(await bus.until(() => c.closed))) notes.push('stuck:client-close');
    }
    // The proxy counts a connection when it closes: wait for that (active back to where it was: 0, but for a
    // connection an earlier script of this worker left stuck, in strict mode).
    if (!(await bus.until(() => stats.every((x, k) => x.active === before[k]!.get('active')), WAIT_MS))) notes.push('stuck:active');
    await new Promise((res) => setImmediate(res));
  } finally {
    if (!c.socket.destroyed) c.socket.destroy();
  }
  const up: string[] = [];
  for (let i = 0; i < s.reqs.length; i++) {
    const list = p.ups.attempts.get(tagOf(s, i)) ?? [];
    list.forEach((a, k) => {
      const where = k === 0 ? '' : a.conn.server === list[k - 1]!.conn.server ? ' same-upstream' : ' other-upstream';
      const body = Buffer.concat(a.body);
      const seen =
        a.cap !== null && a.bodyBytes >= a.cap
          ? `body>=${a.cap}:${sha(body.subarray(0, a.cap))} (killed there)`
          : `body=${a.bodyBytes}:${sha(body)}${a.complete ? '' : ' PARTIAL'}`;
      up.push(`r${i}.${a.n}${where} [${show(a.head)}] ${seen}${a.closedByProxy ? ' closed-by-proxy' : ''}`);
    });
    p.ups.attempts.delete(tagOf(s, i));
  }
  const counters = counterDelta(before, stats.map(countersOf));
  const last = c.responses[c.responses.length - 1];
  const readAhead = s.pipelined && c.responses.length < s.reqs.length && last !== undefined && !last.complete;
  const text = `client ${c.outcome()}\n      upstream ${up.join('\n        ') || 'nothing'}\n      counters ${counters}${notes.length ? `\n      notes ${notes.join(' ')}` : ''}`;
  return { text, readAhead };
}

/** An outcome without what read-ahead decides (see Outcome). */
const withoutReadAhead = (t: string) =>
  t
    .replace(/end: \w+ \w+/, 'end: (fin or reset)')
    .replace(/ in=\d+/g, ' in=(any)')
    .replace(/ alerts=\d+/, ' alerts=(any)');

/** The upstream's act on one attempt; returns true when the client reset (the script is over). */
async function perform(c: Client, s: Script, i: number, a: Attempt, act: Act, notes: string[]): Promise<boolean> {
  const q = s.reqs[i]!;
  const sock = a.conn.socket;
  const whole = () => bus.until(() => a.complete || a.conn.closed);
  const kill = (reset: boolean) => {
    a.done = true;
    if (reset) sock.resetAndDestroy();
    else sock.destroy();
  };
  /** The client has received m body bytes of response i (or the connection is gone). */
  const clientHas = (m: number) => bus.until(() => (c.responses[i]?.bodyBytes ?? -1) >= m || c.ended || c.closed);
  switch (act.k) {
    case 'hold':
      if (!(await bus.until(() => a.conn.closed))) notes.push(`stuck:hold r${i}`);
      a.done = true;
      return false;
    case 'reset-before':
    case 'close-before':
      if (!(await whole())) notes.push(`stuck:request r${i}.${a.n}`);
      kill(act.k === 'reset-before');
      return false;
    case 'reset-early':
    case 'close-early': {
      const k = inside(act.frac, requestBytes(s, i).body.length);
      if (!(await bus.until(() => a.complete || a.conn.closed || (k !== null && a.bodyBytes >= k)))) notes.push(`stuck:request r${i}.${a.n}`);
      a.cap = k ?? a.bodyBytes;
      kill(act.k === 'reset-early');
      return false;
    }
    case 'reset-within':
    case 'close-within': {
      if (!(await whole())) notes.push(`stuck:request r${i}.${a.n}`);
      const { head, body } = replyBytes(q.method, act.reply, a.tag);
      const m = inside(act.frac, body.length);
      if (m !== null) {
        await writePieces(sock, Buffer.concat([head, body.subarray(0, m)]), act.reply.pieces);
        if (!(await clientHas(m))) notes.push(`stuck:within r${i}.${a.n}`);
      }
      kill(act.k === 'reset-within');
      return false;
    }
    case 'respond': {
      if (!(await whole())) notes.push(`stuck:request r${i}.${a.n}`);
      if (a.conn.closed) return false;
      const { head, body } = replyBytes(q.method, act.reply, a.tag);
      const close = act.reply.framing === 'close10' || act.reply.framing === 'close11' || act.reply.framing === 'bare11';
      // The client's own act applies to a response it will see (a 502 or 503 may be retried instead).
      const clientAct = act.reply.status === 502 || act.reply.status === 503 ? 'normal' : q.client.k;
      if (clientAct === 'reset-res') {
        const m = inside(q.client.k === 'reset-res' ? q.client.frac : 0, body.length);
        if (m !== null) {
          await writePieces(sock, Buffer.concat([head, body.subarray(0, m)]), act.reply.pieces);
          if (!(await clientHas(m))) notes.push(`stuck:reset-res r${i}`);
          c.reset();
          if (!(await bus.until(() => a.conn.closed))) notes.push(`stuck:upstream-close r${i}`);
          a.done = true;
          return true;
        }
      }
      // Answered: a close from now on is the proxy's business (it drops a 502 or 503 it retries, at once).
      a.done = true;
      if (clientAct === 'slow') c.socket.pause();
      await writePieces(sock, Buffer.concat([head, body]), act.reply.pieces);
      if (close && !sock.destroyed) sock.end();
      if (clientAct === 'slow') {
        await sleep(SLOW_MS);
        c.socket.resume();
      }
      return false;
    }
  }
}

// ---- the test ----

/** What a run went through (from the native path's outcomes), printed at its end. */
type Seen = Map<string, number>;

function tally(seen: Seen, t: string): void {
  const add = (k: string, n = 1) => n > 0 && seen.set(k, (seen.get(k) ?? 0) + n);
  const count = (re: RegExp) => t.match(re)?.length ?? 0;
  for (const m of t.matchAll(/resp\d+ \[HTTP\/1\.[01] (\d{3})/g)) add(m[1]!);
  add('proxy answers', count(/charset=utf-8/g));
  add('cut', count(/ CUT/g));
  add('client reset', count(/end: \w+ reset/g));
  add('retries', [...t.matchAll(/retry\.\w+=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0));
  add('retried elsewhere', count(/other-upstream/g));
  add('killed mid-request', count(/killed there/g));
  add('closed by the proxy', count(/closed-by-proxy/g));
  add('TLS 1.2 alert (close_notify)', [...t.matchAll(/ alerts=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0));
}

interface Paths {
  readonly native: PathUnderTest;
  readonly portable: PathUnderTest;
}

/**
 * Runs `scripts` on both paths, WORKERS at a time, until the budget is spent (or 20 differences), and checks that
 * nothing is left on either proxy but pooled upstream connections of the native one (the addon's connections are
 * all of this process's native proxies: `others` are those still running besides p.native). Returns the
 * differences (empty: none) and how many scripts ran.
 */
async function compare(label: string, p: Paths, scripts: Script[], budgetMs: number, others: PathUnderTest[] = []): Promise<{ diffs: string[]; done: number }> {
  const { native: n, portable: q } = p;
  const seen: Seen = new Map();
  const diffs: string[] = [];
  const t0 = Date.now();
  let next = 0;
  let done = 0;
  let tolerated = 0;
  const worker = async (w: number) => {
    while (next < scripts.length && Date.now() - t0 < budgetMs && diffs.length < 20) {
      const s = scripts[next++]!;
      const [a, b] = await Promise.all([run(n, n.slots[w]!, s), run(q, q.slots[w]!, s)]);
      done += 1;
      const [x, y] = [a.text, b.text];
      tally(seen, x);
      const text = `${describeScript(s)}\n    native:\n      ${x}\n    portable:\n      ${y}`;
      if (VERBOSE) console.log(text);
      // A wait that gave up is a failure even when both paths gave up alike.
      if (x.includes('\n      notes ') || y.includes('\n      notes ')) {
        diffs.push(`${x === y ? 'stuck alike on both paths: ' : ''}${text}`);
        continue;
      }
      if (x === y) continue;
      if (!STRICT && a.readAhead && b.readAhead && withoutReadAhead(x) === withoutReadAhead(y)) tolerated += 1;
      else diffs.push(text);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  const ms = Date.now() - t0;
  // Nothing is held but pooled upstream connections (the proxies' sessions are gone).
  await until('no session left on either proxy', () => sessions(n) === 0 && sessions(q) === 0, WAIT_MS).catch((e: Error) => diffs.push(`${e.message}: native ${sessions(n)}, portable ${sessions(q)}`));
  const held = () => {
    let [idle, busy] = [0, 0];
    for (const x of [n, ...others]) {
      const h = pooled(x);
      idle += h.idle;
      busy += h.busy;
    }
    return { open: nativeRelay()!.open, idle, busy };
  };
  await until('the addon holds only pooled upstream connections', () => held().busy === 0 && held().open === held().idle, WAIT_MS).catch(() => diffs.push(`the addon holds ${JSON.stringify(held())} (open should equal idle, busy 0)`));
  console.log(`${label}: responses by status and events: ${[...seen].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`${label}: ${done} scripts on both paths in ${ms} ms; ${diffs.length} differences, ${tolerated} by read-ahead only (tolerated)`);
  return { diffs, done };
}

const native = nativeRelay();
let paths: Paths | null = null;
/** The TLS part's, while its test runs. */
let tlsPaths: Paths | null = null;
let tlsWork: string | null = null;

before(async () => {
  if (!native) return;
  const ports = await freePorts(4 * WORKERS);
  paths = {
    native: await pathUnderTest('native', ['127.0.0.41', '127.0.0.42'], ports.slice(0, 2 * WORKERS)),
    portable: await pathUnderTest('portable', ['127.0.0.43', '127.0.0.44'], ports.slice(2 * WORKERS)),
  };
});

after(async () => {
  for (const ps of [paths, tlsPaths]) {
    if (!ps) continue;
    for (const p of [ps.native, ps.portable]) {
      await p.proxy.stop(1000);
      await p.ups.close();
    }
  }
  await stopAll();
  if (tlsWork) rmSync(tlsWork, { recursive: true, force: true });
});

describe('HTTP on the native data path against the portable one', () => {
  const skip = native ? (TLS_ONLY !== null ? 'GLOW_HC_TLS_ONLY: the TLS part only' : false) : 'the native relay is not built';
  test('random scripts: same bytes to the client and to the upstream, same ends, same counters', { timeout: 120_000, skip }, async () => {
    const { native: n, portable: q } = paths!;
    console.log(`http-compare: seed ${SEED} (GLOW_HC_SEED=${SEED} replays it), up to ${SCRIPTS} scripts`);
    const r = mulberry32(SEED);
    const scripts = Array.from({ length: SCRIPTS }, (_, i) => makeScript(r, i)).filter((x) => ONLY === null || x.index === ONLY);
    const { diffs, done } = await compare('http-compare', paths!, scripts, TIME_BUDGET_MS);
    const replay = `GLOW_HC_SEED=${SEED}${STRICT ? ' GLOW_HC_STRICT=1' : ''} GLOW_HC_ONLY=<index> GLOW_HC_VERBOSE=1`;
    assert.equal(diffs.length, 0, `seed ${SEED}${STRICT ? ', strict' : ''} (${replay} replays one script): the paths differ:\n${diffs.slice(0, 10).join('\n')}`);
    assert.ok(ONLY !== null || done >= Math.min(SCRIPTS, 300), `only ${done} scripts ran within the time budget`);
    // Once both proxies stop, the addon holds nothing.
    await n.proxy.stop(1000);
    await q.proxy.stop(1000);
    await until('the addon holds nothing once the proxies stopped', () => nativeRelay()!.open === 0, WAIT_MS);
  });

  const tlsSkip = native ? (ONLY !== null ? 'GLOW_HC_ONLY: the plain part only' : TLS_SCRIPTS <= 0 ? 'GLOW_HC_TLS_SCRIPTS=0' : false) : 'the native relay is not built';
  test('random scripts over TLS (a TLS exposure on each path): the same comparison, no handshake failure', { timeout: 120_000, skip: tlsSkip }, async () => {
    tlsWork = mkdtempSync(join(tmpdir(), 'glow-http-compare-'));
    const ca = makeCa(tlsWork);
    const cert = makeCert(tlsWork, ca, 'compare', [HOST]);
    const ports = await freePorts(4 * WORKERS);
    tlsPaths = {
      native: await pathUnderTest('native', ['127.0.0.45', '127.0.0.46'], ports.slice(0, 2 * WORKERS), { ca, cert }),
      portable: await pathUnderTest('portable', ['127.0.0.47', '127.0.0.48'], ports.slice(2 * WORKERS), { ca, cert }),
    };
    const { native: n, portable: q } = tlsPaths;
    assert.ok(n.proxy.status().frontends.every((f) => f.tls && f.native) && q.proxy.status().frontends.every((f) => f.tls && !f.native), 'TLS frontends, natively on the native path only');
    console.log(`http-compare TLS: seed ${SEED}, up to ${TLS_SCRIPTS} scripts (GLOW_HC_TLS_SCRIPTS), each over TLS 1.2 or 1.3`);
    // A stream of its own: the plain part's scripts stay those of the seed whatever GLOW_HC_TLS_SCRIPTS says.
    const r = mulberry32(SEED ^ 0x7153c0de);
    const scripts = Array.from({ length: TLS_SCRIPTS }, (_, i): Script => ({ ...makeScript(r, i), tls: r() < 0.5 ? 'TLSv1.2' : 'TLSv1.3' })).filter((x) => TLS_ONLY === null || x.index === TLS_ONLY);
    // The plain part's native proxy, if it is still up (its pooled connections are the addon's too).
    const others = paths ? [paths.native] : [];
    const { diffs, done } = await compare('http-compare TLS', tlsPaths, scripts, TLS_BUDGET_MS, others);
    // Every script's handshake succeeded on both paths (a failure would have shown as a client error, too).
    const failures = (p: PathUnderTest) => p.slots.flatMap((sl) => [sl.one, sl.two]).reduce((k, port) => k + p.proxy.metrics.frontend(`tcp 127.0.0.1:${port}`).tlsHandshakeFailures, 0);
    const hs = { native: failures(n), portable: failures(q) };
    const replay = `GLOW_HC_SEED=${SEED}${STRICT ? ' GLOW_HC_STRICT=1' : ''} GLOW_HC_TLS_ONLY=<index> GLOW_HC_VERBOSE=1`;
    assert.deepEqual(hs, { native: 0, portable: 0 }, 'TLS handshake failures');
    assert.equal(diffs.length, 0, `seed ${SEED}${STRICT ? ', strict' : ''}, TLS (${replay} replays one script): the paths differ:\n${diffs.slice(0, 10).join('\n')}`);
    assert.ok(TLS_ONLY !== null || done >= Math.min(TLS_SCRIPTS, 100), `only ${done} TLS scripts ran within the time budget`);
    await n.proxy.stop(1000);
    await q.proxy.stop(1000);
    await until('the addon holds nothing once the proxies stopped', () => nativeRelay()!.open === others.reduce((k, x) => k + pooled(x).idle, 0), WAIT_MS);
  });
});
