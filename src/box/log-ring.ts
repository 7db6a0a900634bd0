/**
 * The dev box's recent lines, for `glow logs APP` under `glow up` (a laptop has no journal of glow's units): every
 * line of every instance, as the terminal shows it, kept in a bounded ring per instance — at most LINES lines and
 * BYTES bytes each, the oldest dropped first — and passed on to whoever follows (`glow logs -f`). Served on the
 * control socket (src/cli/up.ts) as JSON lines; src/cli/logs.ts prints them as it prints the journal's.
 */

/** One line of an instance. */
export interface BoxLine {
  /** Microseconds since the epoch, when the box read the line. */
  readonly timestampUs: number;
  readonly node: string;
  readonly app: string;
  readonly instance: number;
  readonly version: string;
  readonly pid: number;
  readonly stream: 'stdout' | 'stderr';
  readonly message: string;
}

export const RING_LINES = 2000;
export const RING_BYTES = 1 << 20;

interface Ring {
  lines: BoxLine[];
  /** Index of the oldest line kept. */
  head: number;
  bytes: number;
}

export class LogRing {
  readonly #rings = new Map<string, Ring>();
  readonly #followers = new Set<(l: BoxLine) => void>();
  readonly #maxLines: number;
  readonly #maxBytes: number;

  constructor(maxLines = RING_LINES, maxBytes = RING_BYTES) {
    this.#maxLines = maxLines;
    this.#maxBytes = maxBytes;
  }

  push(l: BoxLine): void {
    const key = `${l.app}#${l.instance}`;
    let r = this.#rings.get(key);
    if (!r) this.#rings.set(key, (r = { lines: [], head: 0, bytes: 0 }));
    r.lines.push(l);
    r.bytes += l.message.length;
    while (r.lines.length - r.head > this.#maxLines || (r.bytes > this.#maxBytes && r.lines.length - r.head > 1)) {
      r.bytes -= r.lines[r.head]!.message.length;
      r.head += 1;
    }
    if (r.head > 1024 && r.head * 2 > r.lines.length) {
      r.lines = r.lines.slice(r.head);
      r.head = 0;
    }
    for (const f of this.#followers) f(l);
  }

  /** The lines kept of `app` (one instance, or all), oldest first; the last `last` only when given. */
  recent(app: string, instance?: number, last?: number): BoxLine[] {
    const out: BoxLine[] = [];
    for (const r of this.#rings.values()) {
      for (let i = r.head; i < r.lines.length; i++) {
        const l = r.lines[i]!;
        if (l.app === app && (instance === undefined || l.instance === instance)) out.push(l);
      }
    }
    out.sort((a, b) => a.timestampUs - b.timestampUs);
    return last === undefined ? out : last === 0 ? [] : out.slice(-last);
  }

  /** Every new line, until the returned function is called. */
  follow(f: (l: BoxLine) => void): () => void {
    this.#followers.add(f);
    return () => this.#followers.delete(f);
  }
}
