/**
 * Settings of the kubernetes provider, `pool.kubernetes`. See
 * docs/kubernetes.md for what each one does in a cluster.
 */
import { z } from 'zod';
import { hostedWorkerFields, seconds, urlPath } from '../../settings-schema.js';
import { CLAIM_LABEL, GATEWAY_LABEL } from './labels.js';

/** A label selector as kubectl takes it; the API server checks the grammar, we check what it must not name. */
const selector = z
  .string({ error: 'must be the worker pods\' label selector, e.g. "app.kubernetes.io/name=quillman,app.kubernetes.io/component=worker"' })
  .trim()
  .min(1, 'must name the worker pods, e.g. "app.kubernetes.io/name=quillman,app.kubernetes.io/component=worker"')
  .superRefine((value, ctx) => {
    for (const label of [CLAIM_LABEL, GATEWAY_LABEL]) {
      if (value.includes(label)) {
        ctx.addIssue({ code: 'custom', message: `must not mention ${label}: the gateways set it when they claim a pod, so a selector on it would hide claimed pods from them` });
      }
    }
  });

/** A DNS-1123 label: namespaces, and our identity inside Lease names and label values. */
const dnsLabel = z
  .string()
  .trim()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be lower-case letters, digits and "-", starting and ending with a letter or digit')
  .max(63);

export const kubernetesSettingsSchema = z
  .strictObject({
    /** Worker pods: those of the worker Deployment's template, whatever their claim label says. */
    selector,
    /** Default: the kubeconfig context's namespace, in a pod its own namespace, else "default". */
    namespace: dnsLabel.optional(),
    /** A kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the pod's service account in a cluster. */
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    /**
     * Where the in-cluster service-account files are looked for, as a prefix of
     * /var/run/secrets/kubernetes.io/serviceaccount ("" in a pod). Lets a gateway
     * outside a pod use a copied token, and the simulated nodes of the tests
     * mount one per pod.
     */
    inClusterRoot: z.string().default(''),
    /** The worker container's port and websocket path (Kyutai's server: 8998, /api/chat). */
    port: z.number().int().min(1).max(65_535).default(8998),
    path: urlPath.default('/api/chat'),
    scheme: z.enum(['ws', 'wss']).default('ws'),
    /** The extended resource the worker pods request, shown per worker in /health. */
    gpuResource: z.string().min(1).default('nvidia.com/gpu'),
    /** The first part of this gateway's name in Leases and claim labels (default: the pod name); a random suffix follows. */
    identity: dnsLabel.max(42).optional(),
    /** A gateway whose Lease has not been renewed for this long is taken for dead: its pods are reclaimed. */
    leaseSeconds: seconds(600).min(2, 'must be at least 2 s').default(15),
    /** How often the Lease is renewed; default a third of leaseSeconds. */
    renewSeconds: seconds(300).optional(),
    ...hostedWorkerFields,
    /** One conversation per pod: a pod is deleted after its conversation, for fresh model state. */
    slots: z.literal(1, { error: 'must be 1: a worker pod serves one conversation and is deleted after it' }).default(1),
    /** After a conversation, how long the gateway may take to claim a fresh pod before it starts over. */
    resetTimeoutSeconds: seconds(86_400).default(600),
  })
  .superRefine((s, ctx) => {
    if (s.renewSeconds !== undefined && s.renewSeconds >= s.leaseSeconds) {
      ctx.addIssue({ code: 'custom', path: ['renewSeconds'], message: `must be below leaseSeconds (${s.leaseSeconds}); a third of it is usual` });
    }
  });

export type KubernetesSettings = z.output<typeof kubernetesSettingsSchema>;
