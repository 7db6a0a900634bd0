/**
 * The syslog sink: RFC 5424 messages over UDP (one datagram each, cut at 65,000 bytes), TCP or TLS (RFC 6587
 * octet-counting framing, RFC 5425 for TLS). One connection, opened when needed and again after it broke; a batch
 * is written as one buffer and acknowledged when the kernel took all of it (syslog has no application-level
 * acknowledgement: what a receiver had not read when it died is lost with it — use http or loki where that
 * matters). TLS verifies the server's certificate against `ca` (else the system's CAs) and its name or IP
 * address, and presents `cert`/`key` when given.
 */
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { connect as netConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { SecureContext } from 'node:tls';
import type { SinkEndpoint } from '../../config/sinks.js';
import { octetFrame, rfc5424 } from '../encode.js';
import { SendError } from '../errors.js';
import type { LogRecord } from '../record.js';
import type { SinkTransport } from './sink.js';

export const MAX_DATAGRAM = 65_000;

export interface SyslogOptions {
  readonly secureContext?: SecureContext;
  readonly connectTimeoutMs?: number;
  readonly writeTimeoutMs?: number;
}

export class SyslogSink implements SinkTransport {
  readonly #ep: SinkEndpoint;
  readonly #opts: SyslogOptions;
  #conn: Socket | undefined;
  #udp: UdpSocket | undefined;

  constructor(endpoint: SinkEndpoint, opts: SyslogOptions = {}) {
    this.#ep = endpoint;
    this.#opts = opts;
  }

  send(records: readonly LogRecord[]): Promise<number> {
    return this.#ep.scheme === 'udp' ? this.#sendUdp(records) : this.#sendStream(records);
  }

  async #sendStream(records: readonly LogRecord[]): Promise<number> {
    const sock = this.#conn && !this.#conn.destroyed && this.#conn.writable ? this.#conn : await this.#connect();
    const buf = Buffer.concat(records.map((r) => octetFrame(rfc5424(r))));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => sock.destroy(new Error(`no progress writing for ${this.#writeTimeout / 1000}s`)), this.#writeTimeout);
      const onClose = () => fail(new Error('the connection closed'));
      const fail = (e: Error) => {
        clearTimeout(timer);
        sock.off('close', onClose);
        reject(new SendError('retry', `syslog ${this.#where}: ${e.message}`, { cause: e }));
      };
      sock.once('close', onClose);
      sock.write(buf, (err) => {
        if (err) return fail(err);
        clearTimeout(timer);
        sock.off('close', onClose);
        resolve();
      });
    });
    return buf.length;
  }

  get #writeTimeout(): number {
    return this.#opts.writeTimeoutMs ?? 30_000;
  }

  get #where(): string {
    return `${this.#ep.scheme}://${this.#ep.host}:${this.#ep.port}`;
  }

  async #connect(): Promise<Socket> {
    this.#conn?.destroy();
    const { host, port } = this.#ep;
    const tls = this.#ep.scheme === 'tls';
    const sock: Socket = tls
      ? tlsConnect({ host, port, ...(this.#opts.secureContext ? { secureContext: this.#opts.secureContext } : {}), ...(isIP(host) ? {} : { servername: host }) })
      : netConnect({ host, port });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => sock.destroy(new Error(`no connection within ${(this.#opts.connectTimeoutMs ?? 10_000) / 1000}s`)), this.#opts.connectTimeoutMs ?? 10_000);
        sock.once(tls ? 'secureConnect' : 'connect', () => {
          clearTimeout(timer);
          resolve();
        });
        sock.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        sock.once('close', () => {
          clearTimeout(timer);
          reject(new Error('the connection closed while opening'));
        });
      });
    } catch (e) {
      sock.destroy();
      const err = e as NodeJS.ErrnoException;
      throw new SendError('retry', `syslog ${this.#where}: ${err.code ? `${err.code} ` : ''}${err.message}`, { cause: e });
    }
    sock.removeAllListeners('error');
    sock.on('error', () => undefined); // reported by the write that fails
    sock.on('data', () => undefined); // a receiver says nothing in syslog; whatever it says is ignored
    sock.on('end', () => sock.destroy());
    sock.setKeepAlive(true, 30_000);
    sock.setNoDelay(true);
    this.#conn = sock;
    return sock;
  }

  async #sendUdp(records: readonly LogRecord[]): Promise<number> {
    const sock = this.#udp ?? (await this.#openUdp());
    let bytes = 0;
    let i = 0;
    for (const r of records) {
      let msg = rfc5424(r);
      if (msg.length > MAX_DATAGRAM) msg = msg.subarray(0, MAX_DATAGRAM);
      bytes += msg.length;
      try {
        await new Promise<void>((resolve, reject) => sock.send(msg, (e) => (e ? reject(e) : resolve())));
      } catch (e) {
        // A refused port (ICMP unreachable, reported on a connected socket) or a full buffer: send it again later.
        this.#udp = undefined;
        sock.close();
        throw new SendError('retry', `syslog ${this.#where}: ${(e as Error).message}`, { cause: e });
      }
      if (++i % 64 === 0) await new Promise((r) => setImmediate(r)); // let a receiver on this host keep up
    }
    return bytes;
  }

  async #openUdp(): Promise<UdpSocket> {
    try {
      const { address, family } = await lookup(this.#ep.host);
      const sock = createSocket(family === 6 ? 'udp6' : 'udp4');
      sock.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.connect(this.#ep.port, address, () => {
          sock.off('error', reject);
          resolve();
        });
      });
      this.#udp = sock;
      return sock;
    } catch (e) {
      throw new SendError('retry', `syslog ${this.#where}: ${(e as Error).message}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    this.#conn?.destroy();
    this.#conn = undefined;
    this.#udp?.close();
    this.#udp = undefined;
  }
}
