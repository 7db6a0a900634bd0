/**
 * HTTP/1.x message heads, parsed on the raw bytes the proxy forwards: only what timing, retries, framing and
 * connection reuse need (method, status, Content-Length, Transfer-Encoding, Connection, Upgrade, Host). Bodies are
 * never parsed here or re-serialised anywhere; a head is rewritten only to keep the upstream connection alive
 * when the client asks to close (see `withoutConnectionHeader` and `withConnectionClose`). Pure.
 *
 * Strict where smuggling hides: obsolete line folding, whitespace before a colon, a request with both
 * Content-Length and Transfer-Encoding, differing Content-Lengths, a transfer coding other than a final
 * `chunked` on a request, Transfer-Encoding on an HTTP/1.0 request, a bare CR or LF (RFC 9112 2.2 allows
 * refusing it; a head with one is refused as soon as it is seen, complete or not: `findHeadEnd`), any other
 * control character, a header name that is not a token and two Host headers are all refused with 400 (502 in an
 * upstream's response head).
 *
 * For exposures the request head is rebuilt once (`rewriteRequestHead`): X-Forwarded-* lines dropped or kept
 * by the trust in the client, new ones added, and the Connection line dropped when only the client closes.
 */
import { ProxyError } from './errors.js';

export class HttpHeadError extends ProxyError {
  constructor(
    readonly status: 400 | 431 | 502,
    message: string,
  ) {
    super('GLOW_E_PROXY_HTTP_HEAD', message);
    this.name = 'HttpHeadError';
  }
}

/** Longest head accepted (request line or status line plus headers). */
export const MAX_HEAD_BYTES = 64 * 1024;

const CR = 13;
const LF = 10;
const COLON = 58;
const SP = 32;
const HT = 9;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/** findHeadEnd: the head is not all here yet. */
export const HEAD_INCOMPLETE = -1;
/** findHeadEnd: a line of the head ends in a bare LF or CR, so it can never end (RFC 9112 2.2: refused). */
export const HEAD_BARE_LINE_END = -2;

/**
 * The index just past the blank line that ends a head starting at `start`, HEAD_INCOMPLETE if it is not all here
 * yet, or HEAD_BARE_LINE_END when what is here holds a bare LF or CR: such a head would wait for a CRLFCRLF that
 * never comes. `searchFrom` is where the bytes not searched before begin. A complete head is checked line by line
 * by the parsers, which refuse a bare CR or LF too.
 */
export function findHeadEnd(buf: Buffer, start: number, searchFrom = start): number {
  const i = buf.indexOf(CRLFCRLF, Math.max(start, searchFrom - 3));
  if (i >= 0) return i + 4;
  return hasBareLineEnd(buf, start, Math.max(start, searchFrom - 1)) ? HEAD_BARE_LINE_END : HEAD_INCOMPLETE;
}

/** Whether buf[from..] (within a head starting at `start`) holds an LF not after a CR, or a CR not before an LF. */
function hasBareLineEnd(buf: Buffer, start: number, from: number): boolean {
  for (let i = buf.indexOf(LF, from); i >= 0; i = buf.indexOf(LF, i + 1)) if (i === start || buf[i - 1] !== CR) return true;
  for (let i = buf.indexOf(CR, from); i >= 0 && i + 1 < buf.length; i = buf.indexOf(CR, i + 1)) if (buf[i + 1] !== LF) return true;
  return false;
}

