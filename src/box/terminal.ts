/**
 * The dev box's terminal: every line of every instance, prefixed with its app and instance (`web#1 │ …`), in a
 * colour of its app on a terminal and plain otherwise (or with NO_COLOR); Glow's own messages under `glow`, in
 * bold, errors in red. A line is written whole: output that arrives in pieces is put together at its newline.
 */

export interface Sink {
  write(s: string): unknown;
}

/** Foreground colours that read on dark and light terminals (no black, white or red: red is for errors). */
const PALETTE = [36, 33, 35, 32, 34, 96, 93, 95, 92, 94] as const;

/** The colour of an app: derived from its name, so it stays the same across runs and edits. */
export function appColour(app: string): number {
  let h = 0;
  for (let i = 0; i < app.length; i++) h = (h * 31 + app.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

export const GLOW_KEY = 'glow';

export class Terminal {
  readonly #out: Sink;
  readonly color: boolean;
  #width = GLOW_KEY.length;

  constructor(out: Sink, color: boolean) {
    this.#out = out;
    this.color = color;
  }

  /** Prefixes are padded to the longest key the box runs. */
  setKeys(keys: Iterable<string>): void {
    let w = GLOW_KEY.length;
    for (const k of keys) w = Math.max(w, k.length);
    this.#width = Math.min(w, 32);
  }

  /** One line of an instance's output. */
  line(key: string, app: string, text: string): void {
    this.#out.write(`${this.#prefix(key, this.color ? `\x1b[${appColour(app)}m` : '')}${text}\n`);
  }

  info(text: string): void {
    this.#glow(text, '');
  }

  /** Less important: what an operator may skip. */
  note(text: string): void {
    this.#glow(text, this.color ? '\x1b[2m' : '');
  }

  error(text: string): void {
    this.#glow(text, this.color ? '\x1b[31m' : '');
  }

  #glow(text: string, style: string): void {
    const bold = this.color ? '\x1b[1m' : '';
    const lines = text.split('\n').map((l, i) => `${this.#prefix(i === 0 ? GLOW_KEY : '', bold)}${style ? `${style}${l}\x1b[0m` : l}`);
    this.#out.write(`${lines.join('\n')}\n`);
  }

  #prefix(key: string, style: string): string {
    const k = key.padEnd(this.#width);
    return style ? `${style}${k} │\x1b[0m ` : `${k} │ `;
  }

  /** Collects an output stream's chunks into lines of `key`. */
  lines(key: string, app: string): LineSplitter {
    return new LineSplitter((l) => this.line(key, app, l));
  }
}

export class LineSplitter {
  #rest = '';
  readonly #emit: (line: string) => void;
  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  push(chunk: string): void {
    const text = this.#rest + chunk;
    const parts = text.split('\n');
    this.#rest = parts.pop()!;
    for (const p of parts) this.#emit(p.endsWith('\r') ? p.slice(0, -1) : p);
    // A line without its newline for very long: emit it rather than grow without end.
    if (this.#rest.length > 64 * 1024) {
      this.#emit(this.#rest);
      this.#rest = '';
    }
  }

  /** The stream ended: a last line without a newline is a line too. */
  end(): void {
    if (this.#rest) this.#emit(this.#rest);
    this.#rest = '';
  }
}
