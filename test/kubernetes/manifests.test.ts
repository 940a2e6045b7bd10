/**
 * deploy/kubernetes/ as a user applies it: rendered by the real kustomize,
 * server-side applied to a real API server (which checks every field against
 * its schema), scheduled by the real scheduler. And the gateway's Role: enough
 * for what the gateway does, and nothing more, asked of the API server as the
 * gateway's own service account.
 */
import { AuthorizationV1Api, CoreV1Api, type KubernetesObject, type V1Deployment, type V1Pod, type V1Role } from '@kubernetes/client-node';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NEEDED_PERMISSIONS } from '../../src/pool/providers/kubernetes/permissions.js';
import { CLAIM_LABEL } from '../../src/pool/providers/kubernetes/labels.js';
import { eventually } from '../helpers/gateway.js';
import { REPO, type TestCluster } from './harness/cluster.js';
import { useCluster } from './harness/use-cluster.js';

const BASE = resolve(REPO, 'deploy/kubernetes/base');
const CASCADE = resolve(REPO, 'deploy/kubernetes/overlays/cascade-cpu');

const cluster = useCluster({ gpuNodes: 1, gpusPerNode: 4 });

type Workload = KubernetesObject & V1Deployment;
const find = <T extends KubernetesObject>(objects: KubernetesObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata?.name === name) as T;
const envOf = (d: Workload) => Object.fromEntries((d.spec!.template.spec!.containers[0].env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

/** Applies a rendering into its own namespace; Deployments at `replicas` (the gateways need not run here). */
async function applyInto(c: TestCluster, objects: KubernetesObject[], namespace: string, replicas: Record<string, number>): Promise<KubernetesObject[]> {
  await c.core.createNamespace({ body: { metadata: { name: namespace } } });
  const copies = structuredClone(objects) as Workload[];
  for (const o of copies) if (o.kind === 'Deployment') o.spec!.replicas = replicas[o.metadata!.name!] ?? 0;
  return c.apply(copies, namespace);
}

describe('the chart (deploy/kubernetes)', () => {
  let base: KubernetesObject[];
  let cascade: KubernetesObject[];
  beforeAll(async () => {
    base = await cluster().render(BASE);
    cascade = await cluster().render(CASCADE);
  });

  it('gateways: two or more behind a Service, probes, resources, a disruption budget, the kubernetes provider', () => {
    const gateway = find<Workload>(base, 'Deployment', 'quillman-gateway');
    const spec = gateway.spec!;
    expect(spec.replicas).toBeGreaterThanOrEqual(2);
    const pod = spec.template.spec!;
    const container = pod.containers[0];
    expect(pod.serviceAccountName).toBe('quillman-gateway');
    expect(container.readinessProbe?.httpGet?.path).toBe('/health/ready');
    expect(container.livenessProbe?.httpGet?.path).toBe('/health/live');
    expect(container.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources?.limits?.memory).toBeDefined();
    const env = envOf(gateway);
    expect(env.QUILLMAN_PROVIDER).toBe('kubernetes');
    // The drain (QUILLMAN_DRAIN_SECONDS) fits in the grace period the kubelet gives before SIGKILL.
    expect(Number(env.QUILLMAN_DRAIN_SECONDS)).toBeLessThan(pod.terminationGracePeriodSeconds!);

    const labels = spec.template.metadata!.labels!;
    const service = find<KubernetesObject & { spec: { selector: Record<string, string>; ports: { targetPort: string }[] } }>(base, 'Service', 'quillman');
    expect(labels).toMatchObject(service.spec.selector);
    expect(container.ports?.map((p) => p.name)).toContain(service.spec.ports[0].targetPort);
    const budget = find<KubernetesObject & { spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable: number } }>(base, 'PodDisruptionBudget', 'quillman-gateway');
    expect(labels).toMatchObject(budget.spec.selector.matchLabels);
    expect(budget.spec.maxUnavailable).toBeLessThan(spec.replicas!);
  });

  it('workers: one GPU each on GPU nodes, a model cache, readiness; the claim label in the selector, which the gateways find', () => {
    const gateway = find<Workload>(base, 'Deployment', 'quillman-gateway');
    const worker = find<Workload>(base, 'Deployment', 'quillman-worker');
    const pod = worker.spec!.template.spec!;
    const container = pod.containers[0];
    expect(container.resources?.limits?.['nvidia.com/gpu']).toBe(1);
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toContainEqual(expect.objectContaining({ key: 'nvidia.com/gpu', effect: 'NoSchedule' }));
    expect(container.readinessProbe).toBeDefined();
    expect(container.volumeMounts?.find((m) => m.name === 'models')?.mountPath).toBe('/models');
    expect(pod.volumes?.find((v) => v.name === 'models')).toBeDefined();
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(container.args).toEqual(expect.arrayContaining(['--host', '0.0.0.0']));

    // A claim relabels the pod out of the Deployment's selector (its ReplicaSet refills the buffer).
    expect(worker.spec!.selector.matchLabels).toMatchObject({ [CLAIM_LABEL]: 'free' });
    const templateLabels = worker.spec!.template.metadata!.labels!;
    const env = envOf(gateway);
    const selector = String(env.QUILLMAN_KUBE_SELECTOR);
    expect(selector).not.toContain(CLAIM_LABEL);
    for (const term of selector.split(',')) {
      const [key, value] = term.split('=');
      expect(templateLabels[key], term).toBe(value);
    }
    expect(Number(env.QUILLMAN_KUBE_PORT)).toBe(container.ports![0].containerPort);
  });

  it('the CPU overlay runs our cascade engine without GPUs', () => {
    const worker = find<Workload>(cascade, 'Deployment', 'quillman-worker');
    const pod = worker.spec!.template.spec!;
    const container = pod.containers[0];
    expect(container.args?.slice(0, 3)).toEqual(['worker', '--engine', 'cascade']);
    expect(JSON.stringify(container.resources)).not.toContain('nvidia.com/gpu');
    expect(pod.nodeSelector).toBeUndefined();
    expect(pod.tolerations).toBeUndefined();
    expect(container.readinessProbe?.httpGet?.path).toBe('/health');
    // Everything else is the base's.
    expect(find<Workload>(cascade, 'Deployment', 'quillman-gateway')).toEqual(find<Workload>(base, 'Deployment', 'quillman-gateway'));
  });

  it('both are accepted by the API server (server-side apply), and the scheduler puts workers where they belong', async () => {
    const c = cluster();
    const appliedBase = await applyInto(c, base, 'quillman-gpu', { 'quillman-worker': 2 });
    const appliedCascade = await applyInto(c, cascade, 'quillman-cpu', {});
    expect(appliedBase.map((o) => o.kind).sort()).toEqual(base.map((o) => o.kind).sort());
    expect(appliedCascade).toHaveLength(cascade.length);
    for (const o of appliedBase) expect(o.metadata?.uid, `${o.kind}/${o.metadata?.name}`).toBeDefined();

    // The real controllers make the pods and the real scheduler places them: GPU workers on the GPU
    // node (its taint tolerated, one of its GPUs each). The stand-in node cannot pull Kyutai's image
    // and says so, as a real node without registry access would.
    const pods = await eventually(async () => {
      const list = (await c.core.listNamespacedPod({ namespace: 'quillman-gpu' })).items as V1Pod[];
      return list.length === 2 && list.every((p) => p.spec?.nodeName) ? list : undefined;
    }, 60_000, 'the GPU workers to be scheduled');
    for (const pod of pods) {
      expect(pod.spec!.nodeName).toBe('gpu-node-1');
      await eventually(async () => {
        const now = await c.core.readNamespacedPod({ name: pod.metadata!.name!, namespace: 'quillman-gpu' });
        return now.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImagePull';
      }, 30_000, 'the stand-in node to report the image it cannot run');
    }
    // More GPU workers than the node has GPUs: the rest wait for a GPU.
    await c.setWorkerReplicas(6, 'quillman-gpu');
    await eventually(async () => {
      const events = (await c.core.listNamespacedEvent({ namespace: 'quillman-gpu' })).items;
      return events.some((e) => e.reason === 'FailedScheduling' && /Insufficient nvidia\.com\/gpu/.test(e.message ?? ''));
    }, 60_000, 'the scheduler to report too few GPUs');
    await c.setWorkerReplicas(0, 'quillman-gpu');
  });
});

describe("the gateway's Role: enough, and no more", () => {
  const namespace = 'quillman-rbac';
  let access: AuthorizationV1Api;
  let core: CoreV1Api;
  let role: V1Role;

  beforeAll(async () => {
    const c = cluster();
    const base = await c.render(BASE);
    await applyInto(c, base, namespace, {});
    role = find<KubernetesObject & V1Role>(base, 'Role', 'quillman-gateway');
    const gateway = c.controlPlane.withToken(await c.serviceAccountToken('quillman-gateway', namespace), namespace);
    access = gateway.makeApiClient(AuthorizationV1Api);
    core = gateway.makeApiClient(CoreV1Api);
  });

  const may = async (verb: string, resource: string, options: { group?: string; subresource?: string; ns?: string | null } = {}) => {
    const review = await access.createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: { verb, resource, group: options.group ?? '', subresource: options.subresource, namespace: options.ns === null ? undefined : (options.ns ?? namespace) } } },
    });
    return !!review.status?.allowed;
  };

  it('grants exactly the permissions the gateway checks for at start-up', async () => {
    const granted = role.rules!.flatMap((r) => r.resources!.flatMap((resource) => r.verbs.map((verb) => `${r.apiGroups![0]}/${resource}/${verb}`))).sort();
    expect(granted).toEqual(NEEDED_PERMISSIONS.map((p) => `${p.group}/${p.resource}/${p.verb}`).sort());
    for (const p of NEEDED_PERMISSIONS) expect(await may(p.verb, p.resource, { group: p.group }), `${p.verb} ${p.resource}`).toBe(true);
  });

  it('forbids everything else: other verbs on pods, secrets, workloads, other namespaces, the cluster', async () => {
    const forbidden: [string, string, { group?: string; subresource?: string; ns?: string | null }?][] = [
      ['get', 'pods'],
      ['create', 'pods'],
      ['update', 'pods'],
      ['create', 'pods', { subresource: 'exec' }],
      ['get', 'pods', { subresource: 'log' }],
      ['patch', 'pods', { subresource: 'status' }],
      ['get', 'secrets'],
      ['list', 'secrets'],
      ['get', 'configmaps'],
      ['get', 'leases', { group: 'coordination.k8s.io' }],
      ['patch', 'deployments', { group: 'apps' }],
      ['update', 'deployments', { group: 'apps', subresource: 'scale' }],
      ['delete', 'replicasets', { group: 'apps' }],
      ['create', 'services'],
      ['create', 'events'],
      ['create', 'serviceaccounts', { subresource: 'token' }],
      ['create', 'roles', { group: 'rbac.authorization.k8s.io' }],
      ['list', 'pods', { ns: 'default' }],
      ['delete', 'pods', { ns: 'kube-system' }],
      ['create', 'leases', { group: 'coordination.k8s.io', ns: 'kube-node-lease' }],
      ['list', 'nodes', { ns: null }],
      ['list', 'namespaces', { ns: null }],
    ];
    const allowed: string[] = [];
    for (const [verb, resource, options] of forbidden) if (await may(verb, resource, options)) allowed.push(`${verb} ${resource}${options?.subresource ? `/${options.subresource}` : ''} in ${options?.ns ?? namespace}`);
    expect(allowed).toEqual([]);
    // And by trying, as an attacker holding the token would.
    const status = async (call: Promise<unknown>) => call.then(() => 200, (err: { code?: number }) => err.code);
    expect(await status(core.listNamespacedSecret({ namespace }))).toBe(403);
    expect(await status(core.createNamespacedPod({ namespace, body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'x' }] } } }))).toBe(403);
    expect(await status(core.listNamespacedPod({ namespace: 'default' }))).toBe(403);
  });
});
