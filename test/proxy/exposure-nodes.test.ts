/**
 * Exposures on real nodes: network namespaces on a hub (test/harness), each its own systemd. `edge` runs the
 * proxy as glowd installs it — the rendered glow-proxy.service (a dynamic user with CAP_NET_BIND_SERVICE only, the
 * state directory read-only, the group glow-tls) — with certificates and keys delivered by glowd's own code
 * (root:glow-tls 0640). `app-a` and `app-b` run the apps, `client` runs real clients: curl --resolve, openssl
 * s_client, a small WebSocket client, a DNS-style UDP client.
 *
 * Proves: exposures on privileged ports (443, 80, 53/udp, 22) without root; two hosts on one port reach two apps;
 * SNI picks the certificate; a certificate replaced on disk serves the next handshake without a restart while an
 * open connection goes on; redirect_http; an instance killed under load costs no GET; CL.TE and TE.CL smuggling
 * refused with 400 and nothing reaching an app; WebSocket over TLS; a DNS-like exchange through a UDP exposure; a
 * TCP exposure; the access log in journald; certificate expiry in /metrics, /status and glow status's exposures.
 */
import { PROXY_UNIT } from '../../src/base/names.js';
import { PROXY_ADMIN_SOCKET, routesFile, tlsStorePath } from '../../src/base/paths.js';
import type { NodePaths } from '../../src/base/paths.js';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { proxyGroupId, writeTlsFile } from '../../src/systemd/tls-files.js';
import { formatExposures } from '../../src/cli/format-exposures.js';
import { styleFor } from '../../src/shell/style.js';
import { renderUnits } from '../../src/render/units.js';
import type { HealthCheck, NodePlan } from '../../src/plan/node-plan.js';
import type { ProxyStatus } from '../../src/proxy/proxy.js';
import { bootNode, createHub, stopAll, type SystemdNode } from '../harness/systemd-node.js';
import { makeCa, makeCert, type Pem } from './certs.js';
import { exposure, group, routesWith, sample, upstream } from './helpers.js';

const ENTRY = fileURLToPath(new URL('./fixtures/glow-proxy.js', import.meta.url));
const NODE = process.execPath;
const work = mkdtempSync(join(tmpdir(), 'glow-exposure-nodes-'));
const CA = '/etc/glow-test/ca.crt';
const CHECK: HealthCheck = { type: 'tcp', intervalMs: 500, timeoutMs: 300, rise: 1, fall: 2 };

/** An HTTP app: answers `<name> <node> <X-Forwarded-For> <X-Forwarded-Proto>`, GET /seen lists what it served,
 * echoes WebSocket frames (small ones) after an upgrade, writes its pid to /run/<name>.pid. */
const APP = `
const http = require('http'), crypto = require('crypto'), fs = require('fs'), os = require('os');
const [name, port] = [process.argv[1], Number(process.argv[2])];
const seen = [];
const server = http.createServer((req, res) => {
  if (req.url === '/seen') return res.end(JSON.stringify(seen));
  seen.push(req.method + ' ' + req.url);
  req.resume();
  req.on('end', () => res.end([name, os.hostname(), req.headers['x-forwarded-for'] || '-', req.headers['x-forwarded-proto'] || '-'].join(' ')));
});
server.keepAliveTimeout = 30000;
server.on('upgrade', (req, socket) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  let buf = Buffer.alloc(0);
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const len = buf[1] & 127, masked = buf[1] & 128, need = 2 + (masked ? 4 : 0) + len;
      if (buf.length < need) return;
      const payload = Buffer.from(buf.subarray(need - len, need));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[2 + (i % 4)];
      const op = buf[0] & 15;
      buf = buf.subarray(need);
      if (op === 8) return socket.end(Buffer.from([0x88, 0]));
      socket.write(Buffer.concat([Buffer.from([0x80 | op, payload.length]), payload]));
    }
  });
});
server.listen(port, '0.0.0.0', () => { fs.writeFileSync('/run/' + name + '.pid', String(process.pid)); console.log('listening'); });
`;

