/**
 * The http and loki sinks: one POST per batch over a kept-alive connection, one request at a time (so batches
 * arrive in order). http sends JSON lines (`application/x-ndjson`); loki sends Loki's push API JSON. A 2xx
 * acknowledges the batch; a 413 splits it in halves; 408, 429 and 5xx, timeouts and connection errors are retried
 * (after Retry-After when the server gives one); any other 4xx rejects the batch for good — it is reported and
 * skipped. A `user:password@` in the URL is sent as Basic authorization and never logged.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { SecureContext } from 'node:tls';
import type { SinkEndpoint } from '../../config/sinks.js';
import { classifyStatus, retryAfterMs } from '../backoff.js';
import { jsonLine, lokiPush } from '../encode.js';
import { SendError } from '../errors.js';
import type { LogRecord } from '../record.js';
import type { SinkTransport } from './sink.js';

export interface HttpOptions {
  readonly secureContext?: SecureContext;
  readonly timeoutMs?: number;
  /** Longest Retry-After honoured. */
  readonly maxRetryAfterMs?: number;
}

export class HttpSink implements SinkTransport {
  readonly #ep: SinkEndpoint;
  readonly #format: 'json-lines' | 'loki';
  readonly #opts: HttpOptions;
  readonly #agent: HttpAgent;

  constructor(endpoint: SinkEndpoint, format: 'json-lines' | 'loki', opts: HttpOptions = {}) {
    this.#ep = endpoint;
    this.#format = format;
    this.#opts = opts;
    this.#agent =
      endpoint.scheme === 'https'
        ? new HttpsAgent({ keepAlive: true, maxSockets: 1, ...(opts.secureContext ? { secureContext: opts.secureContext } : {}) })
        : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  }

  get #where(): string {
    return `${this.#ep.scheme}://${this.#ep.host}:${this.#ep.port}${this.#ep.path.replace(/\?.*/, '')}`;
  }

  async send(records: readonly LogRecord[]): Promise<number> {
    const body = Buffer.from(this.#format === 'loki' ? lokiPush(records) : records.map(jsonLine).join(''), 'utf8');
    const type = this.#format === 'loki' ? 'application/json' : 'application/x-ndjson';
    let res: { status: number; body: string; retryAfter: string | undefined };
    try {
      res = await this.#post(body, type);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SendError('retry', `POST ${this.#where}: ${err.code ? `${err.code} ` : ''}${err.message}`, { cause: e });
    }
    const verdict = classifyStatus(res.status);
    if (verdict === 'ok') return body.length;
    const why = `POST ${this.#where} answered ${res.status}${res.body ? `: ${res.body.trim().slice(0, 300)}` : ''}`;
    const after = retryAfterMs(res.retryAfter, Date.now(), this.#opts.maxRetryAfterMs ?? 60_000);
    throw new SendError(verdict, why, after !== undefined ? { retryAfterMs: after } : {});
  }

  #post(body: Buffer, type: string): Promise<{ status: number; body: string; retryAfter: string | undefined }> {
    const request = this.#ep.scheme === 'https' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.#ep.host,
          port: this.#ep.port,
          path: this.#ep.path,
          method: 'POST',
          agent: this.#agent,
          timeout: this.#opts.timeoutMs ?? 30_000,
          ...(this.#ep.auth !== undefined ? { auth: this.#ep.auth } : {}),
          ...(this.#ep.scheme === 'https' && this.#opts.secureContext ? { secureContext: this.#opts.secureContext } : {}),
          headers: { 'content-type': type, 'content-length': body.length },
        },
        (res: IncomingMessage) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (text.length < 1024) text += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, retryAfter: res.headers['retry-after'] }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${(this.#opts.timeoutMs ?? 30_000) / 1000}s`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }
}
