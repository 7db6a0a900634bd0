/**
 * The certificates of the node's TLS exposures: each (cert file, key file) pair loaded once into a SecureContext,
 * shared by every route that names it, and watched.
 *
 * Watching is a stat of both files every `pollMs` (device, inode, size, mtime, ctime; symbolic links followed, so
 * a certbot-style `live/` link moved to new files counts as a change). A change loads the pair again and swaps the
 * context: handshakes from then on get the new certificate, connections already open keep theirs, nothing is
 * restarted. A pair that cannot be loaded (missing, unreadable, not PEM, key not matching, e.g. half-way through
 * a rotation that replaces the two files one after the other) keeps serving the last good context, says why in
 * `/status` and the log (GLOW_E_PROXY_TLS) and is tried again on the next change. A pair that never loaded has no
 * context: handshakes for its hosts fail, every other exposure of the port serves.
 *
 * On the native data path each pair also has a context of the addon's (`native`, made from the same PEM by
 * `NativeTls`), which the native TLS listeners serve (src/proxy/tcp-frontend.ts); it is made, swapped and let go
 * with the pair's SecureContext.
 *
 * Defaults: TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305 (Mozilla's
 * "intermediate" profile), the client's preference among them.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { ProxyError } from './errors.js';
import { PROXY_EVENTS } from './log-events.js';

export const TLS_MIN_VERSION = 'TLSv1.2';
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
export const TLS_CURVES = 'X25519:prime256v1:secp384r1';

/** The addon's TLS contexts (src/proxy/native-relay.ts): made from PEM (throws with OpenSSL's reason), let go. */
export interface NativeTls {
  tlsContext(cert: Buffer, key: Buffer): number;
  tlsFree(id: number): void;
}

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

export class CertEntry {
  refs = 0;
  /** The context handshakes use; null until the pair loaded once. */
  context: SecureContext | null = null;
  /** The same certificate as a context of the addon (0: none; on the native data path only). */
  native = 0;
  /** Why the files as they are now cannot be used (the previous context, if any, still serves). */
  error: string | null = null;
  subject = '';
  /** DNS names of the certificate (subjectAltName), for /status. */
  names: readonly string[] = [];
  /** Expiry (ms since the epoch) of the certificate in `context`. */
  notAfterMs = 0;
  fingerprint = '';
  loadedAtMs = 0;
  private stamp = '';

  constructor(
    readonly files: TlsFiles,
    private readonly nativeTls: NativeTls | null = null,
  ) {}

  /** Loads the pair if its files changed since the last look; true when a new context was installed. */
  check(log: Logger): boolean {
    let stamp: string;
    try {
      stamp = `${statStamp(this.files.cert)}|${statStamp(this.files.key)}`;
    } catch (e) {
      const err = tlsError(e);
      const why = err.message;
      if (why !== this.error) {
        this.error = why;
        this.stamp = '';
        log.error({ event: PROXY_EVENTS.certificateFailed, code: err.code, cert: this.files.cert, key: this.files.key, err: why, serving: this.context ? 'the previous certificate' : 'nothing' }, 'certificate cannot be loaded');
      }
      return false;
    }
    if (stamp === this.stamp) return false;
    this.stamp = stamp;
    try {
      const loaded = loadPair(this.files);
      const native = this.nativeTls ? nativeContext(this.nativeTls, this.files, loaded.pem) : 0;
      const first = this.context === null;
      this.context = loaded.context;
      this.dropNative();
      this.native = native;
      this.subject = loaded.cert.subject.replace(/\n/g, ', ');
      this.names = altNames(loaded.cert);
      this.notAfterMs = Date.parse(loaded.cert.validTo);
      this.fingerprint = loaded.cert.fingerprint256;
      this.loadedAtMs = Date.now();
      this.error = null;
      log.info({ event: PROXY_EVENTS.certificateLoaded, cert: this.files.cert, subject: this.subject, notAfter: new Date(this.notAfterMs).toISOString(), fingerprint: this.fingerprint }, first ? 'certificate loaded' : 'certificate reloaded');
      return true;
    } catch (e) {
      const err = tlsError(e);
      this.error = err.message;
      log.error({ event: PROXY_EVENTS.certificateFailed, code: err.code, cert: this.files.cert, key: this.files.key, err: this.error, serving: this.context ? 'the previous certificate' : 'nothing' }, 'certificate cannot be loaded');
      return false;
    }
  }

