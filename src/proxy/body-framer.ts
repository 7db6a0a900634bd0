/**
 * Where an HTTP/1.x body ends, found on the raw stream without copying it: a byte count for Content-Length, a
 * small state machine over chunk-size lines for chunked (chunk data is skipped by arithmetic, never scanned).
 * Pure. `feed` returns the index just past the body's last byte, NEED_MORE, or MALFORMED.
 *
 * Every line of the chunked framing (chunk-size lines with their extensions, trailer lines, the last blank line)
 * must end in CRLF: a bare LF or a bare CR is MALFORMED, as in heads (src/proxy/http-head.ts), so that no reader
 * further on can see a line end where this one saw none.
 */

export const NEED_MORE = -1;
export const MALFORMED = -2;

export type BodyMode = 'none' | 'length' | 'chunked' | 'close';

const enum S {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
}

const MAX_CHUNK = 2 ** 48;

export class BodyFramer {
  mode: BodyMode = 'none';
  private remaining = 0;
  private state = S.Size;
  private digits = 0;

  /** Starts a body: `length` for Content-Length, ignored otherwise. */
  reset(mode: BodyMode, length = 0): void {
    this.mode = mode;
    this.remaining = length;
    this.state = S.Size;
    this.digits = 0;
  }

  /** True when the body has no bytes left to wait for (before any feed). */
  get done(): boolean {
    return this.mode === 'none' || (this.mode === 'length' && this.remaining === 0);
  }

  feed(buf: Buffer, start: number, end: number): number {
    switch (this.mode) {
      case 'none':
        return start;
      case 'close':
        return NEED_MORE;
      case 'length': {
        const n = end - start;
        if (n < this.remaining) {
          this.remaining -= n;
          return NEED_MORE;
        }
        const at = start + this.remaining;
        this.remaining = 0;
        return at;
      }
      case 'chunked':
        return this.chunked(buf, start, end);
    }
  }

  private chunked(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case S.Size: {
          const c = buf[i]!;
          const v = hex(c);
          if (v >= 0) {
            this.remaining = this.remaining * 16 + v;
            this.digits += 1;
            if (this.remaining > MAX_CHUNK) return MALFORMED;
          } else if (this.digits > 0 && (c === 59 || c === 32 || c === 9)) this.state = S.Ext;
          else if (this.digits > 0 && c === 13) this.state = S.SizeLf;
          else return MALFORMED;
          i++;
          break;
        }
        case S.Ext: {
          const cr = lineEnd(buf, i, end);
          if (cr === MALFORMED) return MALFORMED;
          if (cr < 0) return NEED_MORE;
          i = cr + 1;
          this.state = S.SizeLf;
          break;
        }
        case S.SizeLf:
          if (buf[i] !== 10) return MALFORMED;
          i++;
          this.state = this.remaining === 0 ? S.TrailerStart : S.Data;
          break;
        case S.Data: {
          const n = Math.min(this.remaining, end - i);
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.state = S.DataCr;
          break;
        }
        case S.DataCr:
          if (buf[i] !== 13) return MALFORMED;
          i++;
          this.state = S.DataLf;
          break;
        case S.DataLf:
          if (buf[i] !== 10) return MALFORMED;
          i++;
          this.state = S.Size;
          this.digits = 0;
          this.remaining = 0;
          break;
        case S.TrailerStart:
          if (buf[i] === 10) return MALFORMED;
          this.state = buf[i] === 13 ? S.FinalLf : S.TrailerLine;
          if (this.state === S.FinalLf) i++;
          break;
        case S.TrailerLine: {
          const cr = lineEnd(buf, i, end);
          if (cr === MALFORMED) return MALFORMED;
          if (cr < 0) return NEED_MORE;
          i = cr + 1;
          this.state = S.TrailerLf;
          break;
        }
        case S.TrailerLf:
          if (buf[i] !== 10) return MALFORMED;
          i++;
          this.state = S.TrailerStart;
          break;
        case S.FinalLf:
          if (buf[i] !== 10) return MALFORMED;
          this.mode = 'none';
          return i + 1;
      }
    }
    return NEED_MORE;
  }
}

/** The CR that ends the line in buf[from, end): its index, NEED_MORE when none is here yet, MALFORMED after a bare LF. */
function lineEnd(buf: Buffer, from: number, end: number): number {
  let cr = buf.indexOf(13, from);
  if (cr >= end) cr = -1;
  const lf = buf.indexOf(10, from);
  if (lf >= 0 && lf < end && (cr < 0 || lf < cr)) return MALFORMED;
  return cr < 0 ? NEED_MORE : cr;
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}