/** A DNS-style server: answers an A query for a name under example.com with 10.0.0.80, anything else NXDOMAIN. */
const DNS = `
const s = require('dgram').createSocket('udp4');
s.on('message', (q, r) => {
  let i = 12; const labels = [];
  while (q[i]) { labels.push(q.subarray(i + 1, i + 1 + q[i]).toString()); i += q[i] + 1; }
  i += 5;
  const known = labels.join('.').endsWith('example.com');
  const head = Buffer.alloc(12);
  q.copy(head, 0, 0, 2);
  head.writeUInt16BE(known ? 0x8180 : 0x8183, 2); head.writeUInt16BE(1, 4); head.writeUInt16BE(known ? 1 : 0, 6);
  const answer = known ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 80]) : Buffer.alloc(0);
  s.send(Buffer.concat([head, q.subarray(12, i), answer]), r.port, r.address);
});
s.bind(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));
`;

/** Echoes lines prefixed with the node name. */
const ECHO = `require('net').createServer((s) => { s.setEncoding('utf8'); s.on('data', (d) => s.write(require('os').hostname() + ':' + d)); s.on('end', () => s.end()); }).listen(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));`;

/** DNS queries (ids 4242 and 4343) to ip:53; prints what came back. */
const DIG = `
const s = require('dgram').createSocket('udp4');
const query = (id, name) => {
  const head = Buffer.alloc(12); head.writeUInt16BE(id, 0); head.writeUInt16BE(0x0100, 2); head.writeUInt16BE(1, 4);
  const q = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
  return Buffer.concat([head, q]);
};
const got = {};
s.on('message', (m) => {
  const id = m.readUInt16BE(0), rcode = m.readUInt16BE(2) & 15, an = m.readUInt16BE(6);
  got[id] = { rcode, answer: an ? Array.from(m.subarray(m.length - 4)).join('.') : null };
  if (Object.keys(got).length === 2) { console.log(JSON.stringify(got)); process.exit(0); }
});
s.send(query(4242, 'www.example.com'), 53, process.argv[1]);
s.send(query(4343, 'www.example.org'), 53, process.argv[1]);
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(1); }, 5000);
`;

/** A WebSocket client over TLS (RFC 6455 handshake and one masked text frame); prints the echoed frame. */
const WS = `
const tls = require('tls'), crypto = require('crypto'), fs = require('fs');
const [host, ip] = [process.argv[1], process.argv[2]];
const key = crypto.randomBytes(16).toString('base64');
const expected = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
const s = tls.connect({ host: ip, port: 443, servername: host, ca: fs.readFileSync('${CA}') }, () => {
  s.write('GET /chat HTTP/1.1\\r\\nHost: ' + host + '\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: ' + key + '\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n');
});
let buf = Buffer.alloc(0), upgraded = false;
s.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  if (!upgraded) {
    const i = buf.indexOf('\\r\\n\\r\\n');
    if (i < 0) return;
    const head = buf.subarray(0, i).toString();
    if (!head.startsWith('HTTP/1.1 101') || !head.includes('Sec-WebSocket-Accept: ' + expected)) { console.log(JSON.stringify({ error: head })); process.exit(1); }
    upgraded = true; buf = buf.subarray(i + 4);
    const payload = Buffer.from('hello over wss'), mask = crypto.randomBytes(4);
    s.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, j) => b ^ mask[j % 4])]));
  }
  if (buf.length >= 2 && buf.length >= 2 + (buf[1] & 127)) {
    console.log(JSON.stringify({ opcode: buf[0] & 15, text: buf.subarray(2, 2 + (buf[1] & 127)).toString() }));
    process.exit(0);
  }
});
s.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 5000);
`;

