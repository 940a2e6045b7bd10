/**
 * Many gateways, one fleet of worker pods, against a real API server,
 * controller-manager and scheduler. The chart (deploy/kubernetes/base, with
 * the worker container swapped for our loopback worker) runs as shipped:
 * three gateway pods with in-cluster credentials and the chart's Role, twenty
 * worker pods placed on simulated GPU nodes by their nvidia.com/gpu request.
 * The simulated nodes (a stand-in, harness/simulated-nodes.ts) run every pod
 * as a real process of this checkout.
 */
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLAIM_LABEL, CLAIMED, FREE, GATEWAY_LABEL, isReady } from '../../src/pool/providers/kubernetes/labels.js';
import { eventually } from '../helpers/gateway.js';
import { isAudio, isEvent, isHandshake } from '../helpers/ws-client.js';
import { metricIn } from '../gateway/helpers.js';
import { NAMESPACE, TEST_OVERLAY, WORKER_SELECTOR, type TestCluster } from './harness/cluster.js';
import { connectChat, conversationsOf, logOf, runsInConversation, shortConversation, streamTone, workerRuns } from './harness/callers.js';
import { useCluster } from './harness/use-cluster.js';

const WORKERS = 20;
const GATEWAYS = 3;
const CALLERS = 60;

const cluster = useCluster({ gpuNodes: 2, gpusPerNode: 16 });

beforeAll(async () => {
  const c = cluster();
  const objects = (await c.render(TEST_OVERLAY)) as (KubernetesObject & { spec?: { replicas?: number } })[];
  for (const o of objects) if (o.kind === 'Deployment') o.spec!.replicas = o.metadata?.name === 'quillman-worker' ? WORKERS : GATEWAYS;
  await c.apply(objects);
  await eventually(
    async () => (await freeReady(c)).length === WORKERS && (await c.readyGateways()).length === GATEWAYS,
    240_000,
    `${WORKERS} worker pods and ${GATEWAYS} gateways to be ready`,
    500,
  );
}, 300_000);

async function freeReady(c: TestCluster): Promise<V1Pod[]> {
  return (await c.pods(WORKER_SELECTOR)).filter((p) => isReady(p) && !p.metadata?.deletionTimestamp && p.metadata?.labels?.[CLAIM_LABEL] === FREE);
}

/** Worker pods claimed by the gateway running in pod `gatewayPod` (its identity is the pod name plus a suffix). */
async function claimedBy(c: TestCluster, gatewayPod: string): Promise<V1Pod[]> {
  return (await c.pods(WORKER_SELECTOR)).filter((p) => p.metadata?.labels?.[CLAIM_LABEL] === CLAIMED && p.metadata.labels[GATEWAY_LABEL]?.startsWith(`${gatewayPod}-`));
}