export interface RequestHead {
  /** Canonical method name for known methods, `OTHER` for the rest (bounded metric labels). */
  readonly method: string;
  /** Safe to send twice (RFC 9110 idempotent methods). */
  readonly idempotent: boolean;
  /** No body and no response body framing surprises: HEAD. */
  readonly head: boolean;
  readonly minor: number;
  readonly length: number;
  /** -1 when absent. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** The client ends the connection after this exchange (Connection: close, or HTTP/1.0 without keep-alive). */
  readonly close: boolean;
  /** The Connection header holds exactly `close` (so it can be dropped towards the upstream). */
  readonly connectionIsCloseOnly: boolean;
  /** An upgrade (WebSocket…) or CONNECT: after a 101 (or 2xx to CONNECT) the connection is a tunnel. */
  readonly upgrade: boolean;
  /** The Host value's byte range relative to the head's start (-1 when absent); see `hostOf`. */
  readonly hostStart: number;
  readonly hostEnd: number;
  /** The Host header line's byte range [start, end) relative to the head's start (-1 when absent). */
  readonly hostLineStart: number;
  readonly hostLineEnd: number;
  /** Byte ranges [start, end) of every Connection header line, relative to the head's start. */
  readonly connectionLines: readonly number[];
  /** The request target's byte range relative to the head's start (`/path?query`, `http://host/path`, `*`). */
  readonly targetStart: number;
  readonly targetEnd: number;
  /** Forwarding header lines as triples [kind (FWD_*), start, end), relative to the head's start. */
  readonly forwardedLines: readonly number[];
}

/** Kinds of forwarding header lines (RequestHead.forwardedLines). */
export const FWD_FOR = 1;
export const FWD_PROTO = 2;
export const FWD_HOST = 3;
export const FWD_FORWARDED = 4;

export interface ResponseHead {
  readonly status: number;
  readonly minor: number;
  readonly length: number;
  readonly contentLength: number;
  readonly chunked: boolean;
  /** The upstream ends the connection after this response. */
  readonly close: boolean;
  readonly connectionLines: readonly number[];
}

const CONN_CLOSE = 1;
const CONN_KEEP_ALIVE = 2;
const CONN_UPGRADE = 4;
const CONN_OTHER = 8;

const TE_NONE = 0;
const TE_CHUNKED = 1;
const TE_OTHER = 2;

interface Fields {
  contentLength: number;
  /** From the last Transfer-Encoding line: is its final coding chunked? */
  te: number;
  /** Tokens of every Connection line, as flags. */
  conn: number;
  upgrade: boolean;
  hostStart: number;
  hostEnd: number;
  hostLineStart: number;
  hostLineEnd: number;
  connectionLines: number[] | null;
  forwardedLines: number[] | null;
}

const EMPTY: readonly number[] = [];

