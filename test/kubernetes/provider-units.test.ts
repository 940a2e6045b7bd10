/**
 * The kubernetes provider's pieces that need no API server: settings, where
 * credentials come from, the address a pod is dialled at, and when the
 * reclaimer takes another gateway for dead (its clock-skew rule).
 */
import type { V1Lease, V1Pod } from '@kubernetes/client-node';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parsePoolConfig, PoolConfigError } from '../../src/pool/index.js';
import { loadClusterAccess, SERVICE_ACCOUNT_DIR } from '../../src/pool/providers/kubernetes/kube-config.js';
import { CLAIM_LABEL, GATEWAY_LABEL, identityFrom, podEndpoint, PORT_ANNOTATION } from '../../src/pool/providers/kubernetes/labels.js';
import { Reclaimer } from '../../src/pool/providers/kubernetes/reclaimer.js';
import { kubernetesSettingsSchema } from '../../src/pool/providers/kubernetes/settings.js';
import { silentLogger } from '../../src/util/logger.js';

const SELECTOR = 'app.kubernetes.io/name=quillman,app.kubernetes.io/component=worker';

describe('kubernetes settings', () => {
  it('need the worker selector, and name the flag that sets it', () => {
    const problem = (() => {
      try {
        parsePoolConfig({ provider: 'kubernetes' });
      } catch (err) {
        return (err as PoolConfigError).message;
      }
    })();
    expect(problem).toMatch(/kubernetes\.selector: is required when provider is "kubernetes".*--kube-selector/);
  });

  it('refuse a selector on the claim labels, a renewal slower than the Lease, and more than one conversation per pod', () => {
    const issues = (input: Record<string, unknown>) => kubernetesSettingsSchema.safeParse({ selector: SELECTOR, ...input }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues({ selector: `${SELECTOR},${CLAIM_LABEL}=free` })).toEqual([expect.stringMatching(/must not mention quillman\.dev\/claim/)]);
    expect(issues({ leaseSeconds: 6, renewSeconds: 6 })).toEqual([expect.stringMatching(/^renewSeconds: must be below leaseSeconds \(6\)/)]);
    expect(issues({ slots: 2 })).toEqual([expect.stringMatching(/^slots: must be 1/)]);
    expect(issues({ namespace: 'Not_A_Namespace' })).toHaveLength(1);
  });

  it('default sensibly, and parse to themselves', () => {
    const parsed = kubernetesSettingsSchema.parse({ selector: SELECTOR });
    expect(parsed).toMatchObject({ port: 8998, path: '/api/chat', scheme: 'ws', gpuResource: 'nvidia.com/gpu', leaseSeconds: 15, slots: 1, inClusterRoot: '' });
    expect(kubernetesSettingsSchema.parse(parsed)).toEqual(parsed);
    const pool = parsePoolConfig({ provider: 'kubernetes', kubernetes: { selector: SELECTOR } });
    expect(pool).toMatchObject({ provider: 'kubernetes', maxWorkers: 16 });
  });
});

describe('where the gateway finds the API server', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("in a pod: the service account's token, CA and namespace (under a prefix when they were copied elsewhere)", () => {
    dir = mkdtempSync(join(tmpdir(), 'quillman-kube-units-'));
    const sa = join(dir, SERVICE_ACCOUNT_DIR);
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'token-from-the-pod');
    writeFileSync(join(sa, 'ca.crt'), 'not a real CA');
    writeFileSync(join(sa, 'namespace'), 'voice');
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    try {
      const access = loadClusterAccess({ inClusterRoot: dir }, { KUBERNETES_SERVICE_HOST: '10.96.0.1', HOME: dir });
      expect(access.namespace).toBe('voice');
      expect(access.kubeConfig.getCurrentCluster()?.server).toBe('https://10.96.0.1:443');
      expect(access.source).toMatch(/service account/);
    } finally {
      process.env.KUBERNETES_SERVICE_HOST = saved.host;
      process.env.KUBERNETES_SERVICE_PORT = saved.port;
      if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
      if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    }
  });

  it('a kubeconfig file and its context; clear errors for a missing context, or no credentials at all', () => {
    dir = mkdtempSync(join(tmpdir(), 'quillman-kube-units-'));
    const file = join(dir, 'config');
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://k8s.example:6443' } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [
          { name: 'a', context: { cluster: 'c', user: 'u', namespace: 'voice-a' } },
          { name: 'b', context: { cluster: 'c', user: 'u' } },
        ],
        'current-context': 'a',
      }),
    );
    expect(loadClusterAccess({ kubeconfig: file, inClusterRoot: '' }, {}).namespace).toBe('voice-a');
    expect(loadClusterAccess({ kubeconfig: file, context: 'b', inClusterRoot: '' }, {}).namespace).toBe('default');
    expect(loadClusterAccess({ kubeconfig: file, context: 'b', namespace: 'mine', inClusterRoot: '' }, {}).namespace).toBe('mine');
    expect(() => loadClusterAccess({ kubeconfig: file, context: 'nope', inClusterRoot: '' }, {})).toThrow(/no context "nope".*--kube-context/);
    expect(() => loadClusterAccess({ inClusterRoot: '' }, { HOME: dir })).toThrow(/run the gateway in a pod.*--kubeconfig/);
  });
});

