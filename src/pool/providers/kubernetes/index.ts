/**
 * The `kubernetes` provider: worker pods of a Deployment, claimed one per
 * conversation by compare-and-set on the API server, across any number of
 * gateways. See host.ts (the seats), fleet.ts (informers, Lease, claims,
 * reclaims) and docs/kubernetes.md.
 */
import { defineProvider } from '../../provider.js';
import { HostedProvider } from '../../worker/hosted-provider.js';
import { KubernetesHost } from './host.js';
import { kubernetesSettingsSchema } from './settings.js';

const capabilities = { launches: true, fixedSet: false, gpus: true };

/** Pods one gateway holds at once unless told otherwise: each is a conversation it relays. */
export const DEFAULT_KUBERNETES_MAX_WORKERS = 16;

export const kubernetesProvider = defineProvider({
  name: 'kubernetes',
  summary: 'claim worker pods in a Kubernetes cluster',
  description:
    "Claims a Ready pod of the worker Deployment per conversation (a compare-and-set on the API server, so no two gateways ever share one), deletes it after the conversation, and reclaims the pods of gateways whose Lease expired; any number of gateway replicas. The Deployment's replicas are the warm buffer. See docs/kubernetes.md.",
  capabilities,
  settings: kubernetesSettingsSchema,
  example: { selector: 'app.kubernetes.io/name=quillman,app.kubernetes.io/component=worker' },
  required: {
    key: 'selector',
    hint: 'the worker pods\' label selector, e.g. "app.kubernetes.io/name=quillman,app.kubernetes.io/component=worker" (--kube-selector)',
  },
  maxWorkersText: '16 pods claimed at once per gateway',
  engineLabel: 'Kubernetes worker pods',
  flags: [
    { key: 'selector', flag: '--kube-selector <labels>', env: 'QUILLMAN_KUBE_SELECTOR', value: 'string', description: "label selector of the worker pods (without quillman.dev/claim, which the gateways set)" },
    { key: 'namespace', flag: '--kube-namespace <name>', env: 'QUILLMAN_KUBE_NAMESPACE', value: 'string', description: 'namespace of the worker pods', defaultText: "the kubeconfig context's, or the pod's own" },
    { key: 'kubeconfig', flag: '--kubeconfig <file>', env: 'QUILLMAN_KUBECONFIG', value: 'path', description: 'kubeconfig file', defaultText: '$KUBECONFIG, ~/.kube/config, or the service account in a pod' },
    { key: 'context', flag: '--kube-context <name>', env: 'QUILLMAN_KUBE_CONTEXT', value: 'string', description: 'kubeconfig context', defaultText: 'the current one' },
    { key: 'port', flag: '--kube-port <n>', env: 'QUILLMAN_KUBE_PORT', value: 'int', description: "worker container's port" },
    { key: 'path', flag: '--kube-path <path>', env: 'QUILLMAN_KUBE_PATH', value: 'string', description: "worker's websocket path" },
    { key: 'gpuResource', flag: '--kube-gpu-resource <name>', env: 'QUILLMAN_KUBE_GPU_RESOURCE', value: 'string', description: 'extended resource of the GPUs the worker pods request (shown in /health)' },
    { key: 'leaseSeconds', flag: '--kube-lease-seconds <s>', env: 'QUILLMAN_KUBE_LEASE_SECONDS', value: 'number', description: "a gateway whose Lease is not renewed for this long is taken for dead and its pods reclaimed" },
    { key: 'readyTimeoutSeconds', flag: '--kube-claim-timeout <s>', env: 'QUILLMAN_KUBE_CLAIM_TIMEOUT', value: 'number', description: 'how long a caller may wait for a worker pod to become ready and free' },
    { key: 'inClusterRoot', flag: '--kube-in-cluster-root <dir>', env: 'QUILLMAN_KUBE_IN_CLUSTER_ROOT', value: 'path', description: 'prefix of the service-account files (/var/run/secrets/kubernetes.io/serviceaccount), for a copied token', defaultText: '(none)' },
  ],
  resolve(settings, pool) {
    return { maxWorkers: pool.maxWorkers ?? DEFAULT_KUBERNETES_MAX_WORKERS, settings };
  },
  create({ settings, log, events, pool }) {
    return new HostedProvider({ name: 'kubernetes', capabilities, host: new KubernetesHost(settings, log), settings }, { settings, log, events, pool });
  },
});