/** GETs over https with keep-alive from 4 workers for argv[2] ms; prints progress, then a summary. */
const LOAD = `
const https = require('https'), fs = require('fs');
const [ip, ms] = [process.argv[1], Number(process.argv[2])];
const agent = new https.Agent({ keepAlive: true, maxSockets: 4, ca: fs.readFileSync('${CA}'), servername: 'www.example.com' });
const out = { ok: 0, failed: 0, errors: [], byNode: {}, afterKill: {} };
let killed = false;
const watch = setInterval(() => { if (fs.existsSync('/tmp/killed')) { killed = true; clearInterval(watch); } }, 20);
const end = Date.now() + ms;
const get = () => new Promise((resolve) => {
  const after = killed; // issued after the kill (a response in flight at the kill may still come from app-a)
  const req = https.request({ host: ip, port: 443, path: '/', agent, servername: 'www.example.com', headers: { host: 'www.example.com' }, timeout: 5000 }, (res) => {
    let body = ''; res.setEncoding('utf8'); res.on('data', (d) => (body += d));
    res.on('end', () => {
      if (res.statusCode === 200) { out.ok++; const n = body.split(' ')[1]; out.byNode[n] = (out.byNode[n] || 0) + 1; if (after) out.afterKill[n] = (out.afterKill[n] || 0) + 1; }
      else { out.failed++; out.errors.push('status ' + res.statusCode + ' ' + body.trim()); }
      resolve();
    });
    res.on('error', (e) => { out.failed++; out.errors.push(e.message); resolve(); });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => { out.failed++; out.errors.push(e.message); resolve(); });
  req.end();
});
const worker = async () => { while (Date.now() < end) await get(); };
const progress = setInterval(() => console.log('progress ' + out.ok), 200);
Promise.all([worker(), worker(), worker(), worker()]).then(() => { clearInterval(progress); out.errors = out.errors.slice(0, 10); console.log('summary ' + JSON.stringify(out)); process.exit(0); });
`;

/** One TLS connection kept alive across a certificate rotation: GET, wait for /tmp/rotated, GET again. */
const KEEP = `
const tls = require('tls'), fs = require('fs');
const s = tls.connect({ host: process.argv[1], port: 443, servername: 'www.example.com', ca: fs.readFileSync('${CA}') });
const serial = () => s.getPeerCertificate().serialNumber;
let buf = '', answers = [];
const ask = () => s.write('GET /keep HTTP/1.1\\r\\nHost: www.example.com\\r\\n\\r\\n');
s.on('secureConnect', () => { console.log('connected ' + serial()); ask(); });
s.setEncoding('utf8');
s.on('data', (d) => {
  buf += d;
  const end = buf.indexOf('\\r\\n\\r\\n');
  if (end < 0) return;
  const status = buf.slice(9, 12), length = Number(/content-length: (\\d+)/i.exec(buf.slice(0, end))[1]);
  if (buf.length < end + 4 + length) return;
  answers.push(Number(status)); buf = buf.slice(end + 4 + length);
  if (answers.length === 1) { console.log('first ' + status); const t = setInterval(() => { if (fs.existsSync('/tmp/rotated')) { clearInterval(t); ask(); } }, 50); }
  else { console.log('done ' + JSON.stringify({ answers, serial: serial() })); s.end(); process.exit(0); }
});
s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
setTimeout(() => { console.log('error timeout'); process.exit(1); }, 30000);
`;

function lines(p: { stdout: NodeJS.ReadableStream | null }): { text: () => string } {
  let out = '';
  p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  return { text: () => out };
}

