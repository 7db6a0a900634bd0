/**
 * The process's standard output and error, which can go away under a running command: `glow check | head` closes
 * the pipe (EPIPE), and closing the terminal that runs `glow up` hangs it up (SIGHUP, then EIO on every write).
 * A lost stream is never a crash: a short command ends quietly, and a long-running one (`glow up`, `glow dev`)
 * is told once, so that it stops like after Ctrl-C, writing nothing more.
 *
 * Standard output is one per process, so this module keeps the one piece of process-wide state it needs.
 */

const LOST = new Set(['EPIPE', 'EIO', 'ECONNRESET', 'ENOTCONN', 'EBADF']);

let lost: string | undefined;
let onLost: ((code: string) => void) | undefined;

/** Installed once by the CLI's entry point, before any command runs. */
export function guardStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (!LOST.has(e.code ?? '')) throw e;
      if (lost) return;
      const code = e.code!;
      lost = code;
      if (onLost) onLost(code);
      else process.exit(process.exitCode ?? 0);
    });
  }
}

/** A long-running command takes over what happens when the output goes away. */
export function whenOutputLost(f: (code: string) => void): void {
  onLost = f;
  if (lost) f(lost);
}

/** Standard output as a terminal sink: writes nothing once it is lost. */
export const stdoutSink = { write: (s: string): unknown => (lost ? false : process.stdout.write(s)) };