  /** Lets the addon's context go (handshakes under way keep it). */
  dropNative(): void {
    if (this.native) this.nativeTls!.tlsFree(this.native);
    this.native = 0;
  }
}

/** Every pair in use, refcounted by the routes that name it, and the poll that watches them. */
export class CertStore {
  private readonly entries = new Map<string, CertEntry>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    private readonly pollMs = 1000,
    private readonly nativeTls: NativeTls | null = null,
  ) {}

  acquire(files: TlsFiles): CertEntry {
    const k = `${files.cert}\0${files.key}`;
    let e = this.entries.get(k);
    if (!e) {
      e = new CertEntry(files, this.nativeTls);
      e.check(this.log);
      this.entries.set(k, e);
      this.schedule();
    }
    e.refs += 1;
    return e;
  }

  release(e: CertEntry): void {
    e.refs -= 1;
    if (e.refs > 0) return;
    this.entries.delete(`${e.files.cert}\0${e.files.key}`);
    e.dropNative();
    if (this.entries.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  all(): IterableIterator<CertEntry> {
    return this.entries.values();
  }

  /** Looks at every pair now (the poll does the same). */
  checkAll(): void {
    for (const e of this.entries.values()) e.check(this.log);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.checkAll(), this.pollMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const e of this.entries.values()) e.dropNative();
    this.entries.clear();
  }
}

function statStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch (e) {
    throw new ProxyError('GLOW_E_PROXY_TLS', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

/** Any failure of loading a pair as the pair's error: the proxy never stops for a certificate. */
function tlsError(e: unknown): ProxyError {
  return e instanceof ProxyError ? e : new ProxyError('GLOW_E_PROXY_TLS', `the pair cannot be used: ${(e as Error).message ?? String(e)}`, { cause: e });
}

/** Reads a file of a pair; a failure is the pair's (GLOW_E_PROXY_TLS), with the errno kept. */
function readPairFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ProxyError('GLOW_E_PROXY_TLS', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

/** Reads, parses and pairs a certificate (chain) and its key; throws a ProxyError (GLOW_E_PROXY_TLS) with one plain sentence. */
export function loadPair(files: TlsFiles): { context: SecureContext; cert: X509Certificate; pem: { cert: Buffer; key: Buffer } } {
  const certPem = readPairFile(files.cert);
  const keyPem = readPairFile(files.key);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new ProxyError('GLOW_E_PROXY_TLS', `${files.cert} holds no PEM certificate (${(e as Error).message})`, { cause: e });
  }
  try {
    const context = createSecureContext({
      cert: certPem,
      key: keyPem,
      minVersion: TLS_MIN_VERSION,
      ciphers: TLS_CIPHERS,
      ecdhCurve: TLS_CURVES,
      honorCipherOrder: false,
    });
    return { context, cert, pem: { cert: certPem, key: keyPem } };
  } catch (e) {
    const m = (e as Error).message;
    const fail = (message: string) => new ProxyError('GLOW_E_PROXY_TLS', message, { cause: e });
    if (/key values mismatch/i.test(m)) throw fail(`the key ${files.key} does not belong to the certificate ${files.cert}`);
    if (/bad decrypt|passphrase|PEM_read_bio|DECODER|no start line|unsupported/i.test(m)) throw fail(`${files.key} holds no unencrypted PEM private key (${m})`);
    throw fail(`${files.cert} and ${files.key} cannot be used: ${m}`);
  }
}

/** The addon's context of a pair Node could load (a failure is the pair's, as Node's would be). */
function nativeContext(tls: NativeTls, files: TlsFiles, pem: { cert: Buffer; key: Buffer }): number {
  try {
    return tls.tlsContext(pem.cert, pem.key);
  } catch (e) {
    throw new ProxyError('GLOW_E_PROXY_TLS', `${files.cert} and ${files.key} cannot be used on the native data path: ${(e as Error).message}`, { cause: e });
  }
}

function altNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  return san
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
}
