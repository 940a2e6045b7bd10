/**
 * The provider contract over the kubernetes provider, against a real API
 * server: the pool runs in this process with the gateway's service-account
 * token (RBAC enforced, the chart's Role), and claims pods of the chart's
 * worker Deployment, which the real controller-manager and scheduler keep
 * at three replicas on simulated GPU nodes. Also: what a gateway says at
 * start-up when it cannot work (no permission, bad credentials, no file).
 */
import { PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPool, type PoolConfigInput } from '../../src/pool/index.js';
import { KubernetesFleet } from '../../src/pool/providers/kubernetes/fleet.js';
import { CLAIM_LABEL, CLAIMED, isReady } from '../../src/pool/providers/kubernetes/labels.js';
import { KubernetesMetrics } from '../../src/pool/providers/kubernetes/metrics.js';
import { kubernetesSettingsSchema } from '../../src/pool/providers/kubernetes/settings.js';
import { silentLogger } from '../../src/util/logger.js';
import { eventually } from '../helpers/gateway.js';
import { closeConversation, openConversation } from '../pool/helpers.js';
import { describeProviderContract } from '../pool/contract/provider-contract.js';
import { NAMESPACE, scratchFile, TEST_OVERLAY, WORKER_SELECTOR, type TestCluster } from './harness/cluster.js';
import { useCluster } from './harness/use-cluster.js';

const cluster = useCluster();
let kubeconfig: string;
const WORKERS = 3;

/** The chart with the worker buffer at three pods and no gateway pods: the gateway here is the test's pool. */
async function deployWorkers(c: TestCluster): Promise<void> {
  const objects = await c.render(TEST_OVERLAY);
  for (const o of objects as (KubernetesObject & { spec?: { replicas?: number } })[]) {
    if (o.kind === 'Deployment') o.spec!.replicas = o.metadata?.name === 'quillman-worker' ? WORKERS : 0;
  }
  await c.apply(objects);
  kubeconfig = await c.serviceAccountKubeconfig('quillman-gateway');
  await eventually(async () => (await c.pods(WORKER_SELECTOR)).filter(isReady).length >= WORKERS, 120_000, `${WORKERS} worker pods to be ready`, 250);
}

beforeAll(() => deployWorkers(cluster()), 180_000);

const kubernetesSettings = (extra: Record<string, unknown> = {}) => ({ selector: WORKER_SELECTOR, namespace: NAMESPACE, kubeconfig, leaseSeconds: 3, ...extra });

describeProviderContract('kubernetes', {
  timeoutMs: 60_000,
  async setup() {
    const restart = { initialDelaySeconds: 0.05, maxDelaySeconds: 0.2, maxStartFailures: 3, cooldownSeconds: 1 };
    return {
      maxSlots: 1,
      singleUse: true,
      async config({ workers, warm = 0 }) {
        return { provider: 'kubernetes', maxWorkers: workers, warm, kubernetes: kubernetesSettings() } as PoolConfigInput;
      },
      async broken() {
        return {
          config: {
            provider: 'kubernetes',
            maxWorkers: 1,
            warm: 0,
            kubernetes: kubernetesSettings({ selector: 'app.kubernetes.io/name=quillman,app.kubernetes.io/component=nothing', readyTimeoutSeconds: 0.5, restart }),
          } as PoolConfigInput,
          failure: /failed to start 3 times in a row; the last time it was not ready within 0\.5 s of its last progress report \("waiting for a ready worker pod: no pod matches the worker selector yet"\)[\s\S]*Check the worker pods: kubectl get pods -n quillman -l/,
        };
      },
      async kill(worker) {
        await cluster().core.deleteNamespacedPod({ name: String(worker.details!.pod), namespace: NAMESPACE });
      },
      async converse(dial) {
        const socket = await openConversation(dial.url, dial.headers);
        return { close: () => closeConversation(socket) };
      },
      async running() {
        const pods = await cluster().pods(WORKER_SELECTOR);
        const claimed = pods.filter((p) => p.metadata?.labels?.[CLAIM_LABEL] === CLAIMED);
        return claimed.map((p) => p.metadata!.name!);
      },
      checkDial(dial, worker) {
        // The pod's own address: the claimed pod's IP and the port it announced.
        expect(dial.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/api\/chat$/);
        expect(dial.url).toBe(worker.details?.podUrl);
        expect(String(worker.details?.pod)).toMatch(/^quillman-worker-/);
        expect(worker.details?.gpus).toBe('1 nvidia.com/gpu');
      },
    };
  },
});