async function waitFor(what: string, f: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.replace(/^0+/, '').toUpperCase();

describe('exposures on real nodes', { timeout: 240_000 }, () => {
  let edge: SystemdNode;
  let appA: SystemdNode;
  let appB: SystemdNode;
  let client: SystemdNode;
  let ca: Pem;
  let www: Pem;
  let blog: Pem;
  let gid: number;
  const env: NodePaths = { stateDir: '/var/lib/glow', glowCommand: [NODE, ENTRY], podman: '/usr/bin/podman' };
  /** The same delivery glowd does (src/systemd/tls-files.ts), into the edge node's state directory. */
  const deliver = (source: string, pem: string) =>
    writeTlsFile({ ...env, stateDir: `${edge.root}/var/lib/glow` }, `${edge.root}${tlsStorePath(env, source)}`, Buffer.from(pem), gid);
  const sh = (node: SystemdNode, script: string, timeoutMs = 20_000) => node.exec(['bash', '-c', script], { timeoutMs });
  const adminGet = async (path: string) =>
    (await edge.execOk([NODE, '-e', `require('http').get({ socketPath: '${PROXY_ADMIN_SOCKET}', path: '${path}' }, (r) => r.pipe(process.stdout))`])).stdout;

  before(async () => {
    ca = makeCa(work);
    www = makeCert(work, ca, 'www', ['www.example.com']);
    blog = makeCert(work, ca, 'blog', ['blog.example.com']);
    const hub = await createHub('expo');
    [edge, appA, appB, client] = (await Promise.all(['edge', 'app-a', 'app-b', 'client'].map((name) => bootNode({ name, hub })))) as [SystemdNode, SystemdNode, SystemdNode, SystemdNode];
    const started = [
      lines(appA.spawn([NODE, '-e', APP, 'www', '8080'])),
      lines(appB.spawn([NODE, '-e', APP, 'www', '8080'])),
      lines(appB.spawn([NODE, '-e', APP, 'blog', '8081'])),
      lines(appB.spawn([NODE, '-e', DNS, '5353'])),
      lines(appA.spawn([NODE, '-e', ECHO, '7000'])),
    ];
    await client.writeFile(CA, ca.cert);

    // The edge: the group, the certificates as glowd delivers them, the routes, the unit as glowd renders it.
    await edge.execOk(['systemd-sysusers', '-'], { input: 'g glow-tls -\n' });
    gid = proxyGroupId(`${edge.root}/etc/group`)!;
    assert.ok(gid > 0);
    deliver('files/tls/www.crt', www.cert);
    deliver('files/tls/www.key', www.key);
    deliver('files/tls/blog.crt', blog.cert);
    deliver('files/tls/blog.key', blog.key);
    const tlsOf = (n: string) => ({ cert: tlsStorePath(env, `files/tls/${n}.crt`), key: tlsStorePath(env, `files/tls/${n}.key`) });
    const remote = (n: SystemdNode, port: number, instance: number) => upstream(n.address!, port, n.name, false, instance);
    const on = { bind: '0.0.0.0' };
    const routes = routesWith(
      [],
      [
        exposure('www', 443, 'http', [group('www:8080', 'http', [remote(appA, 8080, 1), remote(appB, 8080, 2)], CHECK)], { ...on, hosts: ['www.example.com'], tls: tlsOf('www'), redirectHttp: 80, accessLog: true }),
        exposure('blog', 443, 'http', [group('blog:8081', 'http', [remote(appB, 8081, 1)], CHECK)], { ...on, hosts: ['blog.example.com'], tls: tlsOf('blog') }),
        exposure('dns', 53, 'udp', [group('dns:5353', 'udp', [remote(appB, 5353, 1)], { ...CHECK, type: 'none' })], on),
        exposure('git', 22, 'tcp', [group('echo:7000', 'tcp', [remote(appA, 7000, 1)], CHECK)], { ...on, accessLog: true }),
      ],
    );
    await edge.writeFile(routesFile(env), `${JSON.stringify({ ...routes, node: 'edge' }, null, 2)}\n`);
    const plan = { node: 'edge', address: edge.address, revision: 'test', instances: [], listeners: [], exposures: [], files: [], tlsFiles: [], metricsListen: '127.0.0.1:9464', stopGraceMs: 1000 } as unknown as NodePlan;
    await edge.writeFile(`/etc/systemd/system/${PROXY_UNIT}`, renderUnits(plan, env).files.get(PROXY_UNIT)!);
    await edge.execOk(['systemctl', 'daemon-reload']);
    await waitFor('the apps listen', () => started.every((s) => s.text().includes('listening')));
    const start = await edge.exec(['systemctl', 'start', PROXY_UNIT], { timeoutMs: 60_000 });
    if (start.code !== 0) throw new Error(`${PROXY_UNIT} did not start: ${start.stderr}\n${await edge.journal(['-u', PROXY_UNIT, '-n', '40'])}`);
  });

  after(async () => {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  });

  test('the proxy binds privileged ports as a dynamic user; delivered keys are readable by its group only', async () => {
    const show = (await edge.execOk(['systemctl', 'show', '-p', 'MainPID', '-p', 'StatusText', PROXY_UNIT])).stdout;
    assert.match(show, /StatusText=serving: 4 listeners bound/);
    const pid = /MainPID=(\d+)/.exec(show)![1]!;
    const ids = (await edge.execOk(['ps', '-o', 'uid=,gid=,supgid=', '-p', pid])).stdout.trim().split(/\s+/);
    assert.notEqual(ids[0], '0', 'not root');
    assert.ok(ids[2]!.split(',').includes(String(gid)), `supplementary group glow-tls (${ids.join(' ')})`);
    const caps = (await edge.execOk(['grep', 'CapEff', `/proc/${pid}/status`])).stdout;
    assert.match(caps, /CapEff:\s+0+400$/m, 'only CAP_NET_BIND_SERVICE');
    const listening = (await edge.execOk(['ss', '-Hlntu'])).stdout;
    for (const port of [':443 ', ':80 ', ':22 ', ':53 ']) assert.ok(listening.includes(port), `${port} in\n${listening}`);
    const modes = (await edge.execOk(['stat', '-c', '%a %U %G %n', '/var/lib/glow/tls', '/var/lib/glow/tls/files/tls', '/var/lib/glow/tls/files/tls/www.key'])).stdout;
    assert.deepEqual(modes.trim().split('\n'), ['750 root glow-tls /var/lib/glow/tls', '750 root glow-tls /var/lib/glow/tls/files/tls', '640 root glow-tls /var/lib/glow/tls/files/tls/www.key']);
  });

  test('two hosts on one port reach two apps; SNI picks the certificate; plain HTTP is redirected', async () => {
    const curl = (host: string, path = '/') => sh(client, `curl -sS --max-time 5 --resolve ${host}:443:${edge.address} --cacert ${CA} https://${host}${path}`);
    const w = await curl('www.example.com');
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /^www app-[ab] 10\.77\.0\.\d+ https$/, 'X-Forwarded-For is the client, X-Forwarded-Proto https');
    assert.ok(w.stdout.includes(` ${client.address} `));
    const b = await curl('blog.example.com');
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /^blog app-b /);
    const unknown = await sh(client, `curl -sS --max-time 5 -o /dev/null -w '%{http_code}' --resolve nope.example.com:443:${edge.address} -k https://nope.example.com/`);
    assert.equal(unknown.stdout, '404');

    const subject = async (name: string) =>
      (await sh(client, `openssl s_client -connect ${edge.address}:443 -servername ${name} -CAfile ${CA} </dev/null 2>/dev/null | openssl x509 -noout -subject`)).stdout.trim();
    assert.equal(await subject('www.example.com'), 'subject=CN = www.example.com');
    assert.equal(await subject('blog.example.com'), 'subject=CN = blog.example.com');
    const verify = await sh(client, `openssl s_client -brief -connect ${edge.address}:443 -servername blog.example.com -CAfile ${CA} -verify_return_error </dev/null 2>&1`);
    assert.match(verify.stdout, /^Verification: OK$/m, verify.stdout);
    assert.match(verify.stdout, /^Protocol version: TLSv1\.3$/m, verify.stdout);
    const old = await sh(client, `openssl s_client -brief -tls1_1 -connect ${edge.address}:443 -servername blog.example.com </dev/null 2>&1`);
    assert.notEqual(old.code, 0, `TLS 1.1 is refused: ${old.stdout}`);

    const redirect = await sh(client, `curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{redirect_url}' --resolve www.example.com:80:${edge.address} 'http://www.example.com/a/b?c=1'`);
    assert.equal(redirect.stdout, '308 https://www.example.com/a/b?c=1');
  });

  test('a certificate replaced on disk is served to new connections without a restart; an open one goes on', async () => {
    const pid = (await edge.execOk(['systemctl', 'show', '-p', 'MainPID', '--value', PROXY_UNIT])).stdout.trim();
    const keep = client.spawn([NODE, '-e', KEEP, edge.address!]);
    const out = lines(keep);
    let err = '';
    keep.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor('the kept connection answered once', () => out.text().includes('first 200')).catch((e: Error) => {
      throw new Error(`${e.message}: ${out.text()} ${err}`);
    });
    const renewed = makeCert(work, ca, 'www-renewed', ['www.example.com'], 200);
    deliver('files/tls/www.crt', renewed.cert);
    deliver('files/tls/www.key', renewed.key);
    const served = async () =>
      (await sh(client, `openssl s_client -connect ${edge.address}:443 -servername www.example.com -CAfile ${CA} </dev/null 2>/dev/null | openssl x509 -noout -serial`)).stdout.trim().replace(/^serial=0*/, '').toUpperCase();
    await waitFor('the renewed certificate is served', async () => (await served()) === serialOf(renewed.cert), 20_000);
    await client.writeFile('/tmp/rotated', 'yes');
    await waitFor('the kept connection answered again', () => out.text().includes('done '));
    const done = JSON.parse(out.text().split('done ')[1]!.trim()) as { answers: number[]; serial: string };
    assert.deepEqual(done.answers, [200, 200]);
    assert.equal(done.serial.replace(/^0+/, '').toUpperCase(), serialOf(www.cert), 'the open connection keeps the certificate it was opened with');
    assert.equal((await edge.execOk(['systemctl', 'show', '-p', 'MainPID', '--value', PROXY_UNIT])).stdout.trim(), pid, 'no restart');
    const c = await sh(client, `curl -sS --max-time 5 --resolve www.example.com:443:${edge.address} --cacert ${CA} https://www.example.com/`);
    assert.equal(c.code, 0, c.stderr);
  });

  test('CL.TE and TE.CL smuggling are refused with 400 and reach no app', async () => {
    const smuggled = 'GET /admin HTTP/1.1\r\nHost: www.example.com\r\n\r\n';
    const attempts = {
      'CL.TE': `POST /a HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      'TE.CL': `POST /b HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${smuggled}\r\n0\r\n\r\n`,
    };
    for (const [kind, bytes] of Object.entries(attempts)) {
      const r = await client.exec(['openssl', 's_client', '-quiet', '-connect', `${edge.address}:443`, '-servername', 'www.example.com', '-CAfile', CA], { input: bytes, timeoutMs: 15_000 });
      assert.match(r.stdout, /^HTTP\/1\.1 400 Bad Request\r\n/, `${kind}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /Connection: close\r\n/);
      assert.equal(r.stdout.match(/HTTP\/1\.1 /g)!.length, 1, `${kind}: one answer, then the connection is closed`);
    }
    for (const app of [appA, appB]) {
      const seen = JSON.parse((await sh(client, `curl -sS --max-time 5 http://${app.address}:8080/seen`)).stdout) as string[];
      assert.ok(!seen.some((s) => s.startsWith('POST') || s.includes('/admin')), `${app.name} saw ${seen.join(', ')}`);
    }
  });

  test('an instance killed under load causes no failed GET', async (t) => {
    const load = client.spawn([NODE, '-e', LOAD, edge.address!, '5000']);
    const out = lines(load);
    await waitFor('load is running', () => /progress [1-9]\d{2,}/.test(out.text()), 20_000);
    const pid = (await appA.execOk(['cat', '/run/www.pid'])).stdout.trim();
    await appA.execOk(['kill', '-KILL', pid]);
    await client.writeFile('/tmp/killed', 'yes');
    await waitFor('load done', () => out.text().includes('summary '), 30_000);
    // Bring it back first, for what follows, whatever the assertions below say.
    lines(appA.spawn([NODE, '-e', APP, 'www', '8080']));
    const summary = JSON.parse(out.text().split('summary ')[1]!.trim()) as { ok: number; failed: number; errors: string[]; byNode: Record<string, number>; afterKill: Record<string, number> };
    const retries = sample(await adminGet('/metrics'), 'glow_proxy_retries_total', { listener: 'www', service: 'www:8080', reason: 'reset' }) + sample(await adminGet('/metrics'), 'glow_proxy_retries_total', { listener: 'www', service: 'www:8080', reason: 'connect_failure' });
    t.diagnostic(`${JSON.stringify({ ok: summary.ok, failed: summary.failed, byNode: summary.byNode, afterKill: summary.afterKill, retries })}`);
    assert.equal(summary.failed, 0, `failed GETs: ${summary.errors.join('; ')}`);
    assert.deepEqual(Object.keys(summary.afterKill), ['app-b'], 'after the kill only app-b answers');
    assert.ok(summary.ok > 100, `${summary.ok} GETs`);
    assert.ok((summary.byNode['app-a'] ?? 0) > 0 && (summary.byNode['app-b'] ?? 0) > 0, JSON.stringify(summary.byNode));
    const metrics = await adminGet('/metrics');
    assert.ok(sample(metrics, 'glow_proxy_http_request_duration_seconds_count', { listener: 'www', service: 'www:8080', method: 'GET', status_class: '2xx' }) >= summary.ok);
    assert.equal(sample(metrics, 'glow_proxy_http_request_duration_seconds_count', { listener: 'www', service: 'www:8080', method: 'GET', status_class: '5xx' }), 0);
  });

  test('WebSocket over TLS, a DNS-like exchange over UDP, a TCP exposure', async () => {
    const ws = await client.exec([NODE, '-e', WS, 'www.example.com', edge.address!], { timeoutMs: 15_000 });
    assert.deepEqual(JSON.parse(ws.stdout.trim()), { opcode: 1, text: 'hello over wss' });
    const dig = await client.exec([NODE, '-e', DIG, edge.address!], { timeoutMs: 15_000 });
    assert.deepEqual(JSON.parse(dig.stdout.trim()), { 4242: { rcode: 0, answer: '10.0.0.80' }, 4343: { rcode: 3, answer: null } });
    const git = await client.exec([NODE, '-e', `const s = require('net').connect(22, '${edge.address}', () => s.write('ping\\n')); s.setEncoding('utf8'); s.on('data', (d) => { process.stdout.write(d); s.end(); });`], { timeoutMs: 15_000 });
    assert.equal(git.stdout, 'app-a:ping\n');
  });

  test('access log lines in journald; certificate expiry in /metrics, /status and glow status', async () => {
    const entry = await edge.waitForJournalEntry(['-u', PROXY_UNIT], (e) => {
      const m = typeof e['MESSAGE'] === 'string' ? e['MESSAGE'] : '';
      return m.includes('"msg":"access"') && m.includes('"exposure":"www"') && m.includes('"status":200');
    });
    const line = JSON.parse(entry['MESSAGE'] as string) as Record<string, unknown>;
    assert.equal(line['client'], client.address);
    assert.equal(line['host'], 'www.example.com');
    assert.match(String(line['upstream']), /^10\.77\.0\.\d+:8080$/);
    await edge.waitForJournalEntry(['-u', PROXY_UNIT], (e) => typeof e['MESSAGE'] === 'string' && e['MESSAGE'].includes('"exposure":"git"') && e['MESSAGE'].includes('"result":"ok"'));
    const none = await edge.journal(['-u', PROXY_UNIT, '-g', '"exposure":"blog"']);
    assert.equal(none.trim(), '', 'blog has no access log');

    const metrics = await adminGet('/metrics');
    const expiry = sample(metrics, 'glow_proxy_certificate_expiry_timestamp_seconds', { exposure: 'www', certificate: tlsStorePath(env, 'files/tls/www.crt') });
    assert.ok(expiry > Date.now() / 1000 + 150 * 86_400, `the renewed certificate's expiry: ${expiry}`);
    let text = '';
    await waitFor('www healthy again after the kill', async () => {
      const status = JSON.parse(await adminGet('/status')) as ProxyStatus;
      text = formatExposures(status.frontends, styleFor({ isTTY: false } as NodeJS.WriteStream), new Date()).join('\n');
      return text.includes('2/2 upstreams healthy  (http 80');
    }, 20_000);
    assert.match(text, /www +http 443\/tls +www\.example\.com +→ www:8080 +2\/2 upstreams healthy +\(http 80 redirects here\)/);
    assert.match(text, /certificate \/var\/lib\/glow\/tls\/files\/tls\/www\.crt \(CN=www\.example\.com\) expires \S+ \(in 19\dd\)/);
    assert.match(text, /dns +udp 53 +→ dns:5353/);
  });
});