/** Parses the head in buf[start, end) where `end` is what findHeadEnd returned. */
export function parseRequestHead(buf: Buffer, start: number, end: number): RequestHead {
  const lineEnd = indexOfCrlf(buf, start, end);
  // METHOD SP target SP HTTP/1.x
  const sp1 = indexOfByte(buf, SP, start, lineEnd);
  const sp2 = sp1 < 0 ? -1 : lastIndexOfByte(buf, SP, sp1 + 1, lineEnd);
  if (sp1 <= start || sp2 <= sp1 + 1) throw new HttpHeadError(400, 'malformed request line');
  const minor = httpVersion(buf, sp2 + 1, lineEnd);
  if (minor < 0) throw new HttpHeadError(400, 'unsupported HTTP version');
  const method = methodName(buf, start, sp1);
  const f = parseFields(buf, lineEnd + 2, end, start, true);
  const conn = f.conn;
  let chunked = false;
  if (f.te !== TE_NONE) {
    // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; an upstream may well read it as
    // a request without a body and take the chunks for the next request. Refused, like nginx does.
    if (minor === 0) throw new HttpHeadError(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (f.contentLength >= 0) throw new HttpHeadError(400, 'both Content-Length and Transfer-Encoding');
    if (f.te !== TE_CHUNKED) throw new HttpHeadError(400, 'a request transfer coding must end with chunked');
    chunked = true;
  }
  const lines = f.connectionLines;
  return {
    method,
    idempotent: IDEMPOTENT.has(method),
    head: method === 'HEAD',
    minor,
    length: end - start,
    contentLength: f.contentLength,
    chunked,
    close: (conn & CONN_CLOSE) !== 0 || (minor === 0 && (conn & CONN_KEEP_ALIVE) === 0),
    connectionIsCloseOnly: conn === CONN_CLOSE && lines !== null && lines.length === 2,
    upgrade: method === 'CONNECT' || (f.upgrade && (conn & CONN_UPGRADE) !== 0),
    hostStart: f.hostStart,
    hostEnd: f.hostEnd,
    hostLineStart: f.hostLineStart,
    hostLineEnd: f.hostLineEnd,
    connectionLines: lines ?? EMPTY,
    targetStart: sp1 + 1 - start,
    targetEnd: sp2 - start,
    forwardedLines: f.forwardedLines ?? EMPTY,
  };
}

/** The Host header of a parsed request head (buf and start as given to parseRequestHead), or null. */
export function hostOf(buf: Buffer, start: number, head: RequestHead): string | null {
  return head.hostStart < 0 ? null : buf.toString('latin1', start + head.hostStart, start + head.hostEnd);
}

export function parseResponseHead(buf: Buffer, start: number, end: number): ResponseHead {
  const lineEnd = indexOfCrlf(buf, start, end);
  // HTTP/1.x SP 3DIGIT SP reason
  if (lineEnd - start < 12 || buf[start + 8] !== SP) throw new HttpHeadError(502, 'malformed status line from upstream');
  const minor = httpVersion(buf, start, start + 8);
  const d0 = buf[start + 9]! - 48;
  const d1 = buf[start + 10]! - 48;
  const d2 = buf[start + 11]! - 48;
  if (minor < 0 || d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) throw new HttpHeadError(502, 'malformed status line from upstream');
  const f = parseFields(buf, lineEnd + 2, end, start, false);
  // Both framings: an intermediary would have to drop the Content-Length (RFC 9112 6.3), and a cache or proxy in
  // front that trusted it would fall out of step with us on a kept-alive connection. Refused, as for requests.
  if (f.te !== TE_NONE && f.contentLength >= 0) throw new HttpHeadError(502, 'upstream response has both Content-Length and Transfer-Encoding');
  const conn = f.conn;
  const chunked = f.te === TE_CHUNKED;
  return {
    status: d0 * 100 + d1 * 10 + d2,
    minor,
    length: end - start,
    // Another coding than chunked reads to close.
    contentLength: f.te !== TE_NONE ? -1 : f.contentLength,
    chunked,
    close: (conn & CONN_CLOSE) !== 0 || (minor === 0 && (conn & CONN_KEEP_ALIVE) === 0) || f.te === TE_OTHER,
    connectionLines: f.connectionLines ?? EMPTY,
  };
}

/** The request target (buf and start as given to parseRequestHead). */
export function targetOf(buf: Buffer, start: number, head: RequestHead): string {
  return buf.toString('latin1', start + head.targetStart, start + head.targetEnd);
}

/**
 * A request head with the line ranges in `drop` (flat [start, end) pairs relative to the head, in any order, not
 * overlapping) left out and `extra` (complete `Name: value\r\n` lines) added before the blank line.
 */
export function rewriteRequestHead(head: Buffer, drop: readonly number[], extra: string): Buffer {
  const ranges: [number, number][] = [];
  for (let i = 0; i < drop.length; i += 2) ranges.push([drop[i]!, drop[i + 1]!]);
  ranges.sort((a, b) => a[0] - b[0]);
  const parts: Buffer[] = [];
  let at = 0;
  for (const [a, b] of ranges) {
    parts.push(head.subarray(at, a));
    at = b;
  }
  parts.push(head.subarray(at, head.length - 2));
  parts.push(Buffer.from(`${extra}\r\n`, 'latin1'));
  return Buffer.concat(parts);
}

/** The head without its Connection header lines (relative ranges from the parse). */
export function withoutConnectionHeader(head: Buffer, lines: readonly number[]): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < lines.length; i += 2) {
    parts.push(head.subarray(at, lines[i]!));
    at = lines[i + 1]!;
  }
  parts.push(head.subarray(at));
  return Buffer.concat(parts);
}

const CONNECTION_CLOSE = Buffer.from('Connection: close\r\n\r\n', 'latin1');

