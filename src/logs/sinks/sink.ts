/**
 * What every sink transport does: deliver one batch, in order, and resolve only once the sink acknowledged it —
 * the forwarder stores the batch's cursor then, and not before. What "acknowledged" means differs by sink:
 *
 * | sink | acknowledged when |
 * |---|---|
 * | file | the lines are written and fdatasync()ed |
 * | http, loki | the server answered 2xx |
 * | syslog tcp/tls | the whole batch was written into the connection (syslog has no acknowledgement) |
 * | syslog udp | every datagram was handed to the kernel (UDP can lose datagrams; a refused port is retried) |
 *
 * A failure rejects with a SendError whose verdict says retry, reject (skip) or split.
 */
import type { LogRecord } from '../record.js';

export interface SinkTransport {
  /** Resolves with the bytes sent once the sink acknowledged the records. */
  send(records: readonly LogRecord[]): Promise<number>;
  close(): Promise<void>;
}
