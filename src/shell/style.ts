/**
 * How Glow shows things to people, on the command line and in the developer box's terminal: errors with an excerpt
 * of the line and a caret under the column. Colour only on a terminal (and never with NO_COLOR).
 */
import type { ConfigError } from '../config/errors.js';

export interface Style {
  red(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
}

/** Colour on a terminal only, and not with NO_COLOR or a terminal that says it has none (TERM=dumb). */
export function colourFor(stream: { readonly isTTY?: boolean }): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

export function styleFor(stream: NodeJS.WriteStream): Style {
  const on = colourFor(stream);
  const wrap = (a: number, b: number) => (s: string) => (on ? `\x1b[${a}m${s}\x1b[${b}m` : s);
  return { red: wrap(31, 39), bold: wrap(1, 22), dim: wrap(2, 22), green: wrap(32, 39) };
}

/** `file:line:col CODE sentence`, then the line with a caret under the column. */
export function formatError(e: ConfigError, style: Style): string {
  const head = `${style.bold(`${e.file}:${e.line}:${e.col}`)} ${style.red(e.code)} ${e.message}`;
  if (e.source === undefined) return head;
  const num = String(e.line);
  const pad = ' '.repeat(num.length);
  const text = e.source.length > 160 ? `${e.source.slice(0, 157)}...` : e.source;
  const caret = e.col <= text.length + 1 ? `\n  ${pad} | ${' '.repeat(Math.max(0, e.col - 1))}${style.red('^')}` : '';
  return `${head}\n  ${style.dim(num)} | ${text}${caret}`;
}

