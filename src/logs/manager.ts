/**
 * glowd's log forwarding: one Forwarder per sink of the applied snapshot, keyed by the sink's name. apply() is
 * level-triggered — called on every pass with the snapshot's sinks — and touches only what changed: a sink whose
 * settings (or TLS files) changed is stopped, then started again from its cursor; a new sink starts; a removed sink
 * stops (its cursor file stays, so it resumes where it was if it comes back). A repository with errors is never
 * applied, so the last good sinks keep running. One sink that cannot start never stops the others.
 */
import { createHash } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Sink } from '../config/model.js';
import { cursorPath } from './cursor-store.js';
import { Forwarder } from './forwarder.js';
import type { ForwarderOptions, SinkStatus } from './forwarder.js';
import { LogMetrics } from './metrics.js';
import { openTransport } from './sinks/index.js';

/**
 * What every sink's forwarder shares (given `proxy`, the proxy's lines — the access log of exposures with
 * `access_log: true`, its warnings — are forwarded too), and where cursors and metrics go.
 */
export interface LogForwardersOptions extends Pick<ForwarderOptions, 'node' | 'log' | 'journalctl' | 'journalDirectory' | 'proxy' | 'limits'> {
  /** Cursors go to `<stateDir>/logs/<sink>.cursor`. */
  readonly stateDir: string;
  readonly registry: Registry;
}

interface Running {
  readonly key: string;
  readonly forwarder: Forwarder;
}

export class LogForwarders {
  readonly #o: LogForwardersOptions;
  readonly #metrics: LogMetrics;
  readonly #running = new Map<string, Running>();
  /** Per sink name, the stop of its previous forwarder, which its next one waits for (one cursor writer). */
  readonly #stopping = new Map<string, Promise<void>>();
  #stopped = false;

  constructor(opts: LogForwardersOptions) {
    this.#o = opts;
    this.#metrics = new LogMetrics(opts.registry, () => [...this.#running.values()].map((r) => r.forwarder));
  }

  apply(sinks: readonly Sink[], files: ReadonlyMap<string, Uint8Array>): void {
    if (this.#stopped) return;
    const wanted = new Map(sinks.map((s) => [s.name, s]));
    for (const [name, r] of this.#running) {
      const sink = wanted.get(name);
      if (!sink || keyOf(sink, files) !== r.key) {
        this.#o.log.info({ sink: name }, sink ? 'log sink changed: restarting it from its cursor' : 'log sink removed: stopping it');
        this.#stop(name);
      }
    }
    for (const sink of sinks) {
      if (this.#running.has(sink.name)) continue;
      const forwarder = new Forwarder({
        sink,
        node: this.#o.node,
        cursorPath: cursorPath(this.#o.stateDir, sink.name),
        openTransport: () => openTransport(sink, files),
        metrics: this.#metrics,
        log: this.#o.log,
        ...(this.#o.journalctl !== undefined ? { journalctl: this.#o.journalctl } : {}),
        ...(this.#o.journalDirectory !== undefined ? { journalDirectory: this.#o.journalDirectory } : {}),
        ...(this.#o.proxy ? { proxy: this.#o.proxy } : {}),
        ...(this.#o.limits ? { limits: this.#o.limits } : {}),
      });
      this.#running.set(sink.name, { key: keyOf(sink, files), forwarder });
      const previous = this.#stopping.get(sink.name) ?? Promise.resolve();
      void previous.then(() => {
        if (this.#running.get(sink.name)?.forwarder === forwarder) forwarder.start();
      });
    }
  }

  #stop(name: string): void {
    const r = this.#running.get(name);
    if (!r) return;
    this.#running.delete(name);
    const previous = this.#stopping.get(name) ?? Promise.resolve();
    const done = previous.then(() => r.forwarder.stop());
    this.#stopping.set(name, done);
    void done.finally(() => {
      if (this.#stopping.get(name) === done) this.#stopping.delete(name);
    });
  }

  status(): SinkStatus[] {
    return [...this.#running.values()].map((r) => r.forwarder.status()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Stops every sink, each letting its batch in flight finish (bounded). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const name of [...this.#running.keys()]) this.#stop(name);
    await Promise.all([...this.#stopping.values()]);
  }
}

/** What makes a sink the same sink: its settings and the bytes of its repository TLS files. */
function keyOf(sink: Sink, files: ReadonlyMap<string, Uint8Array>): string {
  const h = createHash('sha256').update(JSON.stringify(sink));
  for (const ref of [sink.tls?.ca, sink.tls?.cert, sink.tls?.key]) {
    if (ref && 'repo' in ref) h.update(files.get(ref.repo) ?? new Uint8Array());
  }
  return h.digest('hex');
}
