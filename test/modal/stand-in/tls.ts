/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): certificates for
 * its tunnels and connect-token proxy. Real tunnels are `https://…` with a
 * publicly trusted certificate; here a throwaway CA, made with the openssl CLI
 * at start, signs one server certificate for 127.0.0.1 and localhost. A test
 * trusts the CA explicitly (`ca` option, or NODE_EXTRA_CA_CERTS for a child
 * process), so the client code path stays the one used against Modal: TLS with
 * full verification.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface StandInCertificates {
  caCertPath: string;
  caCertPem: string;
  keyPem: string;
  certPem: string;
}

const LEAF_EXTENSIONS = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = serverAuth',
  'subjectAltName = IP:127.0.0.1, DNS:localhost',
].join('\n');

export async function makeCertificates(dir: string): Promise<StandInCertificates> {
  const path = (name: string) => join(dir, name);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await run('openssl', [
      'req', '-x509', ...ecKey, '-keyout', path('ca.key'), '-out', path('ca.crt'), '-days', '2',
      '-subj', '/CN=QuiLLMan Modal stand-in test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    await run('openssl', ['req', ...ecKey, '-keyout', path('tunnel.key'), '-out', path('tunnel.csr'), '-subj', '/CN=127.0.0.1']);
    await writeFile(path('tunnel.ext'), `${LEAF_EXTENSIONS}\n`);
    await run('openssl', [
      'x509', '-req', '-in', path('tunnel.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'), '-CAcreateserial',
      '-out', path('tunnel.crt'), '-days', '2', '-extfile', path('tunnel.ext'),
    ]);
  } catch (err) {
    const detail = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(`Modal stand-in: making its test certificates with the openssl CLI failed (install openssl): ${detail}`);
  }
  const [caCertPem, keyPem, certPem] = await Promise.all([readFile(path('ca.crt'), 'utf8'), readFile(path('tunnel.key'), 'utf8'), readFile(path('tunnel.crt'), 'utf8')]);
  return { caCertPath: path('ca.crt'), caCertPem, keyPem, certPem };
}
