/**
 * A real Kubernetes control plane on 127.0.0.1 for one test file: etcd,
 * kube-apiserver (RBAC enforced, client-certificate and service-account
 * token authentication), kube-controller-manager (the Deployment,
 * ReplicaSet and ServiceAccount controllers) and kube-scheduler, all upstream
 * programs built from the Go module proxy by scripts/kube-binaries.sh. Data
 * lives in a temporary folder that stop() removes, with every process.
 *
 * Nothing here is a stand-in; the nodes are (simulated-nodes.ts).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../helpers/net.js';
import { MARKER_VARIABLE } from '../../helpers/processes.js';
import { makePki, type Pki } from './pki.js';

const REPO = resolve(import.meta.dirname, '../../..');

/** The admin: system:masters, like kubeadm's admin.conf. */
export const ADMIN_USER = 'quillman-test-admin';

export interface ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly port: number;
  readonly pki: Pki;
  readonly binDir: string;
  /** Cluster admin (system:masters). */
  admin(): KubeConfig;
  /** A client that authenticates with a bearer token (a service account's). */
  withToken(token: string, namespace?: string): KubeConfig;
  /** Writes a kubeconfig file for a token (what a gateway outside the cluster would be given). */
  writeTokenKubeconfig(path: string, token: string, namespace: string): void;
  /** The tail of a component's log, for failure messages. */
  logTail(component: string, lines?: number): string;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Put into every process's environment so the test can check they are gone. */
  marker: string;
}

/**
 * Builds the binaries if missing (half an hour on two cores, once per machine; .ci/run does it
 * first) and returns their folder. The build's progress goes straight to the terminal.
 */
export async function kubeBinaries(): Promise<string> {
  const child = spawn(join(REPO, 'scripts/kube-binaries.sh'), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`scripts/kube-binaries.sh failed (exit ${code}): it builds kube-apiserver, etcd and friends with Go; see its output above`);
  return out.trim().split('\n').at(-1)!;
}

