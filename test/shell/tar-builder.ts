/**
 * Tarballs written byte by byte, for the archives that no honest `tar` writes: a `..` or an absolute name, links
 * out, devices, a declared size that the body does not have, a damaged checksum, names that are not UTF-8. Each
 * member is a real ustar header (what GNU tar and bsdtar read), the archive ends with two zero blocks, and the
 * whole is gzip-compressed as a .tar.gz is.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { gzipSync } from 'node:zlib';

export interface RawMember {
  name: string | Buffer;
  /** The typeflag: '0' file (default), '1' hard link, '2' symbolic link, '3' char device, '5' directory, … */
  type?: string;
  body?: string | Buffer;
  mode?: number;
  link?: string;
  /** The size the header declares, when it is not the body's (base-256 from 8 GiB on, as GNU tar writes it). */
  size?: number;
  /** Break the header's checksum. */
  badChecksum?: boolean;
}

function put(block: Buffer, at: number, len: number, value: string | Buffer): void {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (b.length > len) throw new RangeError(`a field of ${len} bytes cannot hold ${b.length}`);
  b.copy(block, at);
}

function octal(block: Buffer, at: number, len: number, n: number): void {
  put(block, at, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
}

function header(m: RawMember, size: number): Buffer {
  const h = Buffer.alloc(512);
  put(h, 0, 100, m.name);
  octal(h, 100, 8, m.mode ?? 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  if (size < 8 ** 11) octal(h, 124, 12, size);
  else {
    h[124] = 0x80; // base-256, big-endian in the 11 bytes that follow
    let n = BigInt(size);
    for (let i = 135; i > 124; i--, n >>= 8n) h[i] = Number(n & 0xffn);
  }
  octal(h, 136, 12, 1_700_000_000);
  put(h, 156, 1, m.type ?? '0');
  put(h, 157, 100, m.link ?? '');
  put(h, 257, 6, 'ustar\0');
  put(h, 263, 2, '00');
  put(h, 265, 32, 'root');
  put(h, 297, 32, 'root');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  if (m.badChecksum) sum += 1;
  put(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** The members as a tar archive (not compressed). */
export function tarBytes(members: RawMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const body = typeof m.body === 'string' ? Buffer.from(m.body, 'utf8') : (m.body ?? Buffer.alloc(0));
    parts.push(header(m, m.size ?? body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** The members as a .tar.gz. */
export function tarGz(members: RawMember[]): Buffer {
  return gzipSync(tarBytes(members));
}

/** A pax extended header ('x') applying `records` to the member after it. */
export function pax(records: Record<string, string>): RawMember {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len++;
    body += `${len}${rest}`;
  }
  return { name: 'PaxHeaders/x', type: 'x', body };
}

/** A scratch directory for one test file, removed after it, and fresh subdirectories of it. */
export function scratch(prefix: string): (name: string) => string {
  const work = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(work, { recursive: true, force: true }));
  let counter = 0;
  return (name: string) => {
    const d = join(work, `${name}-${++counter}`);
    mkdirSync(d, { recursive: true });
    return d;
  };
}
