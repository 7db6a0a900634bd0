/**
 * Test certificates made with the openssl command line: a CA, and server certificates for given names signed by
 * it (EC P-256: fast). Files are PEM in `dir`; the contents are returned too (for nodes, which do not see /tmp).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pem {
  readonly cert: string;
  readonly key: string;
  readonly certPath: string;
  readonly keyPath: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

export function makeCa(dir: string, name = 'Glow Test CA'): Pem {
  const keyPath = join(dir, 'ca.key');
  const certPath = join(dir, 'ca.crt');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '3650', '-subj', `/CN=${name}`, '-keyout', keyPath, '-out', certPath]);
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath };
}

/** A server certificate for `names` (the first is the CN), signed by `ca`, valid for `days`. */
export function makeCert(dir: string, ca: Pem, file: string, names: string[], days = 90): Pem {
  const keyPath = join(dir, `${file}.key`);
  const certPath = join(dir, `${file}.crt`);
  const csr = join(dir, `${file}.csr`);
  const ext = join(dir, `${file}.ext`);
  writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth\n`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${names[0]}`, '-keyout', keyPath, '-out', csr]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial', '-days', String(days), '-extfile', ext, '-out', certPath]);
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath };
}
