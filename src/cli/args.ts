/**
 * Flag parsing for one command, with meow, and the conventions every command keeps:
 *
 * - an unknown flag is a usage error that says `glow COMMAND: unknown flag --x`, the nearest known flag, and where
 *   the help is;
 * - a string flag needs a value (`--node` alone is an error, not the node named ``);
 * - a command takes the arguments its usage line names (`glow check [DIR]`: at most one), no more;
 * - `--help` prints the command's help.
 *
 * Usage errors are GlowErrors (GLOW_E_USAGE), so that the entry point prints them like any other error, as JSON
 * under `--json` (src/cli/glow.ts).
 */
import meow from 'meow';
import type { AnyFlags, Result } from 'meow';
import { GlowError } from '../base/errors.js';
import { parseDuration } from '../config/notation.js';
import { closest } from '../config/suggest.js';

export function parseArgs<F extends AnyFlags>(argv: string[], help: string, flags: F): Result<F> {
  const usage = usageOf(help);
  checkFlags(argv, flags, usage.command);
  const cli = meow(help, {
    importMeta: import.meta,
    argv,
    flags,
    allowUnknownFlags: true, // checked above, with a better message than meow's
    autoVersion: false,
    description: false,
  });
  for (const [name, spec] of Object.entries(flags)) {
    if (spec.type !== 'string') continue;
    const v = (cli.flags as Record<string, unknown>)[name];
    const values = Array.isArray(v) ? v : [v];
    if (values.some((x) => x === '')) throw usageError(usage.command, `--${kebab(name)} needs a value`);
  }
  if (cli.input.length > usage.maxArgs) {
    const extra = cli.input.slice(usage.maxArgs).map((a) => JSON.stringify(a)).join(' ');
    const takes = usage.maxArgs === 0 ? 'takes no arguments' : `takes at most ${usage.maxArgs} argument${usage.maxArgs === 1 ? '' : 's'} (${usage.args.join(' ')})`;
    throw usageError(usage.command, `${takes}; left over: ${extra}`);
  }
  return cli;
}

export function usageError(command: string, message: string): GlowError {
  return new GlowError('GLOW_E_USAGE', `${command}: ${message} (see \`${command} --help\`)`);
}

/** The command and its positional arguments, read from the help's first usage line (`glow check [DIR] [--json]`). */
export function usageOf(help: string): { command: string; args: string[]; maxArgs: number } {
  const lines = help.split('\n');
  const line = (lines[lines.findIndex((l) => l.trim() === 'Usage') + 1] ?? '').trim();
  const tokens = line.split(/\s+/).filter(Boolean);
  const words: string[] = [];
  while (tokens.length && /^[a-z]+$/.test(tokens[0]!)) words.push(tokens.shift()!);
  const args: string[] = [];
  for (const raw of tokens) {
    if (raw.startsWith('(')) break; // "(also: glow agent …)"
    const t = raw.replace(/^\[+/, '').replace(/\]+$/, '');
    if (raw.startsWith('[-') || raw.startsWith('-') || raw === '[options]') continue;
    // A value of the flag before it (`--node NAME`) is not an argument.
    if (!/^[A-Z][A-Z_|]*$/.test(t)) continue;
    const before = tokens[tokens.indexOf(raw) - 1] ?? '';
    if (/^\[?--?[a-z]/.test(before) && !before.endsWith(']')) continue;
    args.push(t);
  }
  return { command: words.join(' ') || 'glow', args, maxArgs: args.length };
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function checkFlags(argv: readonly string[], flags: AnyFlags, command: string): void {
  const known = new Set(['help', 'h']);
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(flags)) {
    const names = [kebab(name), ...(spec.shortFlag ? [spec.shortFlag] : []), ...(spec.aliases ?? [])];
    for (const n of names) {
      known.add(n);
      if (spec.type !== 'boolean') takesValue.add(n);
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') break;
    if (!token.startsWith('-') || token === '-') continue;
    if (!token.includes('=') && takesValue.has(token.replace(/^--?/, ''))) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw usageError(command, `${token} needs a value`);
      i++; // its value, whatever it looks like
      continue;
    }
    const name = token.replace(/^--?/, '').split('=')[0]!;
    const bare = name.startsWith('no-') && known.has(name.slice(3)) ? name.slice(3) : name;
    if (known.has(bare)) continue;
    // -abc short flags are not used by Glow's commands: every one is a word.
    const near = closest(bare, [...known].filter((k) => k.length > 1));
    throw usageError(command, `unknown flag ${token.split('=')[0]}${near ? `; did you mean --${near}?` : ''}`);
  }
}

/** A duration flag (`--tick 30s`), at least `minMs`: a usage error, not a crash, when it is not one. */
export function durationFlag(command: string, flag: string, value: string, minMs = 1): number {
  if (!/^[0-9]+(?:\.[0-9]+)?(ms|s|m|h)$/.test(value)) throw usageError(command, `--${flag} ${value} is not a duration such as 500ms, 30s or 5m`);
  const ms = parseDuration(value);
  if (ms < minMs) throw usageError(command, `--${flag} ${value} is too short (at least ${minMs} ms)`);
  return ms;
}
