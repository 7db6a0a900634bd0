/**
 * Pieces of the log forwarding tests on a real systemd node: a line generator packed as an exec artifact, a
 * throwaway CA with a server and a client certificate (openssl), rsyslogd with its own configuration (UDP, TCP,
 * TLS with client certificates, raw message templates), small HTTP receivers for the loki and http sinks that
 * write what they acknowledge to files, and readers of what every sink received.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SystemdNode } from '../harness/systemd-node.js';
import { NODE, sleep } from '../systemd/fixture.js';
import type { Repo } from '../systemd/fixture.js';

/**
 * The generator: idle until SIGUSR1, then runs the job in /run/gen/job.json — `count` lines `<id> <i>` (at `rate`
 * lines per second, or as fast as journald takes them; line `poison` of instance 1 says POISON), or the special lines (non-UTF-8 bytes,
 * a 100 KiB line).
 */
const GENERATOR = `
const fs = require('fs');
let busy = Promise.resolve();
const write = (s) => new Promise((r) => (process.stdout.write(s) ? r() : process.stdout.once('drain', r)));
async function run() {
  const job = JSON.parse(fs.readFileSync('/run/gen/job.json', 'utf8'));
  if (job.kind === 'special') {
    await write(Buffer.concat([Buffer.from(job.binary, 'base64'), Buffer.from('\\n')]));
    await write(job.big + '\\n');
    await write(job.id + ' done\\n');
    return;
  }
  const t0 = Date.now();
  for (let i = 1; i <= job.count; i++) {
    await write(job.id + ' ' + i + (job.poison === i && process.env.GLOW_INSTANCE === '1' ? ' POISON' : '') + '\\n');
    if (job.rate && i % 50 === 0) {
      const wait = t0 + (i * 1000) / job.rate - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
}
process.on('SIGUSR1', () => { busy = busy.then(run, run); });
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1 << 30);
console.log('gen ready');
`;

export function packGenerator(repo: Repo, version = '1.0'): void {
  const stage = join(repo.root, 'stage-gen', version);
  mkdirSync(join(stage, 'bin'), { recursive: true });
  writeFileSync(join(stage, 'gen.cjs'), GENERATOR);
  writeFileSync(join(stage, 'bin/gen'), `#!/bin/sh\nexec ${NODE} "$(dirname "$0")/../gen.cjs"\n`, { mode: 0o755 });
  const out = join(repo.artifacts, 'gen', `${version}.tar.gz`);
  mkdirSync(dirname(out), { recursive: true });
  execFileSync('tar', ['-czf', out, '-C', stage, '.']);
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`. */
export function makeCertificates(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=glow test CA');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    ssl('req', ...key, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=glow ${who}`);
    ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '2', '-extfile', `${who}.ext`);
  }
}

export const RX = '/var/log/rx';

/** rsyslogd's own configuration: the host's is never read. */
export function rsyslogConf(tls: string): string {
  return `
global(workDirectory="/var/spool/rsyslog-test" maxMessageSize="256k"
       parser.escapeControlCharactersOnReceive="off"
       defaultNetstreamDriverCAFile="${tls}/ca.pem"
       defaultNetstreamDriverCertFile="${tls}/server.pem"
       defaultNetstreamDriverKeyFile="${tls}/server.key")
module(load="imudp")
module(load="imtcp" maxSessions="100")
template(name="raw" type="string" string="%app-name% %procid% %structured-data% %msg%\\n")
input(type="imudp" port="5514" ruleset="udp" rcvBufSize="16m")
input(type="imtcp" port="5514" ruleset="tcp")
input(type="imtcp" port="6514" ruleset="tls" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
ruleset(name="udp") { action(type="omfile" file="${RX}/udp.log" template="raw") }
ruleset(name="tcp") { action(type="omfile" file="${RX}/tcp.log" template="raw") }
ruleset(name="tls") { action(type="omfile" file="${RX}/tls.log" template="raw") }
`;
}

/** An HTTP receiver: Loki's push API and JSON lines; what it acknowledges is on disk first. */
const RECEIVER = `
const http = require('http');
const fs = require('fs');
const [port, name, rejectPoison] = process.argv.slice(2);
const out = '${RX}/' + name + '.jsonl';
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (d) => chunks.push(d));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (rejectPoison === 'yes' && body.includes('POISON')) {
      fs.appendFileSync('${RX}/' + name + '.rejected', 'batch\\n');
      res.writeHead(400).end('this batch holds poison');
      return;
    }
    let lines;
    if (req.url.startsWith('/loki/api/v1/push')) {
      const b = JSON.parse(body);
      lines = b.streams.flatMap((s) => s.values.map(([ts, line]) => JSON.stringify({ labels: s.stream, ts, line }) + '\\n'));
    } else {
      lines = body.split('\\n').filter(Boolean).map((l) => l + '\\n');
    }
    fs.appendFileSync(out, lines.join(''));
    res.writeHead(204).end();
  });
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
`;