describe('kubernetes provider: a claimed pod that carried no conversation', () => {
  it("is handed back (labelled free, not deleted) with the chart's Role, which grants no `get` on pods", async () => {
    const c = cluster();
    const settings = kubernetesSettingsSchema.parse(kubernetesSettings());
    const fleet = await KubernetesFleet.connect(settings, silentLogger, new KubernetesMetrics());
    try {
      const pod = await fleet.claim({ signal: new AbortController().signal, progress: () => undefined });
      const name = pod.metadata!.name!;
      // As a worker seat does: held, so not taken for an orphan.
      fleet.own(name);
      expect((await c.pods(WORKER_SELECTOR)).find((p) => p.metadata?.name === name)?.metadata?.labels?.[CLAIM_LABEL]).toBe(CLAIMED);
      await fleet.release(pod, { used: false });
      const after = (await c.pods(WORKER_SELECTOR)).find((p) => p.metadata?.name === name);
      expect(after?.metadata?.deletionTimestamp).toBeUndefined();
      expect(after?.metadata?.labels?.[CLAIM_LABEL]).toBe('free');
    } finally {
      await fleet.close();
    }
  });
});

describe('kubernetes provider: start-up problems are named with their fix', () => {
  const startError = async (settings: Record<string, unknown>) => {
    const pool = createPool({ provider: 'kubernetes', maxWorkers: 1, warm: 0, kubernetes: kubernetesSettings(settings) } as PoolConfigInput, silentLogger);
    try {
      return await pool.start().then(
        () => undefined,
        (err: Error) => err.message,
      );
    } finally {
      await pool.close();
    }
  };

  it('a service account without the Role: every missing permission, and where it is granted', async () => {
    const c = cluster();
    await c.core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: 'no-role' } } });
    const file = await c.serviceAccountKubeconfig('no-role');
    const message = await startError({ kubeconfig: file });
    expect(message).toMatch(/may not list pods, watch pods, patch pods, delete pods, list leases, watch leases, create leases, update leases, delete leases in namespace quillman/);
    expect(message).toMatch(/deploy\/kubernetes\/base\/gateway-role\.yaml/);
  });

  it('credentials the API server rejects', async () => {
    const c = cluster();
    const file = scratchFile(c, 'bad-token.kubeconfig', '');
    c.controlPlane.writeTokenKubeconfig(file, 'not-a-token', NAMESPACE);
    expect(await startError({ kubeconfig: file })).toMatch(/did not accept the gateway's credentials .*HTTP 401/);
  });

  it('a kubeconfig file that does not exist', async () => {
    expect(await startError({ kubeconfig: '/nonexistent/kubeconfig' })).toMatch(/kubeconfig file \/nonexistent\/kubeconfig does not exist/);
  });

  it('leaves no Lease behind when it stops, and reclaims the pods of a gateway that vanished without one', async () => {
    const c = cluster();
    // A pod claimed by a gateway that no longer exists (its Lease is gone): reclaimed within leaseSeconds.
    const free = (await c.pods(WORKER_SELECTOR)).find((p: V1Pod) => isReady(p) && p.metadata?.labels?.[CLAIM_LABEL] === 'free')!;
    await c.core.patchNamespacedPod(
      { name: free.metadata!.name!, namespace: NAMESPACE, body: { metadata: { labels: { [CLAIM_LABEL]: CLAIMED, 'quillman.dev/gateway': 'gone-gateway-abc123' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const pool = createPool({ provider: 'kubernetes', maxWorkers: 1, warm: 0, kubernetes: kubernetesSettings() } as PoolConfigInput, silentLogger);
    await pool.start();
    const leases = await c.coordination.listNamespacedLease({ namespace: NAMESPACE });
    expect(leases.items.map((l) => l.spec?.holderIdentity)).toHaveLength(1);
    await eventually(async () => {
      const pod = (await c.pods(WORKER_SELECTOR)).find((p) => p.metadata?.name === free.metadata!.name);
      return !pod || !!pod.metadata?.deletionTimestamp;
    }, 30_000, 'the orphaned pod to be reclaimed');
    await pool.close();
    expect((await c.coordination.listNamespacedLease({ namespace: NAMESPACE })).items).toEqual([]);
  });
});
