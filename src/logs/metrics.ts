/**
 * Log forwarding metrics, on glowd's registry (base units, `_total` counters), labelled by sink name and type:
 *
 *   glow_log_records_forwarded_total        records a sink acknowledged
 *   glow_log_forwarded_bytes_total          bytes of those records as sent (encoded)
 *   glow_log_send_failures_total{reason}    failed deliveries: `error` (retried) or `rejected` (skipped)
 *   glow_log_retries_total                  deliveries tried again
 *   glow_log_records_rejected_total         records in batches a sink rejected for good
 *   glow_log_entries_skipped_total{reason}  journal lines that could not be read (`unparsable`, `too_large`)
 *   glow_log_lag_seconds                    age of the oldest record read but not yet acknowledged; 0 when caught up
 *   glow_log_last_forwarded_timestamp_seconds  journal time of the newest record acknowledged
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

export interface LagSource {
  readonly name: string;
  readonly type: string;
  lagSeconds(): number;
  readonly newestForwardedUs: number | undefined;
}

export class LogMetrics {
  readonly forwarded: Counter;
  readonly bytes: Counter;
  readonly failures: Counter;
  readonly retries: Counter;
  readonly rejected: Counter;
  readonly skipped: Counter;

  constructor(registry: Registry, sources: () => Iterable<LagSource>) {
    const registers = [registry];
    const labelNames = ['sink', 'type'];
    this.forwarded = new Counter({ name: 'glow_log_records_forwarded_total', help: 'Log records acknowledged by each sink.', labelNames, registers });
    this.bytes = new Counter({ name: 'glow_log_forwarded_bytes_total', help: 'Bytes of log records acknowledged by each sink, as sent.', labelNames, registers });
    this.failures = new Counter({
      name: 'glow_log_send_failures_total',
      help: 'Failed deliveries of a batch to a sink: reason error (retried) or rejected (the sink refused it for good; skipped).',
      labelNames: [...labelNames, 'reason'],
      registers,
    });
    this.retries = new Counter({ name: 'glow_log_retries_total', help: 'Deliveries of a batch tried again after a failure.', labelNames, registers });
    this.rejected = new Counter({ name: 'glow_log_records_rejected_total', help: 'Log records in batches a sink rejected for good (skipped).', labelNames, registers });
    this.skipped = new Counter({
      name: 'glow_log_entries_skipped_total',
      help: 'Journal lines that could not be read: reason unparsable or too_large.',
      labelNames: [...labelNames, 'reason'],
      registers,
    });
    new Gauge({
      name: 'glow_log_lag_seconds',
      help: 'Age of the oldest log record read from the journal but not yet acknowledged by the sink (0 when caught up).',
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const s of sources()) this.set({ sink: s.name, type: s.type }, s.lagSeconds());
      },
    });
    new Gauge({
      name: 'glow_log_last_forwarded_timestamp_seconds',
      help: 'Journal timestamp of the newest log record acknowledged by the sink, in seconds since the epoch.',
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const s of sources()) if (s.newestForwardedUs !== undefined) this.set({ sink: s.name, type: s.type }, s.newestForwardedUs / 1e6);
      },
    });
  }
}
