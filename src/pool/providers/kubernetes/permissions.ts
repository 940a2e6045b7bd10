/**
 * What the gateway does with the API server, asked of it once at start
 * (SelfSubjectAccessReview): a gateway without one of these stops at once
 * with the list of what is missing and where it is granted, instead of
 * failing an hour later at its first reclaim. deploy/kubernetes/base's Role
 * grants exactly these (test/kubernetes/manifests.test.ts).
 */
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { WorkerStartError } from '../../worker/host.js';
import { apiStatus, describeApiError } from './api-errors.js';

export const NEEDED_PERMISSIONS: { group: string; resource: string; verb: string }[] = [
  ...['list', 'watch', 'patch', 'delete'].map((verb) => ({ group: '', resource: 'pods', verb })),
  ...['list', 'watch', 'create', 'update', 'delete'].map((verb) => ({ group: 'coordination.k8s.io', resource: 'leases', verb })),
];

export async function checkPermissions(kubeConfig: KubeConfig, namespace: string, source: string, log: Logger): Promise<void> {
  const api = kubeConfig.makeApiClient(AuthorizationV1Api);
  let answers: { need: (typeof NEEDED_PERMISSIONS)[number]; allowed: boolean }[];
  try {
    answers = await Promise.all(
      NEEDED_PERMISSIONS.map(async (need) => {
        const review = await api.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace, ...need } } } });
        return { need, allowed: !!review.status?.allowed };
      }),
    );
  } catch (err) {
    const status = apiStatus(err);
    if (status === 401 || status === undefined) throw new WorkerStartError(`Kubernetes: ${describeApiError(err, 'check its permissions', namespace)}`, { retryable: status === undefined });
    // Some clusters do not offer access reviews; the calls themselves will tell.
    log.debug({ err: (err as Error).message }, 'could not check permissions with SelfSubjectAccessReview');
    return;
  }
  const missing = answers.filter((a) => !a.allowed).map(({ need }) => `${need.verb} ${need.resource}`);
  if (missing.length) {
    throw new WorkerStartError(
      `Kubernetes: the gateway may not ${missing.join(', ')} in namespace ${namespace} (credentials: ${source}). ` +
        "Grant it the Role in deploy/kubernetes/base/gateway-role.yaml, bound to its service account, or point --kube-namespace at the workers' namespace.",
    );
  }
}
