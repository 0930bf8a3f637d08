/**
 * Certificates for TLS tests, made by openssl in a temporary folder: a CA; server leaves for
 * 127.0.0.1 / localhost / backend.test (two, for rotation); a client leaf; and a rogue
 * self-signed server certificate for the same names that no CA vouches for. EC P-256 keys, so
 * the whole set takes a fraction of a second.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: CertFiles;
  server: CertFiles;
  server2: CertFiles;
  client: CertFiles;
  rogue: CertFiles;
  read(file: string): Buffer;
}

const SAN = 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:backend.test';

export function makePki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-pki-'));
  const f = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  const key = (name: string): string => {
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${name}-key.pem`));
    return f(`${name}-key.pem`);
  };
  key('ca');
  openssl('req', '-x509', '-new', '-key', f('ca-key.pem'), '-sha256', '-days', '2', '-subj', '/CN=switchboard test CA', '-out', f('ca.pem'));
  const leaf = (name: string, cn: string, ext: string): CertFiles => {
    key(name);
    openssl('req', '-new', '-key', f(`${name}-key.pem`), '-subj', `/CN=${cn}`, '-out', f(`${name}.csr`));
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-sha256', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
    return { cert: f(`${name}.pem`), key: f(`${name}-key.pem`) };
  };
  const server = leaf('server', 'backend.test', `${SAN}\nextendedKeyUsage=serverAuth`);
  const server2 = leaf('server2', 'backend.test', `${SAN}\nextendedKeyUsage=serverAuth`);
  const client = leaf('client', 'edge-1', 'extendedKeyUsage=clientAuth');
  key('rogue');
  openssl('req', '-x509', '-new', '-key', f('rogue-key.pem'), '-sha256', '-days', '2', '-subj', '/CN=backend.test', '-addext', SAN, '-out', f('rogue.pem'));
  return { dir, ca: { cert: f('ca.pem'), key: f('ca-key.pem') }, server, server2, client, rogue: { cert: f('rogue.pem'), key: f('rogue-key.pem') }, read: (file) => readFileSync(file) };
}
