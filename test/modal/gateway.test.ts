/**
 * The gateway with the modal provider, in this process: real sockets from a
 * client through the gateway and Modal's connect-token endpoint (played by
 * the control-plane STAND-IN) to the worker in the sandbox. A sandbox that
 * dies mid-conversation; what it costs in /metrics; what /health shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewaySettingsSchema } from '../../src/gateway/config.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { createPool, type WorkerInfo, type WorkerPool } from '../../src/pool/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { waitFor } from '../pool/helpers.js';
import { connectClient, isError, isHandshake } from '../helpers/ws-client.js';
import { startModalTestEnv, type ModalTestEnv } from './harness.js';

let env: ModalTestEnv;
let pool: WorkerPool;
let gateway: Gateway;
let chatUrl: string;

/** A dollar a second makes the estimate easy to check against the seconds. */
const PRICE_PER_HOUR = 3600;

beforeAll(async () => {
  env = await startModalTestEnv();
  pool = createPool(env.config({ workers: 2, warm: 1, modal: { prices: { L40S: PRICE_PER_HOUR }, restart: { initialDelaySeconds: 0.2 } } }), silentLogger);
  await pool.start();
  gateway = await startGateway({ settings: GatewaySettingsSchema.parse({ host: '127.0.0.1', port: 0 }), pool, log: silentLogger });
  chatUrl = `ws://127.0.0.1:${gateway.port}/api/chat`;
  await waitFor('the warm sandbox to be ready', () => pool.snapshot().workers.some((w) => w.state === 'idle'), 60_000);
});

afterAll(async () => {
  await gateway?.close();
  await pool?.close();
  await env?.close();
});

async function metrics(): Promise<Map<string, number>> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(quillman_modal_\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) values.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return values;
}

const busy = (worker: WorkerInfo | undefined) => worker?.state === 'busy';

describe('the gateway on Modal sandboxes', () => {
  it('tells the client at once when its sandbox dies mid-conversation, and the pool replaces the sandbox', async () => {
    const client = connectClient(chatUrl);
    await client.waitFor(isHandshake, 60_000, 'handshake');
    const worker = pool.snapshot().workers.find((w) => busy(w))!;
    const sandboxId = String(worker.details?.sandboxId);

    const killedAt = performance.now();
    await env.standIn.kill(sandboxId);
    const closed = await client.closed;
    const toldAfterMs = performance.now() - killedAt;
    expect(client.errors().join('\n')).toMatch(/stopped unexpectedly/);
    expect(closed.code).toBeGreaterThanOrEqual(1000);
    // The gateway's own stall detection would take 15 s; this is the socket's close, passed on.
    expect(toldAfterMs).toBeLessThan(5000);

    await waitFor('a new sandbox serving', () => pool.snapshot().workers.find((w) => w.state === 'idle' && w.details?.sandboxId !== sandboxId), 60_000);
    const next = connectClient(chatUrl);
    await next.waitFor(isHandshake, 60_000, 'handshake on the new sandbox');
    next.ws.close();
    await next.closed;
    expect(env.standIn.sandbox(sandboxId)?.state).toBe('finished');
  });

  it('meters sandbox-seconds by state and GPU type with an estimated cost, and shows its sandboxes in /health', async () => {
    await waitFor('an idle sandbox', () => pool.snapshot().workers.some((w) => w.state === 'idle'), 60_000);
    const before = await metrics();
    const client = connectClient(chatUrl);
    await client.waitFor(isHandshake, 60_000, 'handshake');

    const health = (await (await fetch(`${gateway.url}/health`)).json()) as { pool: { workers: WorkerInfo[] } };
    const shown = health.pool.workers.find((w) => w.state === 'busy');
    expect(shown).toMatchObject({ provider: 'modal', details: { sandboxId: expect.stringMatching(/^sb-/), gpuType: 'L40S', app: expect.stringMatching(/^quillman-test-/), access: 'connect token' } });
    expect(JSON.stringify(health)).not.toMatch(/Bearer/);

    await waitFor('a second of conversation on the meter', async () => {
      const m = await metrics();
      return (m.get('quillman_modal_sandbox_seconds_total{state="busy",gpu="L40S"}') ?? 0) - (before.get('quillman_modal_sandbox_seconds_total{state="busy",gpu="L40S"}') ?? 0) >= 1;
    }, 30_000);
    expect(client.errors()).toEqual([]);
    client.ws.close();
    await client.closed;

    // Released once the worker's side closed: the sandbox is metered as idle again.
    const after = await waitFor('the sandbox metered idle again', async () => {
      const m = await metrics();
      return (m.get('quillman_modal_sandboxes{state="idle",gpu="L40S"}') ?? 0) >= 1 && m;
    });
    for (const state of ['starting', 'idle', 'busy']) {
      expect(after.get(`quillman_modal_sandbox_seconds_total{state="${state}",gpu="L40S"}`)).toBeGreaterThan(0);
    }
    // Billed seconds at a dollar a second, read in the same scrape (moments apart, hence the tolerance).
    const billed = ['starting', 'idle', 'busy', 'stopping'].reduce((sum, s) => sum + (after.get(`quillman_modal_sandbox_seconds_total{state="${s}",gpu="L40S"}`) ?? 0), 0);
    const cost = after.get('quillman_modal_estimated_cost_dollars_total{gpu="L40S"}') ?? 0;
    expect(cost).toBeGreaterThan(before.get('quillman_modal_estimated_cost_dollars_total{gpu="L40S"}') ?? 0);
    expect(Math.abs(cost - billed)).toBeLessThan(0.5);
  });
});
