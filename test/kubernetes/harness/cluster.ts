/**
 * One test file's cluster: the real control plane (control-plane.ts), the
 * simulated nodes (simulated-nodes.ts, a stand-in) running this checkout as
 * the container image (image.ts), and the chart rendered by the real
 * kustomize and applied with server-side apply.
 *
 * Nodes: one CPU node for the gateways, and GPU nodes labelled and tainted as
 * NVIDIA's GPU operator leaves them, each advertising `nvidia.com/gpu`.
 */
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { isReady } from '../../../src/pool/providers/kubernetes/labels.js';
import { newMarker } from '../../helpers/processes.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { buildImage } from './image.js';
import { PORT_ANNOTATION, SimulatedNodes } from './simulated-nodes.js';

export const REPO = resolve(import.meta.dirname, '../../..');
export const NAMESPACE = 'quillman';
export const TEST_OVERLAY = resolve(import.meta.dirname, '../fixtures/test-overlay');
export const GATEWAY_SELECTOR = 'app.kubernetes.io/name=quillman,app.kubernetes.io/component=gateway';
export const WORKER_SELECTOR = 'app.kubernetes.io/name=quillman,app.kubernetes.io/component=worker';
export const FIELD_MANAGER = 'quillman-tests';

export interface ClusterOptions {
  gpuNodes?: number;
  gpusPerNode?: number;
}

export interface TestCluster {
  readonly controlPlane: ControlPlane;
  readonly nodes: SimulatedNodes;
  readonly marker: string;
  readonly admin: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly coordination: CoordinationV1Api;
  /** What the simulated kubelet could not do (reported with failures). */
  readonly problems: string[];
  /** `kustomize build <dir>`, parsed. */
  render(dir: string): Promise<KubernetesObject[]>;
  /** Server-side apply, as `kubectl apply --server-side`; returns what the API server stored. */
  apply(objects: KubernetesObject[], namespace?: string): Promise<KubernetesObject[]>;
  /** A token of a service account, from the TokenRequest API (what a pod would get mounted). */
  serviceAccountToken(name: string, namespace?: string): Promise<string>;
  /** A kubeconfig file for a service account, for a gateway run outside a pod. */
  serviceAccountKubeconfig(name: string, namespace?: string): Promise<string>;
  pods(selector: string, namespace?: string): Promise<V1Pod[]>;
  setWorkerReplicas(replicas: number, namespace?: string): Promise<void>;
  /** Gateways whose pods are Ready: their pod names and base URLs (http://127.0.0.1:<port>). */
  readyGateways(namespace?: string): Promise<{ pod: string; url: string }[]>;
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const marker = newMarker();
  const [controlPlane, image] = await Promise.all([startControlPlane({ marker }), buildImage()]);
  const problems: string[] = [];
  let nodes: SimulatedNodes;
  try {
    const gpus = String(options.gpusPerNode ?? 16);
    nodes = await SimulatedNodes.start({
      controlPlane,
      image,
      marker,
      onProblem: (message) => problems.push(message),
      nodes: [
        { name: 'cpu-node-1', capacity: { cpu: '64', memory: '256Gi', pods: '110' } },
        ...Array.from({ length: options.gpuNodes ?? 2 }, (_, i) => ({
          name: `gpu-node-${i + 1}`,
          labels: { 'nvidia.com/gpu.present': 'true', 'nvidia.com/gpu.product': 'NVIDIA-L4' },
          taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' as const }],
          capacity: { cpu: '96', memory: '768Gi', pods: '110', 'nvidia.com/gpu': gpus },
        })),
      ],
    });
  } catch (err) {
    image.remove();
    await controlPlane.stop();
    throw err;
  }
  const admin = controlPlane.admin();
  const core = admin.makeApiClient(CoreV1Api);
  const apps = admin.makeApiClient(AppsV1Api);
  const objects = KubernetesObjectApi.makeApiClient(admin);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });

  const cluster: TestCluster = {
    controlPlane,
    nodes,
    marker,
    admin,
    core,
    apps,
    coordination: admin.makeApiClient(CoordinationV1Api),
    problems,
    async render(dir) {
      const { stdout } = await promisify(execFile)(join(controlPlane.binDir, 'kustomize'), ['build', dir], { maxBuffer: 16 << 20 });
      return parseAllDocuments(stdout)
        .map((doc) => doc.toJS() as KubernetesObject | null)
        .filter((o): o is KubernetesObject => !!o);
    },
    async apply(list, namespace = NAMESPACE) {
      const stored: KubernetesObject[] = [];
      for (const object of list) {
        const body = { ...object, metadata: { ...object.metadata, namespace: object.metadata?.namespace ?? namespace } };
        stored.push(await objects.patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
      }
      return stored;
    },
    async serviceAccountToken(name, namespace = NAMESPACE) {
      const request = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
      return request.status!.token;
    },
    async serviceAccountKubeconfig(name, namespace = NAMESPACE) {
      const path = join(controlPlane.dir, `${name}-${Date.now().toString(36)}.kubeconfig`);
      controlPlane.writeTokenKubeconfig(path, await cluster.serviceAccountToken(name, namespace), namespace);
      return path;
    },
    async pods(selector, namespace = NAMESPACE) {
      return (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
    },
    async setWorkerReplicas(replicas, namespace = NAMESPACE) {
      await apps.patchNamespacedDeploymentScale(
        { name: 'quillman-worker', namespace, body: { spec: { replicas } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    },
    async readyGateways(namespace = NAMESPACE) {
      const pods = await cluster.pods(GATEWAY_SELECTOR, namespace);
      return pods
        .filter((p) => isReady(p) && !p.metadata?.deletionTimestamp && p.metadata?.annotations?.[PORT_ANNOTATION])
        .map((p) => ({ pod: p.metadata!.name!, url: `http://127.0.0.1:${p.metadata!.annotations![PORT_ANNOTATION]}` }));
    },
    async stop() {
      await nodes.stop();
      image.remove();
      await controlPlane.stop();
    },
  };
  return cluster;
}

/** Writes a file into the control plane's temporary folder (removed with it). */
export function scratchFile(cluster: TestCluster, name: string, content: string): string {
  const path = join(cluster.controlPlane.dir, name);
  writeFileSync(path, content);
  return path;
}