export async function installPeers(node: SystemdNode, tls: string): Promise<void> {
  await node.writeFile('/etc/rsyslog-test.conf', rsyslogConf(tls));
  await node.writeFile('/root/rx.js', RECEIVER);
  await node.execOk(['mkdir', '-p', '/var/spool/rsyslog-test', RX, '/run/gen']);
  await node.execOk(['chmod', '0755', '/run/gen']);
  await node.execOk(['systemd-run', '--unit=rsyslog-test', '-p', 'Type=exec', '/usr/sbin/rsyslogd', '-n', '-f', '/etc/rsyslog-test.conf', '-i', '/run/rsyslog-test.pid']);
  for (const port of [5514, 6514]) await waitPort(node, port);
  await startReceiver(node, 'http', 8088, true);
  await startReceiver(node, 'loki', 3100, false);
}

export async function startReceiver(node: SystemdNode, name: string, port: number, rejectPoison: boolean): Promise<void> {
  await node.execOk(['systemd-run', `--unit=rx-${name}`, '-p', 'Type=exec', NODE, '/root/rx.js', String(port), name, rejectPoison ? 'yes' : 'no']);
  await waitPort(node, port);
}

export async function stopReceiver(node: SystemdNode, name: string): Promise<void> {
  await node.execOk(['systemctl', 'stop', `rx-${name}.service`]);
}

async function waitPort(node: SystemdNode, port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await node.exec(['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`])).code === 0) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on port ${port} in the node`);
}

/** Runs a generator job in both instances of `gen`. */
export async function runJob(node: SystemdNode, job: Record<string, unknown>): Promise<void> {
  await node.writeFile('/run/gen/job.json', JSON.stringify(job), 0o644);
  await node.execOk(['systemctl', 'kill', '--kill-whom=main', '--signal=SIGUSR1', 'glow-gen@1.service', 'glow-gen@2.service']);
}

/** One line as a sink received it. */
export interface Got {
  readonly instance: string;
  /** The message, as text (invalid UTF-8 replaced) */
  readonly text: string;
  /** The exact bytes, when the sink carries them. */
  readonly bytes?: Buffer;
  readonly fields?: Record<string, unknown>;
}

export type SinkName = 'file' | 'http' | 'loki' | 'udp' | 'tcp' | 'tls';
export const SINKS: readonly SinkName[] = ['file', 'http', 'loki', 'udp', 'tcp', 'tls'];

function linesOf(path: string): Buffer[] {
  if (!existsSync(path)) return [];
  const buf = readFileSync(path);
  const out: Buffer[] = [];
  let from = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, from)) {
    out.push(buf.subarray(from, i));
    from = i + 1;
  }
  return out;
}

/** Everything a sink received so far, in order. */
export function received(node: SystemdNode, sink: SinkName): Got[] {
  const root = node.root;
  switch (sink) {
    case 'file':
    case 'http': {
      const path = sink === 'file' ? `${root}/var/log/glow/gen.log` : `${root}${RX}/http.jsonl`;
      return linesOf(path).map((l) => {
        const o = JSON.parse(l.toString('utf8')) as Record<string, unknown>;
        const bytes = typeof o['message_base64'] === 'string' ? Buffer.from(o['message_base64'], 'base64') : Buffer.from(o['message'] as string, 'utf8');
        return { instance: String(o['instance']), text: o['message'] as string, bytes, fields: o };
      });
    }
    case 'loki':
      return linesOf(`${root}${RX}/loki.jsonl`).map((l) => {
        const o = JSON.parse(l.toString('utf8')) as { labels: Record<string, string>; ts: string; line: string };
        const bytes = o.labels['encoding'] === 'base64' ? Buffer.from(o.line, 'base64') : Buffer.from(o.line, 'utf8');
        return { instance: o.labels['instance']!, text: bytes.toString('utf8'), bytes, fields: { ...o.labels, ts: o.ts } };
      });
    default:
      // rsyslog's raw template: APP-NAME PROCID STRUCTURED-DATA MSG
      return linesOf(`${root}${RX}/${sink}.log`).map((l) => {
        const end = l.indexOf('] ');
        const head = l.subarray(0, end + 1).toString('utf8');
        const bytes = l.subarray(end + 2);
        const instance = /instance="(\d+)"/.exec(head)?.[1] ?? '?';
        return { instance, text: bytes.toString('utf8'), bytes, fields: { head } };
      });
  }
}

/**
 * The numbers of job `id`'s lines per instance: `firsts` in order of first arrival, and how many arrived twice.
 */
export function numbersOf(got: readonly Got[], id: string, instance: string): { firsts: number[]; duplicates: number } {
  const seen = new Set<number>();
  const firsts: number[] = [];
  let duplicates = 0;
  for (const g of got) {
    if (g.instance !== instance || !g.text.startsWith(`${id} `)) continue;
    const n = Number(g.text.slice(id.length + 1).split(' ')[0]);
    if (!Number.isInteger(n)) continue;
    if (seen.has(n)) duplicates++;
    else {
      seen.add(n);
      firsts.push(n);
    }
  }
  return { firsts, duplicates };
}
