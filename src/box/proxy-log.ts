/**
 * The developer box's view of its in-process proxy's log: lines of the terminal for warnings and errors, and for
 * the good news a developer waits for (a listener bound, an upstream up again). Lines are chosen by their stable
 * `event` field (src/proxy/log-events.ts), never by their message, which is for people and may change.
 */
import pino from 'pino';
import type { Logger } from 'pino';
import { PROXY_EVENTS } from '../proxy/log-events.js';
import type { Terminal } from './terminal.js';

/** The fields shown after the message, when the line has them. */
const FIELDS = ['frontend', 'service', 'upstream', 'reason', 'err', 'code', 'cert'] as const;
/** Said by the box itself, with its fix (a bind that fails: src/box/runtime.ts). */
const QUIET = new Set<string>([PROXY_EVENTS.listenerBindFailed]);
/** Info lines worth a line of the terminal; below warnings, nothing else is. */
const SHOWN_INFO = new Set<string>([PROXY_EVENTS.listenerBound, PROXY_EVENTS.upstreamUp, PROXY_EVENTS.upstreamReinstated]);
const WARN = 40;
const ERROR = 50;

/** A pino logger for the proxy whose lines go to the terminal, filtered. */
export function proxyLogger(term: Terminal): Logger {
  const view = new ProxyLogView(term);
  return pino({ level: 'info', base: null, timestamp: false }, { write: (line: string) => view.line(line) });
}

export class ProxyLogView {
  readonly #term: Pick<Terminal, 'error' | 'note'>;
  /** An upstream that stays down is ejected again and again: said once, until it is up again. */
  readonly #ejected = new Set<string>();

  constructor(term: Pick<Terminal, 'error' | 'note'>) {
    this.#term = term;
  }

  /** One JSON line of the proxy's log. */
  line(line: string): void {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const level = Number(rec.level);
    const event = String(rec.event ?? '');
    if (QUIET.has(event) || (level < WARN && !SHOWN_INFO.has(event))) return;
    const upstream = `${String(rec.service)} ${String(rec.upstream)}`;
    // Back: by its active checks, or an ejection ended by them (the next ejection is said again).
    if (event === PROXY_EVENTS.upstreamUp || event === PROXY_EVENTS.upstreamReinstated) this.#ejected.delete(upstream);
    if (event === PROXY_EVENTS.upstreamEjected) {
      if (this.#ejected.has(upstream)) return;
      this.#ejected.add(upstream);
    }
    const extra = FIELDS.filter((k) => rec[k] !== undefined).map((k) => `${k} ${typeof rec[k] === 'string' ? rec[k] : JSON.stringify(rec[k])}`);
    const text = `proxy: ${String(rec.msg ?? '')}${extra.length ? ` (${extra.join(', ')})` : ''}`;
    if (level >= ERROR) this.#term.error(text);
    else this.#term.note(text);
  }
}
