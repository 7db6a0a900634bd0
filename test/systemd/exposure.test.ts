/**
 * An exposure end to end through glowd on a real systemd node: the repository names a TLS exposure with
 * redirect_http; glowd creates the proxy's group, delivers the certificate and key (root:glow-tls 0640), writes
 * routes that name them by path, and the proxy serves HTTPS on 443 to curl. A certificate renewed in the repository
 * is served to new connections without restarting the proxy; a key that does not match is a `glow check` error that
 * glowd refuses to apply, and the last good certificate goes on serving. `glow status` shows the exposure.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { bootNode, stopAll } from '../harness/systemd-node.js';
import type { SystemdNode } from '../harness/systemd-node.js';
import { makeCa, makeCert, type Pem } from '../proxy/certs.js';
import { eventually, Glowd, GLOW, mainPid, NODE, Repo } from './fixture.js';

after(stopAll);

const CA = '/etc/glow-test/ca.crt';
const WEB = `image: web
version: "1.0"
runtime: exec
command: [bin/server, "8080"]
provides: [8080/http]
`;
const EXPOSURE = `service: web:8080
port: 443
nodes: [edge-a]
host: www.example.com
tls: { cert: files/tls/www.crt, key: files/tls/www.key }
redirect_http: true
access_log: true
`;

describe('an exposure through glowd', () => {
  let node: SystemdNode;
  let repo: Repo;
  let glowd: Glowd;
  let ca: Pem;

  before(async () => {
    repo = new Repo('glow-exposure-');
    ca = makeCa(repo.root);
    const www = makeCert(repo.root, ca, 'www', ['www.example.com']);
    repo.artifact('web', '1.0');
    repo.write('glow.yaml', `artifacts: ${repo.artifacts}\nlogs:\n  sinks:\n    - { type: file, path: "/var/log/glow/{app}.log" }\n`);
    repo.write('nodes/edge-a.yaml', 'address: 10.77.0.11\n');
    repo.write('apps/web.yaml', WEB);
    repo.write('deployments/web-1.yaml', 'app: web\nnode: edge-a\n');
    repo.write('files/tls/www.crt', www.cert);
    repo.write('files/tls/www.key', www.key);
    repo.write('exposures/www.yaml', EXPOSURE);
    node = await bootNode({ name: 'edge-a', binds: [repo.root] });
    await node.writeFile(CA, ca.cert);
    glowd = new Glowd(node, repo);
    glowd.start();
    await glowd.until((s) => s.revision !== undefined && s.instances.some((i) => i.activeState === 'active'), 'web #1 active');
  });

  after(async () => {
    await glowd?.stop();
    repo?.cleanup();
  });

  const curl = (args: string) => node.exec(['bash', '-c', `curl -sS --max-time 5 --cacert ${CA} --resolve www.example.com:443:127.0.0.1 --resolve www.example.com:80:127.0.0.1 ${args}`]);
  const servedSerial = async () =>
    (await node.exec(['bash', '-c', `openssl s_client -connect 127.0.0.1:443 -servername www.example.com </dev/null 2>/dev/null | openssl x509 -noout -serial`])).stdout.trim().replace(/^serial=0*/, '').toUpperCase();
  const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.replace(/^0+/, '').toUpperCase();

  test('glowd delivers the certificate and key to the proxy only; curl gets the app over HTTPS; HTTP is redirected', async () => {
    const body = await eventually(async () => {
      const r = await curl('https://www.example.com/');
      return r.code === 0 && r.stdout;
    }, 'https://www.example.com/ answering through the exposure');
    assert.equal((JSON.parse(body) as { app: string }).app, 'web');
    const modes = (await node.execOk(['stat', '-c', '%a %U %G', '/var/lib/glow/tls', '/var/lib/glow/tls/files/tls/www.crt', '/var/lib/glow/tls/files/tls/www.key'])).stdout;
    assert.deepEqual(modes.trim().split('\n'), ['750 root glow-tls', '640 root glow-tls', '640 root glow-tls']);
    const routes = JSON.parse((await node.execOk(['cat', '/var/lib/glow/proxy/routes.json'])).stdout) as { exposures: { tls: unknown }[] };
    assert.deepEqual(routes.exposures[0]!.tls, { cert: '/var/lib/glow/tls/files/tls/www.crt', key: '/var/lib/glow/tls/files/tls/www.key' }, 'paths, not key material');
    assert.doesNotMatch(JSON.stringify(routes), /PRIVATE KEY/);
    const redirect = await curl(`-o /dev/null -w '%{http_code} %{redirect_url}' http://www.example.com/x`);
    assert.equal(redirect.stdout, '308 https://www.example.com/x');
    const status = (await node.execOk([NODE, GLOW, 'status'])).stdout;
    assert.match(status, /www +http 443\/tls +www\.example\.com +→ web:8080 +1\/1 upstreams healthy +\(http 80 redirects here\)/);
    assert.match(status, /certificate \/var\/lib\/glow\/tls\/files\/tls\/www\.crt \(CN=www\.example\.com\) expires \S+ \(in 8\dd\)/);
    await node.waitForJournalEntry(['-u', 'glow-proxy.service'], (e) => typeof e['MESSAGE'] === 'string' && e['MESSAGE'].includes('"msg":"access"') && e['MESSAGE'].includes('"status":200'));
    // glowd forwards the proxy's lines too: the access line reaches the file sink as app glow-proxy.
    const shipped = await eventually(async () => {
      const r = await node.exec(['cat', '/var/log/glow/glow-proxy.log']);
      return r.stdout.split('\n').find((l) => l.includes('\\"msg\\":\\"access\\"') && l.includes('\\"status\\":200'));
    }, 'the access line in the file sink');
    const rec = JSON.parse(shipped) as { app: string; node: string; unit: string };
    assert.deepEqual([rec.app, rec.node, rec.unit], ['glow-proxy', 'edge-a', 'glow-proxy.service']);
  });

  test('a certificate renewed in the repository is served without restarting the proxy', async () => {
    const pid = await mainPid(node, 'glow-proxy.service');
    const renewed = makeCert(repo.root, ca, 'www-renewed', ['www.example.com'], 300);
    repo.write('files/tls/www.crt', renewed.cert);
    repo.write('files/tls/www.key', renewed.key);
    await eventually(async () => (await servedSerial()) === serialOf(renewed.cert), 'the renewed certificate served', 30_000);
    assert.equal(await mainPid(node, 'glow-proxy.service'), pid, 'no restart');
    assert.equal((await curl('-o /dev/null -w %{http_code} https://www.example.com/')).stdout, '200');
  });

  test('a key that does not match is refused by glow check and not applied; the served certificate stays', async () => {
    const before = await servedSerial();
    const other = makeCert(repo.root, ca, 'other', ['www.example.com']);
    repo.write('files/tls/www.key', readFileSync(other.keyPath, 'utf8'));
    const s = await glowd.until((st) => st.configErrors.some((e) => e.code === 'GLOW_E_TLS_MISMATCH'), 'the mismatch reported');
    const e = s.configErrors.find((x) => x.code === 'GLOW_E_TLS_MISMATCH')!;
    assert.equal(`${e.file}:${e.line}`, 'exposures/www.yaml:5');
    assert.equal(await servedSerial(), before);
    assert.equal((await curl('-o /dev/null -w %{http_code} https://www.example.com/')).stdout, '200');
  });
});