/** A response head that tells the client the connection closes after it (replacing any Connection header). */
export function withConnectionClose(head: Buffer, lines: readonly number[]): Buffer {
  const stripped = lines.length ? withoutConnectionHeader(head, lines) : head;
  return Buffer.concat([stripped.subarray(0, stripped.length - 2), CONNECTION_CLOSE]);
}

/** A complete response the proxy writes itself (502, 503, 504, 400…), closing the connection. */
export function errorResponse(status: number, reason: string, body: string, headers = ''): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}Connection: close\r\n\r\n${body}`,
    'latin1',
  );
}

/** Whether a response to this request carries no body whatever its headers say. */
export function responseHasNoBody(requestIsHead: boolean, status: number): boolean {
  return requestIsHead || (status >= 100 && status < 200) || status === 204 || status === 304;
}

export function statusClass(status: number): string {
  return STATUS_CLASSES[Math.floor(status / 100)] ?? 'other';
}

const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'];

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];

function methodName(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  outer: for (const m of METHODS) {
    if (m.length !== len) continue;
    for (let i = 0; i < len; i++) if (buf[start + i] !== m.charCodeAt(i)) continue outer;
    return m;
  }
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    // tchar, roughly: visible ASCII except separators
    if (c <= 32 || c >= 127 || c === 40 || c === 41 || c === 44 || c === 47 || c === 58 || c === 59 || c === 34) {
      throw new HttpHeadError(400, 'malformed method');
    }
  }
  return 'OTHER';
}

/** The minor version of `HTTP/1.x` at buf[start, end), or -1. */
function httpVersion(buf: Buffer, start: number, end: number): number {
  if (end - start !== 8) return -1;
  if (buf[start] !== 72 || buf[start + 1] !== 84 || buf[start + 2] !== 84 || buf[start + 3] !== 80 || buf[start + 4] !== 47 || buf[start + 5] !== 49 || buf[start + 6] !== 46) return -1;
  const minor = buf[start + 7]! - 48;
  return minor === 0 || minor === 1 ? minor : -1;
}

function parseFields(buf: Buffer, from: number, end: number, headStart: number, request: boolean): Fields {
  const f: Fields = { contentLength: -1, te: TE_NONE, conn: 0, upgrade: false, hostStart: -1, hostEnd: -1, hostLineStart: -1, hostLineEnd: -1, connectionLines: null, forwardedLines: null };
  const bad = (msg: string) => new HttpHeadError(request ? 400 : 502, request ? msg : `upstream: ${msg}`);
  let line = from;
  const last = end - 2; // the blank line's CRLF
  while (line < last) {
    const lineEnd = indexOfCrlf(buf, line, end);
    const first = buf[line]!;
    if (first === SP || first === HT) throw bad('obsolete line folding');
    const colon = indexOfByte(buf, COLON, line, lineEnd);
    if (colon <= line) throw bad('malformed header line');
    const nameLen = colon - line;
    const before = buf[colon - 1]!;
    if (before === SP || before === HT) throw bad('whitespace before a colon');
    for (let i = line; i < colon; i++) if (TCHAR[buf[i]!] === 0) throw bad('a header name that is not a token');
    switch (nameLen) {
      case 14:
        if (nameIs(buf, line, 'content-length')) {
          const n = parseLength(buf, colon + 1, lineEnd);
          if (n < 0) throw bad('invalid Content-Length');
          if (f.contentLength >= 0 && f.contentLength !== n) throw bad('two different Content-Lengths');
          f.contentLength = n;
        }
        break;
      case 17:
        if (nameIs(buf, line, 'transfer-encoding')) f.te = lastTokenIs(buf, colon + 1, lineEnd, 'chunked') ? TE_CHUNKED : TE_OTHER;
        else if (request && nameIs(buf, line, 'x-forwarded-proto')) (f.forwardedLines ??= []).push(FWD_PROTO, line - headStart, lineEnd + 2 - headStart);
        break;
      case 15:
        if (request && nameIs(buf, line, 'x-forwarded-for')) (f.forwardedLines ??= []).push(FWD_FOR, line - headStart, lineEnd + 2 - headStart);
        break;
      case 16:
        if (request && nameIs(buf, line, 'x-forwarded-host')) (f.forwardedLines ??= []).push(FWD_HOST, line - headStart, lineEnd + 2 - headStart);
        break;
      case 9:
        if (request && nameIs(buf, line, 'forwarded')) (f.forwardedLines ??= []).push(FWD_FORWARDED, line - headStart, lineEnd + 2 - headStart);
        break;
      case 10:
        if (nameIs(buf, line, 'connection')) {
          f.conn |= connectionTokens(buf, colon + 1, lineEnd);
          (f.connectionLines ??= []).push(line - headStart, lineEnd + 2 - headStart);
        }
        break;
      case 7:
        if (nameIs(buf, line, 'upgrade')) f.upgrade = true;
        break;
      case 4:
        if (request && nameIs(buf, line, 'host')) {
          if (f.hostStart >= 0) throw bad('two Host headers');
          let a = colon + 1;
          let b = lineEnd;
          while (a < b && (buf[a] === SP || buf[a] === HT)) a++;
          while (b > a && (buf[b - 1] === SP || buf[b - 1] === HT)) b--;
          f.hostStart = a - headStart;
          f.hostEnd = b - headStart;
          f.hostLineStart = line - headStart;
          f.hostLineEnd = lineEnd + 2 - headStart;
        }
        break;
    }
    line = lineEnd + 2;
  }
  return f;
}

/** The tokens of a Connection value as flags, read on the bytes (no strings). */
function connectionTokens(buf: Buffer, from: number, end: number): number {
  let flags = 0;
  let i = from;
  while (i < end) {
    while (i < end && (buf[i] === SP || buf[i] === HT || buf[i] === 44)) i++;
    const t = i;
    while (i < end && buf[i] !== 44 && buf[i] !== SP && buf[i] !== HT) i++;
    const len = i - t;
    if (len === 0) continue;
    if (len === 5 && nameIs(buf, t, 'close')) flags |= CONN_CLOSE;
    else if (len === 10 && nameIs(buf, t, 'keep-alive')) flags |= CONN_KEEP_ALIVE;
    else if (len === 7 && nameIs(buf, t, 'upgrade')) flags |= CONN_UPGRADE;
    else flags |= CONN_OTHER;
  }
  return flags;
}

/** Whether the last comma-separated token of buf[from, end) is `token` (case-insensitive). */
function lastTokenIs(buf: Buffer, from: number, end: number, token: string): boolean {
  while (end > from && (buf[end - 1] === SP || buf[end - 1] === HT)) end--;
  let t = end;
  while (t > from && buf[t - 1] !== 44 && buf[t - 1] !== SP && buf[t - 1] !== HT) t--;
  return end - t === token.length && nameIs(buf, t, token);
}

function indexOfCrlf(buf: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) {
    const c = buf[i]!;
    if (c < 32 || c === 127) {
      if (c === CR) {
        if (buf[i + 1] !== LF) throw new HttpHeadError(400, 'a bare CR in the head');
        return i;
      }
      if (c === LF) throw new HttpHeadError(400, 'a bare LF in the head');
      if (c !== HT) throw new HttpHeadError(400, 'a control character in the head');
    }
  }
  throw new HttpHeadError(400, 'unterminated head line');
}

/** RFC 9110 tchar: the bytes a header name may hold (1) or not (0). */
const TCHAR = (() => {
  const t = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") t[c.charCodeAt(0)] = 1;
  return t;
})();

function indexOfByte(buf: Buffer, byte: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === byte) return i;
  return -1;
}

function lastIndexOfByte(buf: Buffer, byte: number, from: number, end: number): number {
  for (let i = end - 1; i >= from; i--) if (buf[i] === byte) return i;
  return -1;
}

function nameIs(buf: Buffer, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((buf[at + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}


function parseLength(buf: Buffer, from: number, end: number): number {
  while (from < end && (buf[from] === SP || buf[from] === HT)) from++;
  while (end > from && (buf[end - 1] === SP || buf[end - 1] === HT)) end--;
  if (from === end || end - from > 15) return -1;
  let n = 0;
  for (let i = from; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}


