/**
 * The proxy's errors carry registered codes: every failure of a certificate pair is a ProxyError with
 * GLOW_E_PROXY_TLS (and the errno when the system gave one), and no file of src/proxy/ makes a bare Error or a
 * GlowError that is not a ProxyError (whose code the type restricts to PROXY_CODES).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { PROXY_CODES } from '../../src/base/codes.js';
import { loadPair } from '../../src/proxy/certificates.js';
import { ProxyError } from '../../src/proxy/errors.js';
import { makeCa, makeCert } from './certs.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'glow-proxy-errors-'));
after(() => rmSync(work, { recursive: true, force: true }));

function tlsFailure(f: () => unknown, message: RegExp): ProxyError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ProxyError, `a ProxyError, not ${String(e)}`);
    assert.equal(e.code, 'GLOW_E_PROXY_TLS');
    assert.match(e.message, message);
    return e;
  }
  assert.fail('no error');
}

describe('proxy errors', () => {
  test('every way a certificate pair cannot be loaded is GLOW_E_PROXY_TLS', () => {
    const ca = makeCa(work);
    const a = makeCert(work, ca, 'a', ['a.example.com']);
    const b = makeCert(work, ca, 'b', ['b.example.com']);
    writeFileSync(join(work, 'junk.pem'), 'not pem\n');
    assert.ok(loadPair({ cert: a.certPath, key: a.keyPath }).context);
    const missing = tlsFailure(() => loadPair({ cert: join(work, 'none.crt'), key: a.keyPath }), /cannot read .*none\.crt: ENOENT/);
    assert.equal(missing.errno, 'ENOENT');
    tlsFailure(() => loadPair({ cert: join(work, 'junk.pem'), key: a.keyPath }), /holds no PEM certificate/);
    tlsFailure(() => loadPair({ cert: a.certPath, key: join(work, 'junk.pem') }), /holds no unencrypted PEM private key/);
    tlsFailure(() => loadPair({ cert: a.certPath, key: b.keyPath }), /does not belong to the certificate/);
  });

  test('src/proxy/ throws no bare Error, and every code it names is registered', () => {
    const dir = join(ROOT, 'src', 'proxy');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(join(dir, f), 'utf8');
      assert.doesNotMatch(text, /new (Type|Range)?Error\(/, `${f} makes a bare Error`);
      assert.doesNotMatch(text, /new GlowError\(/, `${f}: the proxy's errors are ProxyErrors`);
      for (const m of text.matchAll(/GLOW_E_[A-Z_]+/g)) assert.ok(Object.hasOwn(PROXY_CODES, m[0]), `${f} names ${m[0]}, not a proxy code`);
    }
  });
});
