/**
 * Callers and what the simulated nodes saw: a short conversation as a caller
 * holds it through a gateway, and readers of the pods' process logs. No
 * vitest here: the benchmark uses them too.
 */
import { connectClient, isAudio, isHandshake, streamTone, type RecordingClient } from '../../helpers/ws-client.js';

export { streamTone };
import { CLAIM_LABEL, CLAIMED } from '../../../src/pool/providers/kubernetes/labels.js';
import { WORKER_SELECTOR, type TestCluster } from './cluster.js';
import type { ContainerRun } from './simulated-nodes.js';

export interface ShortConversation {
  client: RecordingClient;
  /** Places in line this caller was told, in order. */
  positions: number[];
  served: boolean;
  /** The pool worker id from the `session` event. */
  worker?: string;
  /** Why it was not served, when it was not. */
  failure?: string;
}

/**
 * One short conversation: connect, wait (in line if need be) for the
 * handshake, speak until the first reply audio comes back, hang up.
 */
export async function shortConversation(gatewayUrl: string, options: { caller?: string; waitMs?: number } = {}): Promise<ShortConversation> {
  const client = connectChat(gatewayUrl, options.caller);
  const waitMs = options.waitMs ?? 180_000;
  const result: ShortConversation = { client, positions: [], served: false };
  let stop: (() => void) | undefined;
  try {
    await client.waitFor(isHandshake, waitMs, 'the handshake');
    stop = streamTone(client);
    await client.waitFor(isAudio, 30_000, 'reply audio');
    result.served = true;
  } catch (err) {
    result.failure = `${(err as Error).message}; errors: ${client.errors().join(' | ')}`;
  } finally {
    stop?.();
    client.ws.close(1000);
    await Promise.race([client.closed, new Promise((r) => setTimeout(r, 10_000))]);
  }
  for (const event of client.events()) if (event.type === 'queue') result.positions.push(event.position as number);
  result.worker = client.events().find((e) => e.type === 'session')?.worker as string | undefined;
  return result;
}

/** A caller's websocket to a gateway, as if through the ingress: `caller` is its address there. */
export function connectChat(gatewayUrl: string, caller?: string): RecordingClient {
  return connectClient(`${gatewayUrl.replace(/^http/, 'ws')}/api/chat`, caller ? { headers: { 'x-forwarded-for': caller } } : {});
}

/** Conversations a worker process started, from its log. */
export function conversationsOf(run: ContainerRun): number {
  return run.output.filter((line) => line.includes('"msg":"conversation started"')).length;
}

/** The worker runs (loopback workers), not the gateways. */
export function workerRuns(cluster: TestCluster): ContainerRun[] {
  return cluster.nodes.runs().filter((r) => r.pod.startsWith('quillman-worker-'));
}

/** A gateway pod's log lines, for failure messages. */
export function logOf(cluster: TestCluster, pod: string, lines = 40): string {
  return cluster.nodes
    .runs()
    .filter((r) => r.pod === pod)
    .flatMap((r) => r.output)
    .slice(-lines)
    .join('\n');
}

/**
 * The worker runs holding a conversation now: claimed pods, not being deleted,
 * whose worker logged one (a pod deleted a moment ago may still be running).
 */
export async function runsInConversation(cluster: TestCluster): Promise<ContainerRun[]> {
  const live = (await cluster.pods(WORKER_SELECTOR)).filter((p) => p.metadata?.labels?.[CLAIM_LABEL] === CLAIMED && !p.metadata.deletionTimestamp).map((p) => p.metadata!.name!);
  return workerRuns(cluster).filter((r) => r.exitedAt === undefined && live.includes(r.pod) && conversationsOf(r) === 1);
}
