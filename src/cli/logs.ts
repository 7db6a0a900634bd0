/**
 * `glow logs APP [-f] [--instance N] [--since T] [--lines N] [--json]`: an app's lines on this node, read straight
 * from the journal (`journalctl GLOW_APP=APP [GLOW_INSTANCE=N]`), through the same parser and line joiner as the
 * log sinks, so what it prints is what the sinks receive. Text: `TIME app#instance message`, the message's bytes as
 * they are; `--json`: the sinks' JSON lines.
 */
import { GlowError } from '../base/errors.js';
import { NAME_PATTERN } from '../config/schema.js';
import { jsonLine, textLine } from '../logs/encode.js';
import { logsArgs } from '../logs/journal-args.js';
import { parseEntry } from '../logs/journal-entry.js';
import { JournalReader } from '../logs/journal-reader.js';
import { Reassembler } from '../logs/reassemble.js';
import type { LogRecord } from '../logs/record.js';
import { parseArgs } from './args.js';

const HELP = `Usage
  glow logs APP [-f] [--instance N] [--since TIME] [--lines N] [--json]

Shows the lines of APP's instances on this node, from the journal (journalctl GLOW_APP=APP). Lines that journald
split because they were too long are joined again.

Options
  -f, --follow       keep printing new lines (after the last 10, or everything since --since)
  --instance N       only instance N
  --since TIME       from TIME, in journalctl's forms: "2024-05-01 12:00", today, -1h, "10 min ago"
  -n, --lines N      only the last N lines
  --json             one JSON object per line, as the file and http sinks write them
  --directory DIR    read the journal files in DIR instead of the system journal`;

/** `--since -1h` as `--since=-1h`: a relative time starts with a dash, which would read as an option. */
export function joinSince(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a === '--since' && next !== undefined && /^-\d/.test(next)) {
      out.push(`--since=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export async function runLogs(argv: string[]): Promise<number> {
  const cli = parseArgs(joinSince(argv), HELP, {
    follow: { type: 'boolean', shortFlag: 'f', default: false },
    instance: { type: 'number' },
    since: { type: 'string' },
    lines: { type: 'number', shortFlag: 'n' },
    json: { type: 'boolean', default: false },
    directory: { type: 'string' },
  });
  const app = cli.input[0];
  if (app === undefined || cli.input.length > 1) {
    process.stderr.write(`${HELP}\n`);
    return 2;
  }
  if (!new RegExp(NAME_PATTERN).test(app)) throw new GlowError('GLOW_E_LOGS_USAGE', `\`${app}\` is not an app name (a lower-case DNS label such as \`billing\`)`);
  const f = cli.flags;
  if (f.instance !== undefined && !(Number.isInteger(f.instance) && f.instance >= 1)) throw new GlowError('GLOW_E_LOGS_USAGE', '--instance takes an instance number such as 2');
  if (f.lines !== undefined && !(Number.isInteger(f.lines) && f.lines >= 0)) throw new GlowError('GLOW_E_LOGS_USAGE', '--lines takes a number of lines such as 100');
  const args = logsArgs({
    app,
    follow: f.follow,
    ...(f.instance !== undefined ? { instance: f.instance } : {}),
    ...(f.since !== undefined ? { since: f.since } : {}),
    ...(f.lines !== undefined ? { lines: f.lines } : {}),
    ...(f.directory !== undefined ? { directory: f.directory } : {}),
  });
  const joiner = new Reassembler({ maxRecordBytes: 16 << 20, maxWaitMs: 2000, node: '' });
  const out = process.stdout;
  let reader: JournalReader | undefined = undefined;
  const print = (records: readonly LogRecord[]) => {
    for (const r of records) {
      if (!out.write(f.json ? jsonLine(r) : textLine(r))) {
        reader?.pause();
        out.once('drain', () => reader?.resume());
      }
    }
  };
  const code = await new Promise<number>((resolve) => {
    reader = new JournalReader({
      command: 'journalctl',
      args,
      maxLineBytes: 64 << 20,
      onLine: (line) => {
        const p = parseEntry(line);
        if (p.ok) print(joiner.push(p.entry, Date.now()));
      },
      onOversize: () => process.stderr.write('glow logs: an entry too large to show was skipped\n'),
      onExit: (exit, signal, stderr) => {
        print(joiner.flush(Number.POSITIVE_INFINITY));
        if (stderr.trim()) process.stderr.write(`glow logs: ${stderr.trim()}\n`);
        resolve(signal ? 0 : (exit ?? 1));
      },
    });
    reader.start();
    const timer = setInterval(() => print(joiner.flush(Date.now())), 500);
    timer.unref();
    const end = () => void reader?.stop();
    process.once('SIGINT', end);
    process.once('SIGTERM', end);
  });
  await new Promise<void>((r) => (out.writableNeedDrain ? out.once('drain', () => r()) : r()));
  return code;
}
