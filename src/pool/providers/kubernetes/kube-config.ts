/**
 * Where the gateway finds the API server and its credentials: a kubeconfig
 * file when one is named (or $KUBECONFIG, or ~/.kube/config), else the pod's
 * own service account (in-cluster). Which namespace: the setting, else the
 * kubeconfig context's, else the pod's, else "default".
 */
import { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesSettings } from './settings.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ClusterAccess {
  kubeConfig: KubeConfig;
  namespace: string;
  /** How the credentials were found, for the start-up log and error messages. */
  source: string;
}

type AccessSettings = Pick<KubernetesSettings, 'kubeconfig' | 'context' | 'namespace' | 'inClusterRoot'>;

export function loadClusterAccess(settings: AccessSettings, env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  const kc = new KubeConfig();
  let source: string;
  const file = settings.kubeconfig ?? firstExisting(env.KUBECONFIG?.split(':')) ?? firstExisting([join(env.HOME ?? homedir(), '.kube/config')]);
  const tokenFile = `${settings.inClusterRoot}${SERVICE_ACCOUNT_DIR}/token`;
  if (file) {
    if (!existsSync(file)) throw new Error(`the kubeconfig file ${file} does not exist (pool.kubernetes.kubeconfig / --kubeconfig)`);
    kc.loadFromFile(file);
    source = `kubeconfig ${file}`;
  } else if (env.KUBERNETES_SERVICE_HOST && existsSync(tokenFile)) {
    kc.loadFromCluster(settings.inClusterRoot);
    source = `the pod's service account (${settings.inClusterRoot}${SERVICE_ACCOUNT_DIR})`;
  } else {
    throw new Error(
      'no way to reach the Kubernetes API server: run the gateway in a pod (with a service account token mounted), ' +
        'or name a kubeconfig file with --kubeconfig (QUILLMAN_KUBECONFIG), $KUBECONFIG or ~/.kube/config',
    );
  }
  if (settings.context) {
    if (!kc.getContextObject(settings.context)) throw new Error(`the kubeconfig has no context "${settings.context}" (pool.kubernetes.context / --kube-context)`);
    kc.setCurrentContext(settings.context);
  }
  if (!kc.getCurrentCluster()) throw new Error(`${source} names no cluster for its current context`);
  const namespace = settings.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return { kubeConfig: kc, namespace, source };
}

function firstExisting(paths: string[] | undefined): string | undefined {
  return paths?.find((p) => p && existsSync(p));
}
