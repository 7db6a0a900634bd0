/**
 * Flag parsing for one command, with meow: strict (an unknown flag is a usage error) and a help text per command.
 */
import meow from 'meow';
import type { AnyFlags, Result } from 'meow';

export function parseArgs<F extends AnyFlags>(argv: string[], help: string, flags: F): Result<F> {
  return meow(help, {
    importMeta: import.meta,
    argv,
    flags,
    allowUnknownFlags: false,
    autoVersion: false,
    description: false,
  });
}