async function metricsOf(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('many gateways, one fleet of worker pods', () => {
  it(`${CALLERS} callers race for ${WORKERS} worker pods through ${GATEWAYS} gateways: each is served, never two on one pod`, async () => {
    const c = cluster();
    const gateways = await c.readyGateways();
    expect(gateways).toHaveLength(GATEWAYS);
    const conversationsBefore = workerRuns(c).reduce((n, r) => n + conversationsOf(r), 0);

    const started = performance.now();
    const results = await Promise.all(Array.from({ length: CALLERS }, (_, i) => shortConversation(gateways[i % GATEWAYS].url, { caller: `10.1.0.${i + 1}` })));
    const seconds = (performance.now() - started) / 1000;

    const failures = results.flatMap((r, i) => (r.served ? [] : [`caller ${i}: ${r.failure}`]));
    expect(failures, gateways.map((g) => `--- ${g.pod}\n${logOf(c, g.pod, 15)}`).join('\n')).toEqual([]);
    // Nobody had a pod waiting (warm 0): every caller was told its place in its gateway's line first.
    for (const r of results) {
      expect(r.positions.length).toBeGreaterThan(0);
      for (const p of r.positions) expect(p).toBeGreaterThanOrEqual(1);
    }

    // The workers' own account: no worker process ever held a second conversation (our worker
    // would refuse one with HTTP 503, which the gateways would count as worker_refused).
    const perWorker = workerRuns(c).map(conversationsOf);
    expect(Math.max(...perWorker)).toBe(1);
    expect(perWorker.reduce((a, b) => a + b, 0) - conversationsBefore).toBe(CALLERS);
    let conflicts = 0;
    for (const g of gateways) {
      const text = await metricsOf(g.url);
      expect(metricIn(text, 'quillman_errors_total', { kind: 'worker_refused' })).toBe(0);
      conflicts += metricIn(text, 'quillman_kubernetes_claims_total', { outcome: 'conflict' });
    }
    console.log(`[kubernetes] ${CALLERS} conversations over ${GATEWAYS} gateways and ${WORKERS} warm pods in ${seconds.toFixed(1)} s; ${workerRuns(c).length} worker pods ran; ${conflicts} lost claim races`);

    // Every used pod was deleted, unused claims went back, and the buffer is whole again.
    await eventually(
      async () => (await freeReady(c)).length === WORKERS && (await c.pods(WORKER_SELECTOR)).every((p) => p.metadata?.labels?.[CLAIM_LABEL] === FREE),
      120_000,
      `the buffer to be back at ${WORKERS} free pods, none claimed`,
      500,
    );
  }, 400_000);

  it('a worker pod deleted mid-conversation: the caller is told at once, even when the worker process hangs', async () => {
    const c = cluster();
    const [gateway] = await c.readyGateways();
    const client = connectChat(gateway.url, '10.2.0.1');
    await client.waitFor(isHandshake, 60_000);
    const stop = streamTone(client);
    await client.waitFor(isAudio, 20_000);
    const run = await eventually(async () => {
      const runs = await runsInConversation(c);
      return runs.length === 1 ? runs[0] : undefined;
    }, 10_000, 'the worker holding the conversation');
    // Frozen, it can neither answer nor close its socket: only the API server can tell the gateway.
    c.nodes.signal(run.pod, 'SIGSTOP');
    const deleted = performance.now();
    // A long grace period, so that the kubelet's SIGKILL cannot be what tells the caller.
    await c.core.deleteNamespacedPod({ name: run.pod, namespace: NAMESPACE, gracePeriodSeconds: 60 });
    const closed = await Promise.race([client.closed, new Promise<undefined>((r) => setTimeout(r, 30_000))]);
    const toldMs = performance.now() - deleted;
    stop();
    c.nodes.signal(run.pod, 'SIGKILL');
    expect(closed, 'the caller was not told within 30 s').toBeDefined();
    expect(client.events()).toContainEqual(expect.objectContaining({ type: 'error', code: 'worker_lost' }));
    console.log(`[kubernetes] worker pod deleted mid-conversation: caller told after ${Math.round(toldMs)} ms`);
    // Generous for a loaded machine, and far below the 60 s after which the kubelet would have killed the worker.
    expect(toldMs).toBeLessThan(10_000);
  }, 120_000);

  it('SIGTERM drains a gateway: readiness off, callers warned, closed after the grace period, its pods and Lease gone', async () => {
    const c = cluster();
    const [gateway] = await c.readyGateways();
    const client = connectChat(gateway.url, '10.3.0.1');
    await client.waitFor(isHandshake, 60_000);
    const stop = streamTone(client);
    await client.waitFor(isAudio, 20_000);
    const held = await claimedBy(c, gateway.pod);
    expect(held.length).toBeGreaterThan(0);
    const identity = held[0].metadata!.labels![GATEWAY_LABEL];
    const run = c.nodes.runOf(gateway.pod)!;

    // What `kubectl delete pod`, a rollout or a node drain does: the kubelet sends SIGTERM.
    await c.core.deleteNamespacedPod({ name: gateway.pod, namespace: NAMESPACE });
    await client.waitFor(isEvent('ending_soon'), 20_000);
    // Out of the Service: its readiness answers 503 while it drains (the kubelet's probe reads it).
    const readiness = await fetch(`${gateway.url}/health/ready`);
    expect(readiness.status).toBe(503);
    // Whoever still reaches it is told to come back (another replica will serve them).
    const late = connectChat(gateway.url, '10.3.0.2');
    await late.closed;
    expect(late.errors().join(' ')).toMatch(/restarting/);

    const closed = await client.closed;
    stop();
    expect(closed.code).toBe(1001);
    expect(client.events()).toContainEqual(expect.objectContaining({ type: 'ended', reason: 'shutdown' }));
    await eventually(() => run.exit, 30_000, 'the gateway to exit');
    expect(run.exit).toBe('exited with code 0');
    // It gave up its pods and its Lease on the way out; nothing is left for the others to reclaim.
    expect((await claimedBy(c, gateway.pod)).map((p) => p.metadata?.name), logOf(c, gateway.pod, 60)).toEqual([]);
    const leases = await c.coordination.listNamespacedLease({ namespace: NAMESPACE });
    expect(leases.items.map((l) => l.metadata?.name)).not.toContain(identity);
  }, 120_000);

  it('a gateway killed with SIGKILL: its pods are reclaimed by the others within the Lease time, and they go on', async () => {
    const c = cluster();
    await eventually(async () => (await c.readyGateways()).length === GATEWAYS, 120_000, 'every gateway to be ready');
    const [victim, ...others] = await c.readyGateways();
    const callers = [connectChat(victim.url, '10.4.0.1'), connectChat(victim.url, '10.4.0.2')];
    for (const caller of callers) await caller.waitFor(isHandshake, 60_000);
    const held = await claimedBy(c, victim.pod);
    expect(held.length).toBeGreaterThanOrEqual(2);
    const identity = held[0].metadata!.labels![GATEWAY_LABEL];
    // Claimed pods have left their ReplicaSet (no controller owns them: drains leave them alone).
    await eventually(async () => (await claimedBy(c, victim.pod)).every((p) => !p.metadata?.ownerReferences?.length), 20_000, 'the ReplicaSet to let go of the claimed pods');

    c.nodes.signal(victim.pod, 'SIGKILL');
    const killed = performance.now();
    for (const caller of callers) await caller.closed;
    const names = held.map((p) => p.metadata!.name!);
    await eventually(
      async () => (await c.pods(WORKER_SELECTOR)).every((p) => !names.includes(p.metadata!.name!) || !!p.metadata?.deletionTimestamp),
      60_000,
      `the dead gateway's pods (${names.join(', ')}) to be reclaimed`,
      100,
    );
    const reclaimMs = performance.now() - killed;
    console.log(`[kubernetes] gateway killed with ${held.length} pods claimed: reclaimed after ${Math.round(reclaimMs)} ms (Lease 3 s)`);
    // Bounded by the Lease duration (3 s here) and a sweep; far from never.
    expect(reclaimMs).toBeLessThan(30_000);

    // The others go on.
    for (const [i, g] of others.entries()) {
      const r = await shortConversation(g.url, { caller: `10.4.1.${i + 1}` });
      expect(r.served, r.failure).toBe(true);
    }
    // And the dead gateway's Lease is cleared away.
    await eventually(async () => !(await c.coordination.listNamespacedLease({ namespace: NAMESPACE })).items.some((l) => l.metadata?.name === identity), 30_000, 'the dead Lease to be removed');
  }, 180_000);
});
