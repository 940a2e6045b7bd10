/** Reading @kubernetes/client-node's errors: the HTTP status, and what to tell the user about it. */

/** The HTTP status of an API error (ApiException.code), or undefined for a network failure. */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown; statusCode?: unknown })?.code ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own message (Status.message) when there is one. */
export function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // not JSON
    }
  } else if (body && typeof (body as { message?: unknown }).message === 'string') {
    return (body as { message: string }).message;
  }
  const message = (err as Error)?.message ?? String(err);
  // ApiException's message carries the whole response; its first line is enough.
  return message.split('\n')[0];
}

/** "create leases" → a sentence naming the missing permission and where it is granted. */
export function describeApiError(err: unknown, doing: string, namespace: string): string {
  const status = apiStatus(err);
  if (status === 401) return `the API server did not accept the gateway's credentials while trying to ${doing} (HTTP 401): check the kubeconfig or the pod's service account token`;
  if (status === 403) {
    return `the gateway may not ${doing} in namespace ${namespace} (HTTP 403: ${apiMessage(err)}); grant it the Role in deploy/kubernetes/base/gateway-role.yaml, bound to its service account`;
  }
  if (status === undefined) return `could not reach the API server to ${doing}: ${apiMessage(err)}`;
  return `could not ${doing} (HTTP ${status}: ${apiMessage(err)})`;
}
