/**
 * `glow logs APP [-f] [--instance N] [--since T] [--lines N] [--json]`: an app's lines on this node, read straight
 * from the journal (`journalctl GLOW_APP=APP [GLOW_INSTANCE=N]`), through the same parser and line joiner as the
 * log sinks, so what it prints is what the sinks receive. Text: `TIME app#instance message`, the message's bytes as
 * they are; `--json`: the sinks' JSON lines.
 *
 * Under `glow up` (no glowd here, and the box's control socket answers) there is no journal of glow's units: the
 * lines are the box's recent ones (src/box/log-ring.ts), printed the same way, and an app the box does not run is
 * an error with a suggestion (docs/devbox.md).
 */
import { GlowError } from '../base/errors.js';
import { NAME_PATTERN } from '../config/schema.js';
import { jsonLine, textLine } from '../logs/encode.js';
import { logsArgs } from '../logs/journal-args.js';
import { parseEntry } from '../logs/journal-entry.js';
import { JournalReader } from '../logs/journal-reader.js';
import { Reassembler } from '../logs/reassemble.js';
import type { LogRecord } from '../logs/record.js';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { homedir } from 'node:os';
import { AGENT_DEFAULTS } from '../base/paths.js';
import { isGlowCode } from '../base/codes.js';
import { RING_LINES } from '../box/log-ring.js';
import type { BoxLine } from '../box/log-ring.js';
import { devboxPaths } from '../box/paths.js';
import { getUnix } from '../shell/control.js';
import { parseArgs } from './args.js';

const HELP = `Usage
  glow logs APP [-f] [--instance N] [--since TIME] [--lines N] [--json]

Shows the lines of APP's instances on this node, from the journal (journalctl GLOW_APP=APP). Lines that journald
split because they were too long are joined again. Where glowd does not run and \`glow up\` does (its control
socket answers), the lines are the box's: the last ${RING_LINES} lines of each instance, kept in the box.

Options
  -f, --follow       keep printing new lines (after the last 10, or everything since --since)
  --instance N       only instance N
  --since TIME       from TIME, in journalctl's forms: "2024-05-01 12:00", today, -1h, "10 min ago"
  -n, --lines N      only the last N lines
  --json             one JSON object per line, as the file and http sinks write them
  --directory DIR    read the journal files in DIR instead of the system journal
  --socket PATH      read the lines of the glow up whose control socket is PATH (default: $XDG_RUNTIME_DIR/glow/up.sock
                     when there is no glowd here)`;

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
    socket: { type: 'string' },
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
  const box = f.directory === undefined ? await boxSocket(f.socket) : undefined;
  if (box) {
    if (f.since !== undefined) throw new GlowError('GLOW_E_LOGS_USAGE', `--since reads the journal; under glow up the box keeps the last ${RING_LINES} lines of each instance: use --lines N`);
    return boxLogs(box, { app, follow: f.follow, json: f.json, ...(f.instance !== undefined ? { instance: f.instance } : {}), ...(f.lines !== undefined ? { lines: f.lines } : {}) });
  }
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
  let printed = 0;
  const print = (records: readonly LogRecord[]) => {
    for (const r of records) {
      printed += 1;
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
  if (code === 0 && printed === 0 && !f.follow && f.directory === undefined && !existsSync(AGENT_DEFAULTS.socket)) {
    // Nothing, and nothing here that would have written any: say where the lines would be, rather than exit 0 mute.
    process.stderr.write(`glow logs: no lines of ${app} in the journal; neither glowd (${AGENT_DEFAULTS.socket}) nor glow up (${devboxPaths(process.env, homedir()).socket}) runs here\n`);
    return 1;
  }
  return code;
}

/** The control socket of the glow up to read, when it is that (and not the journal) which has the lines. */
async function boxSocket(socket: string | undefined): Promise<string | undefined> {
  if (socket !== undefined) return socket;
  if (existsSync(AGENT_DEFAULTS.socket)) return undefined;
  const path = devboxPaths(process.env, homedir()).socket;
  if (!existsSync(path)) return undefined;
  try {
    await getUnix(path, '/status', 2000);
    return path;
  } catch {
    return undefined; // a socket left by a box that was killed: the journal, as on a node
  }
}

/** The box's lines of an app (GET /logs on its control socket), printed as the journal's are. */
function boxLogs(socket: string, o: { app: string; follow: boolean; json: boolean; instance?: number; lines?: number }): Promise<number> {
  const q = new URLSearchParams({ app: o.app });
  if (o.instance !== undefined) q.set('instance', String(o.instance));
  // As journalctl -f: the last 10 lines, then the new ones.
  const lines = o.lines ?? (o.follow ? 10 : undefined);
  if (lines !== undefined) q.set('lines', String(lines));
  if (o.follow) q.set('follow', '1');
  const out = process.stdout;
  return new Promise<number>((resolve, reject) => {
    const req = request({ socketPath: socket, path: `/logs?${q}`, method: 'GET' }, (res) => {
      let rest = '';
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        res.on('data', (d: string) => (rest += d));
        res.on('end', () => {
          let e: { code?: unknown; message?: unknown } = {};
          try {
            e = (JSON.parse(rest) as { error?: typeof e }).error ?? {};
          } catch {
            // not JSON: a box of another version
          }
          const code = isGlowCode(e.code) ? e.code : 'GLOW_E_LOGS_APP_UNKNOWN';
          reject(new GlowError(code, typeof e.message === 'string' ? e.message : `glow up answered ${res.statusCode} for the lines of ${o.app}`));
        });
        return;
      }
      res.on('data', (d: string) => {
        const parts = (rest + d).split('\n');
        rest = parts.pop()!;
        for (const p of parts) {
          if (!p) continue;
          const r = recordOf(JSON.parse(p) as BoxLine);
          if (!out.write(o.json ? jsonLine(r) : textLine(r))) {
            res.pause();
            out.once('drain', () => res.resume());
          }
        }
      });
      res.on('end', () => resolve(0));
      res.on('close', () => {
        if (o.follow && !stopped) process.stderr.write('glow logs: glow up stopped\n');
        resolve(0);
      });
    });
    let stopped = false;
    const end = () => {
      stopped = true;
      req.destroy();
      resolve(0);
    };
    process.once('SIGINT', end);
    process.once('SIGTERM', end);
    req.once('error', (e) => (stopped ? resolve(0) : reject(e)));
    req.end();
  }).then(async (code) => {
    await new Promise<void>((r) => (out.writableNeedDrain ? out.once('drain', () => r()) : r()));
    return code;
  });
}

function recordOf(l: BoxLine): LogRecord {
  return {
    message: l.message,
    timestampUs: l.timestampUs,
    priority: l.stream === 'stderr' ? 3 : 6,
    stream: l.stream,
    app: l.app,
    version: l.version,
    instance: l.instance,
    node: l.node,
    unit: `${l.app}#${l.instance}`,
    pid: l.pid || undefined,
    partial: false,
    cursor: undefined,
  };
}
