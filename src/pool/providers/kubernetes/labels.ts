/**
 * The names the gateways write on worker pods and Leases, and what they read
 * from a pod. The claim protocol (docs/kubernetes.md):
 *
 *   free pod (quillman.dev/claim=free, Ready) ──patch with its resourceVersion──▶
 *     claimed (quillman.dev/claim=claimed, quillman.dev/gateway=<holder>)
 *
 * The worker Deployment's selector includes quillman.dev/claim=free, so a
 * claimed pod leaves its ReplicaSet, which starts a replacement. A claimed pod
 * serves one conversation and is deleted; one claimed but never used is
 * handed back (relabelled free), and its ReplicaSet adopts it again.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { urlHost } from '../../urls.js';

export const CLAIM_LABEL = 'quillman.dev/claim';
export const FREE = 'free';
export const CLAIMED = 'claimed';
/** On a claimed pod: the identity of the gateway that holds it (also its Lease's name). */
export const GATEWAY_LABEL = 'quillman.dev/gateway';
export const CLAIMED_AT_ANNOTATION = 'quillman.dev/claimed-at';
/**
 * A pod that shares an address with others (hostNetwork, or the tests'
 * simulated nodes) says here which port it really listens on; without it the
 * provider's `port` setting (the container port) is used.
 */
export const PORT_ANNOTATION = 'quillman.dev/port';
/** The cluster autoscaler must not remove a node in the middle of a conversation. */
export const SAFE_TO_EVICT_ANNOTATION = 'cluster-autoscaler.kubernetes.io/safe-to-evict';
/** On the gateways' Leases, so that they can watch each other's and nothing else. */
export const LEASE_LABEL = 'quillman.dev/lease';
export const LEASE_LABEL_VALUE = 'gateway';

export function isReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !!pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

export function isDeleting(pod: V1Pod): boolean {
  return !!pod.metadata?.deletionTimestamp;
}

export function isFinished(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

export function claimOf(pod: V1Pod): { state: string | undefined; holder: string | undefined } {
  const labels = pod.metadata?.labels ?? {};
  return { state: labels[CLAIM_LABEL], holder: labels[GATEWAY_LABEL] };
}

/** A pod a gateway may claim now: free, Ready, not on its way out, with an address. */
export function isClaimable(pod: V1Pod): boolean {
  return claimOf(pod).state === FREE && isReady(pod) && !isDeleting(pod) && !!pod.status?.podIP;
}

/** Restarts of the worker container: a restart while claimed means the conversation's process is gone. */
export function restartsOf(pod: V1Pod): number {
  return (pod.status?.containerStatuses ?? []).reduce((sum, s) => sum + (s.restartCount ?? 0), 0);
}

export function podEndpoint(pod: V1Pod, settings: { scheme: string; port: number; path: string }): string {
  const ip = pod.status!.podIP!;
  const announced = Number(pod.metadata?.annotations?.[PORT_ANNOTATION]);
  const port = Number.isInteger(announced) && announced > 0 && announced < 65_536 ? announced : settings.port;
  return `${settings.scheme}://${urlHost(ip)}:${port}${settings.path}`;
}

/** "1 nvidia.com/gpu" from the pod's requests or limits, for /health. */
export function gpusOf(pod: V1Pod, resource: string): string | undefined {
  let total = 0;
  for (const c of pod.spec?.containers ?? []) {
    const value = c.resources?.limits?.[resource] ?? c.resources?.requests?.[resource];
    if (value !== undefined) total += Number(value) || 0;
  }
  return total > 0 ? `${total} ${resource}` : undefined;
}

/** A gateway identity from the pod (or host) name: DNS-label characters, room left for a random suffix. */
export function identityFrom(name: string, suffix: string): string {
  const base = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 42)
    .replace(/-+$/, '');
  return `${base || 'gateway'}-${suffix}`;
}
