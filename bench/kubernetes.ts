/**
 * `npm run bench -- kubernetes [--runs 20] [--workers 10] [--kills 3]`
 *
 * The kubernetes provider against the tests' cluster (real etcd, API server,
 * controller-manager and scheduler; simulated nodes running every pod as a
 * process of this checkout, see test/kubernetes/harness/): two gateway pods
 * from the chart, a buffer of loopback worker pods. Measures
 *
 *   - connect → handshake through a gateway while a Ready pod is free (the claim is one PATCH),
 *     and the claim itself (the gateway's quillman_kubernetes_claim_seconds);
 *   - a burst of as many callers as there are free pods, over both gateways: time until all
 *     are talking, and claim races lost;
 *   - a worker pod deleted mid-conversation while its process hangs: time until the caller is told;
 *   - a gateway killed with SIGKILL while it holds pods: time until the others reclaimed them
 *     (Lease 3 s in the tests' overlay; 15 s by default).
 */
import { PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { parseArgs } from 'node:util';
import { CLAIM_LABEL, CLAIMED, FREE, GATEWAY_LABEL, isReady } from '../src/pool/providers/kubernetes/labels.js';
import { eventually } from '../test/helpers/gateway.js';
import { processesWithMarker } from '../test/helpers/processes.js';
import { isAudio, isHandshake } from '../test/helpers/ws-client.js';
import { connectChat, runsInConversation, shortConversation, streamTone } from '../test/kubernetes/harness/callers.js';
import { NAMESPACE, startCluster, TEST_OVERLAY, WORKER_SELECTOR, type TestCluster } from '../test/kubernetes/harness/cluster.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '20' }, workers: { type: 'string', default: '10' }, kills: { type: 'string', default: '3' } },
});
const RUNS = Number(values.runs);
const WORKERS = Number(values.workers);
const KILLS = Number(values.kills);

const say = (line: string) => process.stderr.write(`[bench kubernetes] ${line}\n`);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const row = (name: string, xs: number[], unit = 'ms') =>
  `| ${name} | ${xs.length} | ${pct(xs, 50).toFixed(0)} ${unit} | ${pct(xs, 95).toFixed(0)} ${unit} | ${Math.max(...xs).toFixed(0)} ${unit} |`;

async function freeReady(c: TestCluster): Promise<V1Pod[]> {
  return (await c.pods(WORKER_SELECTOR)).filter((p) => isReady(p) && !p.metadata?.deletionTimestamp && p.metadata?.labels?.[CLAIM_LABEL] === FREE);
}

async function metricSum(urls: string[], name: string, labels = ''): Promise<number> {
  let sum = 0;
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const line of text.split('\n')) if (line.startsWith(`${name}${labels}`) && (labels || line.startsWith(`${name} `))) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