interface Component {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const binDir = await kubeBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'quillman-kube-'));
  const components: Component[] = [];
  const env = { ...process.env, [MARKER_VARIABLE]: options.marker };

  const launch = (name: string, binary: string, args: string[]): Component => {
    const log = join(dir, `${name}.log`);
    const fd = openSync(log, 'a');
    const child = spawn(join(binDir, binary), args, { stdio: ['ignore', fd, fd], env });
    closeSync(fd);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const component = { name, child, log, exited };
    components.push(component);
    return component;
  };

  const stop = async () => {
    // The API server before etcd, so that it does not spend its grace period retrying storage.
    for (const c of components.reverse()) {
      if (c.child.exitCode === null && c.child.signalCode === null) {
        c.child.kill('SIGTERM');
        const timer = setTimeout(() => c.child.kill('SIGKILL'), 5000);
        await c.exited;
        clearTimeout(timer);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const pki = await makePki(dir, [
      { user: ADMIN_USER, groups: ['system:masters'] },
      { user: 'system:kube-controller-manager' },
      { user: 'system:kube-scheduler' },
    ]);
    const [etcdClient, etcdPeer, port] = await Promise.all([freePort(), freePort(), freePort()]);
    const server = `https://127.0.0.1:${port}`;

    const etcd = launch('etcd', 'etcd', [
      '--name=test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=test=http://127.0.0.1:${etcdPeer}`,
      // Throw-away data: no fsync, so a busy disk does not slow the API server down.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);

    const apiserver = launch('kube-apiserver', 'kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--profiling=false',
      '--v=1',
    ]);

    const admin = pki.clients[ADMIN_USER];
    await waitForHttps(`${server}/readyz`, { ca: pki.caCert, cert: admin.cert, key: admin.key }, 120_000, [etcd, apiserver]);

    const componentKubeconfig = (user: string) => {
      const path = join(dir, `${user.replace(/[^a-z0-9-]/gi, '_')}.kubeconfig`);
      writeKubeconfig(path, server, pki.caCert, { name: user, 'client-certificate': pki.clients[user].cert, 'client-key': pki.clients[user].key });
      return path;
    };
    launch('kube-controller-manager', 'kube-controller-manager', [
      `--kubeconfig=${componentKubeconfig('system:kube-controller-manager')}`,
      // The controllers the worker fleet needs: Deployments make ReplicaSets, ReplicaSets refill the warm
      // buffer, namespaces get their default ServiceAccount, and node lifecycle lifts the not-ready taint
      // from nodes that report Ready and renew their heartbeat Lease (the simulated nodes do).
      '--controllers=deployment,replicaset,serviceaccount,nodelifecycle',
      // Each controller acts as its own service account with its bootstrap Role, as in a real cluster.
      '--use-service-account-credentials=true',
      '--leader-elect=false',
      '--secure-port=0',
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      '--concurrent-replicaset-syncs=10',
      '--v=1',
    ]);
    launch('kube-scheduler', 'kube-scheduler', [
      `--kubeconfig=${componentKubeconfig('system:kube-scheduler')}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      '--v=1',
    ]);

    const adminConfig = () => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'test', server, caFile: pki.caCert, skipTLSVerify: false }],
        users: [{ name: ADMIN_USER, certFile: admin.cert, keyFile: admin.key }],
        contexts: [{ name: 'test', cluster: 'test', user: ADMIN_USER }],
        currentContext: 'test',
      });
      return kc;
    };
    const withToken = (token: string, namespace?: string) => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'test', server, caFile: pki.caCert, skipTLSVerify: false }],
        users: [{ name: 'token', token }],
        contexts: [{ name: 'test', cluster: 'test', user: 'token', namespace }],
        currentContext: 'test',
      });
      return kc;
    };

    return {
      dir,
      server,
      port,
      pki,
      binDir,
      admin: adminConfig,
      withToken,
      writeTokenKubeconfig(path, token, namespace) {
        writeKubeconfig(path, server, pki.caCert, { name: 'token', token }, namespace);
      },
      logTail(component, lines = 30) {
        try {
          return readFileSync(join(dir, `${component}.log`), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
        } catch {
          return '(no log)';
        }
      },
      stop,
    };
  } catch (err) {
    const tails = components.map((c) => `--- ${c.name} ---\n${tail(c.log)}`).join('\n');
    await stop();
    throw new Error(`the control plane did not start: ${(err as Error).message}\n${tails}`);
  }
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A kubeconfig file (JSON is YAML) with the CA inline, so it stays valid wherever it is copied. */
function writeKubeconfig(path: string, server: string, caFile: string, user: { name: string } & Record<string, string>, namespace?: string): void {
  const { name, ...credentials } = user;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': readFileSync(caFile).toString('base64') } }],
    users: [{ name, user: credentials }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: name, ...(namespace ? { namespace } : {}) } }],
    'current-context': 'test',
  };
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
}

/** Waits for a 200 from `url`, failing early when one of `components` exits. */
async function waitForHttps(url: string, tls: { ca: string; cert: string; key: string }, timeoutMs: number, components: Component[]): Promise<void> {
  const ca = readFileSync(tls.ca);
  const cert = readFileSync(tls.cert);
  const key = readFileSync(tls.key);
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const dead = components.find((c) => c.child.exitCode !== null || c.child.signalCode !== null);
    if (dead) throw new Error(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode})`);
    const status = await new Promise<number>((done) => {
      const req = request(url, { ca, cert, key, timeout: 5000 }, (res) => {
        res.resume();
        done(res.statusCode ?? 0);
      });
      req.on('error', (err) => {
        last = err.message;
        done(0);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
    if (status === 200) return;
    if (status) last = `HTTP ${status}`;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} was not ready within ${timeoutMs / 1000} s (${last})`);
}