describe('the address of a worker pod', () => {
  const pod = (ip: string, annotations: Record<string, string> = {}) => ({ metadata: { annotations }, status: { podIP: ip } }) as V1Pod;
  const settings = { scheme: 'ws', port: 8998, path: '/api/chat' };

  it('is its IP and the container port, or the port it announces when it shares an address', () => {
    expect(podEndpoint(pod('10.4.2.17'), settings)).toBe('ws://10.4.2.17:8998/api/chat');
    expect(podEndpoint(pod('fd00::17'), settings)).toBe('ws://[fd00::17]:8998/api/chat');
    expect(podEndpoint(pod('127.0.0.1', { [PORT_ANNOTATION]: '41234' }), { ...settings, scheme: 'wss' })).toBe('wss://127.0.0.1:41234/api/chat');
    expect(podEndpoint(pod('10.4.2.17', { [PORT_ANNOTATION]: 'junk' }), settings)).toBe('ws://10.4.2.17:8998/api/chat');
  });

  it("and a gateway's identity is its pod name with a suffix, fit for a label value", () => {
    expect(identityFrom('quillman-gateway-7d9f8b6c5-x2k4p', 'a1b2c3')).toBe('quillman-gateway-7d9f8b6c5-x2k4p-a1b2c3');
    const long = identityFrom('A_Very.Long_Host-Name'.repeat(5), 'a1b2c3');
    expect(long).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(long.length).toBeLessThanOrEqual(50);
  });
});

describe('the reclaimer', () => {
  afterEach(() => vi.useRealTimers());

  const claimed = (holder: string): V1Pod => ({ metadata: { name: `pod-of-${holder}`, uid: `uid-${holder}`, labels: { [CLAIM_LABEL]: 'claimed', [GATEWAY_LABEL]: holder } } });
  const lease = (name: string, renewedMsAgo: number, version = '1'): V1Lease => ({
    metadata: { name, resourceVersion: version },
    spec: { holderIdentity: name, leaseDurationSeconds: 10, renewTime: new Date(Date.now() - renewedMsAgo) },
  });

  function reclaimerWith(pods: V1Pod[], leases: V1Lease[]) {
    const deleted: string[] = [];
    const reclaimer = new Reclaimer({
      identity: 'me',
      leaseSeconds: 10,
      pods: () => pods,
      leases: () => leases,
      deletePod: async (pod) => void deleted.push(pod.metadata!.name!),
      deleteLease: async () => undefined,
      log: silentLogger,
    });
    for (const l of leases) reclaimer.onLeaseChange(l, false);
    reclaimer.onPodChange();
    return { reclaimer, deleted };
  }

  it('reclaims at once the pods of a gateway whose Lease was last renewed long ago', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const { reclaimer, deleted } = reclaimerWith([claimed('dead'), claimed('me')], [lease('dead', 10 * 60_000)]);
    await vi.advanceTimersByTimeAsync(100);
    expect(deleted).toEqual(['pod-of-dead']);
    reclaimer.close();
  });

  it('waits a whole Lease duration of its own watching when clocks disagree, and spares a Lease that moves', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    // Renewed "in the future" by a clock ahead of ours: only our own observation counts. And one
    // 40 s behind ours, renewing all along: it must never look dead.
    const skewed = lease('skewed', -30_000);
    const leases = [skewed, lease('alive', 40_000)];
    const { reclaimer, deleted } = reclaimerWith([claimed('skewed'), claimed('alive')], leases);
    await vi.advanceTimersByTimeAsync(6_000);
    // 'alive' renews (a new version) every 5 s; 'skewed' never changes again.
    leases[1] = lease('alive', 40_000, '2');
    reclaimer.onLeaseChange(leases[1], false);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(deleted).toEqual([]);
    leases[1] = lease('alive', 40_000, '3');
    reclaimer.onLeaseChange(leases[1], false);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(deleted).toEqual(['pod-of-skewed']);
    await vi.advanceTimersByTimeAsync(4_000);
    expect(deleted).toEqual(['pod-of-skewed']);
    reclaimer.close();
  });

  it('reclaims the pods of a holder that has no Lease, after leaseSeconds', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const { reclaimer, deleted } = reclaimerWith([claimed('vanished')], []);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(deleted).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(deleted).toEqual(['pod-of-vanished']);
    reclaimer.close();
  });
});