const cluster = await startCluster({ gpuNodes: 2, gpusPerNode: 16 });
try {
  const objects = (await cluster.render(TEST_OVERLAY)) as (KubernetesObject & { spec?: { replicas?: number } })[];
  for (const o of objects) if (o.kind === 'Deployment') o.spec!.replicas = o.metadata?.name === 'quillman-worker' ? WORKERS : 2;
  await cluster.apply(objects);
  const waitForBuffer = () => eventually(async () => (await freeReady(cluster)).length === WORKERS && (await cluster.readyGateways()).length === 2, 300_000, 'the buffer and both gateways', 200);
  say(`waiting for ${WORKERS} worker pods and 2 gateways…`);
  await waitForBuffer();
  const gateways = await cluster.readyGateways();
  const urls = gateways.map((g) => g.url);

  // 1. One caller at a time, a free pod always there.
  const handshake: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await eventually(async () => (await freeReady(cluster)).length > 0, 120_000, 'a free pod', 100);
    const started = performance.now();
    const client = connectChat(urls[i % 2], `10.9.0.${i + 1}`);
    await client.waitFor(isHandshake, 60_000);
    handshake.push(performance.now() - started);
    client.ws.close(1000);
    await client.closed;
  }
  // For scale: the same kind of request from an unloaded client (a label on a node, not a worker).
  const raw: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await cluster.core.patchNode({ name: 'cpu-node-1', body: { metadata: { labels: { 'bench.quillman.dev/n': String(i) } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    raw.push(performance.now() - started);
  }
  const claimSum = await metricSum(urls, 'quillman_kubernetes_claim_seconds_sum');
  const claimCount = await metricSum(urls, 'quillman_kubernetes_claim_seconds_count');
  say(`sequential handshakes done (${RUNS})`);

  // 2. A burst as large as the buffer, over both gateways.
  await waitForBuffer();
  const conflictsBefore = await metricSum(urls, 'quillman_kubernetes_claims_total', '{outcome="conflict"}');
  const burstStart = performance.now();
  const burst = await Promise.all(Array.from({ length: WORKERS }, (_, i) => shortConversation(urls[i % 2], { caller: `10.9.1.${i + 1}` })));
  const burstMs = performance.now() - burstStart;
  const burstConflicts = (await metricSum(urls, 'quillman_kubernetes_claims_total', '{outcome="conflict"}')) - conflictsBefore;
  const refillStart = performance.now();
  await waitForBuffer();
  const refillMs = performance.now() - refillStart;
  say(`burst done (${burst.filter((b) => b.served).length}/${WORKERS} served)`);

  // 3. A pod deleted mid-conversation, its worker frozen.
  const told: number[] = [];
  for (let i = 0; i < Math.min(5, RUNS); i++) {
    const client = connectChat(urls[0], `10.9.2.${i + 1}`);
    await client.waitFor(isHandshake, 60_000);
    const stop = streamTone(client);
    await client.waitFor(isAudio, 20_000);
    const run = await eventually(async () => {
      const runs = await runsInConversation(cluster);
      return runs.length === 1 ? runs[0] : undefined;
    }, 10_000, 'the worker holding the conversation');
    cluster.nodes.signal(run.pod, 'SIGSTOP');
    const deleted = performance.now();
    await cluster.core.deleteNamespacedPod({ name: run.pod, namespace: NAMESPACE, gracePeriodSeconds: 60 });
    const closed = await Promise.race([client.closed, new Promise<undefined>((r) => setTimeout(r, 30_000))]);
    if (!closed) throw new Error(`the caller was not told within 30 s that pod ${run.pod} was deleted`);
    told.push(performance.now() - deleted);
    stop();
    cluster.nodes.signal(run.pod, 'SIGKILL');
  }
  say('pod deletions done');

  // 4. A gateway killed while holding pods.
  const reclaim: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    await waitForBuffer();
    const [victim] = await cluster.readyGateways();
    const callers = [connectChat(victim.url, `10.9.3.${2 * i + 1}`), connectChat(victim.url, `10.9.3.${2 * i + 2}`)];
    for (const c of callers) await c.waitFor(isHandshake, 60_000);
    const held = (await cluster.pods(WORKER_SELECTOR)).filter((p) => p.metadata?.labels?.[CLAIM_LABEL] === CLAIMED && p.metadata.labels[GATEWAY_LABEL]?.startsWith(`${victim.pod}-`));
    const names = held.map((p) => p.metadata!.name!);
    cluster.nodes.signal(victim.pod, 'SIGKILL');
    const killed = performance.now();
    await eventually(async () => (await cluster.pods(WORKER_SELECTOR)).every((p) => !names.includes(p.metadata!.name!) || !!p.metadata?.deletionTimestamp), 60_000, 'the reclaim', 50);
    reclaim.push(performance.now() - killed);
    for (const c of callers) await c.closed;
  }
  say('gateway kills done');

  console.log(`\nKubernetes provider, ${new Date().toISOString().slice(0, 10)}, ${WORKERS} warm worker pods, 2 gateways (simulated nodes, real control plane)\n`);
  console.log('| measurement | n | p50 | p95 | max |');
  console.log('|---|---|---|---|---|');
  console.log(row('connect → handshake, a free pod ready', handshake));
  console.log(`| the claim itself (PATCH with resourceVersion), mean | ${claimCount} | ${((claimSum / claimCount) * 1000).toFixed(1)} ms | | |`);
  console.log(row('a raw PATCH from the benchmark itself (for scale)', raw));
  console.log(`| burst of ${WORKERS} callers over 2 gateways: all talking | 1 | ${burstMs.toFixed(0)} ms | | | (${burstConflicts} claim races lost)`);
  console.log(`| buffer refilled to ${WORKERS} Ready pods after the burst | 1 | ${refillMs.toFixed(0)} ms | | | (simulated nodes: a process start, not an image pull and a model load)`);
  console.log(row('pod deleted mid-conversation (worker frozen) → caller told', told));
  console.log(row('gateway SIGKILLed → its pods reclaimed (Lease 3 s)', reclaim));
} finally {
  await cluster.stop();
  const left = processesWithMarker(cluster.marker);
  if (left.length) say(`processes left: ${left.join(', ')}`);
}
