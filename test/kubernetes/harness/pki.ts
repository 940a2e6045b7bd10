/**
 * Keys and certificates for a throw-away control plane, made with the
 * openssl command line: a CA, the API server's serving certificate (for
 * 127.0.0.1), client certificates for the admin and the control-plane
 * components, and the key that signs service-account tokens. EC P-256
 * throughout: fast to generate, accepted everywhere in Kubernetes.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Pki {
  dir: string;
  caCert: string;
  servingCert: string;
  servingKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  /** Client certificate and key per user name. */
  clients: Record<string, { cert: string; key: string }>;
}

export interface ClientIdentity {
  /** The user name (CN). */
  user: string;
  /** Groups (O). */
  groups?: string[];
}

async function ecKey(path: string): Promise<void> {
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

/** `/CN=user/O=group…`, with the characters openssl's -subj treats specially escaped. */
function subject(cn: string, groups: string[] = []): string {
  const escape = (s: string) => s.replace(/[/\\=+,]/g, (c) => `\\${c}`);
  return `/CN=${escape(cn)}${groups.map((g) => `/O=${escape(g)}`).join('')}`;
}

export async function makePki(dir: string, clients: ClientIdentity[]): Promise<Pki> {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  await ecKey(caKey);
  await run('openssl', [
    'req', '-x509', '-new', '-key', caKey, '-subj', subject('quillman-test-ca'), '-days', '2', '-out', caCert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);

  const issue = async (name: string, subj: string, extensions: string[]) => {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
    await ecKey(key);
    await run('openssl', [
      'req', '-x509', '-new', '-key', key, '-CA', caCert, '-CAkey', caKey, '-subj', subj, '-days', '2', '-out', cert,
      '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment',
      ...extensions.flatMap((e) => ['-addext', e]),
    ]);
    return { cert, key };
  };

  const serving = await issue('apiserver', subject('kube-apiserver'), [
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
  ]);
  const issued: Pki['clients'] = {};
  for (const client of clients) {
    issued[client.user] = await issue(`client-${client.user.replace(/[^a-z0-9-]/gi, '_')}`, subject(client.user, client.groups), ['extendedKeyUsage=clientAuth']);
  }

  const serviceAccountKey = join(dir, 'sa.key');
  const serviceAccountPub = join(dir, 'sa.pub');
  await ecKey(serviceAccountKey);
  await run('openssl', ['pkey', '-in', serviceAccountKey, '-pubout', '-out', serviceAccountPub]);

  return { dir, caCert, servingCert: serving.cert, servingKey: serving.key, serviceAccountKey, serviceAccountPub, clients: issued };
}
