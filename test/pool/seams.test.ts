/**
 * The provider seams, through the in-memory host (a stand-in, see
 * contract/memory-host.ts): slots, host progress and start errors,
 * adoption at start, details in snapshots, the metrics hook, and settings
 * validated from whatever registry the pool is given.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GatewaySettingsSchema } from '../../src/gateway/config.js';
import { startGateway } from '../../src/gateway/server.js';
import { parsePoolConfig, PoolConfigError } from '../../src/pool/config.js';
import { createPool, type PoolConfigInput } from '../../src/pool/index.js';
import { PROVIDERS } from '../../src/pool/registry.js';
import { NoWorkersError, type Lease, type WorkerPool } from '../../src/pool/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { MemoryHost, memoryProvider } from './contract/memory-host.js';
import { never, waitFor } from './helpers.js';

const pools: WorkerPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function registryWith(host: MemoryHost) {
  return [...PROVIDERS, memoryProvider(() => host)];
}

function memoryPool(host: MemoryHost, pool: Record<string, unknown> = {}, settings: Record<string, unknown> = {}): WorkerPool {
  const config = { provider: 'memory', maxQueue: 4, maxWorkers: 1, warm: 0, ...pool, memory: settings } as unknown as PoolConfigInput;
  const created = createPool(config, silentLogger, { registry: registryWith(host) });
  pools.push(created);
  return created;
}

const FAST_RESTARTS = { initialDelaySeconds: 0.05, maxDelaySeconds: 0.2, maxStartFailures: 2, cooldownSeconds: 1 };

describe('provider seams', () => {
  it('puts up to `slots` conversations on one worker, frees a slot at once, and drains it before a restart', async () => {
    const host = new MemoryHost();
    const pool = memoryPool(host, { warm: 1 }, { slots: 3 });
    await pool.start();
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => pool.acquire({ signal: never() })));
    expect(new Set([a, b, c].map((l) => l.worker.id))).toEqual(new Set(['memory-1']));
    expect(pool.snapshot().workers[0]).toMatchObject({ state: 'busy', slots: 3, conversations: 3 });

    let d: Lease | undefined;
    void pool.acquire({ signal: never() }).then((l) => (d = l));
    await waitFor('d to queue', () => pool.snapshot().queued === 1);
    // Others still hold the worker: a slot given back is free at once, no reset to wait for.
    a.release();
    await waitFor('d to be served', () => d);
    expect(d!.worker.id).toBe('memory-1');

    // A conversation that went wrong: no new ones until the others end, then a restart.
    b.release({ healthy: false, reason: 'stalled' });
    expect(pool.snapshot().workers[0]).toMatchObject({ state: 'busy', conversations: 2 });
    expect(pool.snapshot().workers[0].detail).toMatch(/^taking no new conversations until its current ones end \(a conversation went wrong: stalled\)/);
    let e: Lease | undefined;
    void pool.acquire({ signal: never() }).then((l) => (e = l));
    c.release();
    await new Promise((r) => setTimeout(r, 50));
    expect(e).toBeUndefined();
    expect(host.started).toHaveLength(1);
    d!.release();
    await waitFor('e to be served by a restarted instance', () => e);
    expect(host.started).toHaveLength(2);
    expect(host.started[0].running).toBe(false);
    expect(e!.worker).toMatchObject({ id: 'memory-1', restarts: 1 });
    e!.release();
  });

  it("relays the host's start-up progress to waiting callers, and a start that keeps moving is not timed out", async () => {
    const messages = Array.from({ length: 12 }, (_, i) => `waiting for a GPU (${i + 1})`);
    // 12 reports 100 ms apart outlast the 0.5 s ready timeout, which each report restarts.
    const host = new MemoryHost({ hostProgress: messages, hostProgressIntervalMs: 100, startup: ['warming', 'ready'] });
    const pool = memoryPool(host, {}, { readyTimeoutSeconds: 0.5 });
    await pool.start();
    const warming: string[] = [];
    const lease = await pool.acquire({ signal: never(), onWarmingUp: (m) => warming.push(m) });
    expect(warming).toContain('Starting a worker: waiting for a GPU (1). Loading models can take a few minutes.');
    expect(warming).toContain('Starting a worker: waiting for a GPU (12). Loading models can take a few minutes.');
    expect(warming.some((m) => m.includes('loading (1)'))).toBe(true);
    expect(host.started).toHaveLength(1);
    lease.release();
  });

  it('counts a host still starting after the ready timeout as a failed start, and says which setting to raise', async () => {
    const host = new MemoryHost({ hangs: true });
    const pool = memoryPool(host, {}, { readyTimeoutSeconds: 0.2, restart: { ...FAST_RESTARTS, maxStartFailures: 1 } });
    await pool.start();
    const err = await pool.acquire({ signal: never() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWorkersError);
    expect((err as Error).message).toMatch(/^Worker memory-1 failed to start once; the last time it was not ready within 0\.2 s \(raise pool\.memory\.readyTimeoutSeconds if loading takes longer\)\.\nFix the memory host/);
  });

  it('ends an instance the host delivers after the ready timeout, and counts the start as failed', async () => {
    const host = new MemoryHost({ hangs: true, finishesAfterAbort: true });
    const pool = memoryPool(host, {}, { readyTimeoutSeconds: 0.2, restart: { ...FAST_RESTARTS, maxStartFailures: 1 } });
    await pool.start();
    const err = await pool.acquire({ signal: never() }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/the last time it was not ready within 0\.2 s/);
    expect(host.started).toHaveLength(1);
    expect(host.live.size).toBe(0);
  });

  it('gives up at once on a start the host says cannot work, and backs off on one it may retry', async () => {
    const fatal = new MemoryHost({ startError: { message: 'Modal token missing: run `modal token new`', retryable: false } });
    const pool = memoryPool(fatal, { warm: 1 });
    await expect(pool.start()).rejects.toThrow('Modal token missing');
    await expect(pool.acquire({ signal: never() })).rejects.toThrow(/^Modal token missing: run `modal token new`/);
    expect(pool.snapshot().workers[0]).toMatchObject({ state: 'down', restarts: 0 });

    const busy = new MemoryHost({ startError: { message: 'no L40S free in the region', retryable: true } });
    const retrying = memoryPool(busy, {}, { restart: FAST_RESTARTS });
    await retrying.start();
    const err = await retrying.acquire({ signal: never() }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^Worker memory-1 failed to start 2 times in a row; the last time no L40S free in the region\.\nFix/);
    expect(retrying.snapshot().workers[0].restarts).toBe(1);
  });

  it('takes over what an earlier gateway left running, up to maxWorkers, and serves with it', async () => {
    const host = new MemoryHost();
    const left = ['a', 'b', 'c'].map((id) => host.leaveBehind(`earlier-${id}`));
    const pool = memoryPool(host, { maxWorkers: 2 });
    await pool.start();
    expect(pool.snapshot().workers.map((w) => w.id)).toEqual(['memory-1', 'memory-2']);
    expect(left.map((i) => i.running)).toEqual([true, true, false]);
    // Checked like a fresh start before anyone gets them.
    await waitFor('the adopted workers to be ready', () => pool.snapshot().workers.every((w) => w.state === 'idle'));
    expect(left[0].probes).toBeGreaterThan(0);
    const lease = await pool.acquire({ signal: never() });
    expect((await lease.dial()).url).toBe(left[0].url);
    // Nothing new was started.
    expect(host.started).toHaveLength(3);
    lease.release();
    await pool.close();
    expect(left.every((i) => !i.running)).toBe(true);
  });

  it("shows the provider's details per worker in /health, and its own metrics in /metrics", async () => {
    const host = new MemoryHost();
    host.gpus.push('L40S');
    const pool = memoryPool(host, { warm: 1 });
    await pool.start();
    await waitFor('ready', () => pool.snapshot().workers[0]?.state === 'idle');
    const gateway = await startGateway({ settings: GatewaySettingsSchema.parse({ host: '127.0.0.1', port: 0 }), pool, log: silentLogger });
    try {
      const health = (await (await fetch(`${gateway.url}/health`)).json()) as { pool: { workers: unknown[] } };
      const instance = host.started[0].url.replace(/^memory:\/\/(.*)\/api\/chat$/, '$1');
      expect(health.pool.workers).toEqual([expect.objectContaining({ id: 'memory-1', provider: 'memory', gpu: 'L40S', slots: 1, conversations: 0, details: { instance, gpuType: 'L40S' } })]);
      const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
      expect(metrics).toContain('quillman_memory_instances 1');
      expect(metrics).toMatch(/quillman_workers\{state="idle"\} 1/);
    } finally {
      await gateway.close();
    }
  });

  it("validates a registered provider's settings with its own schema and lists it among the choices", () => {
    const registry = registryWith(new MemoryHost());
    const problems = (input: unknown) => {
      try {
        parsePoolConfig(input, 'pool', registry);
      } catch (err) {
        if (err instanceof PoolConfigError) return err.problems.join('\n');
        throw err;
      }
      return '';
    };
    expect(problems({ provider: 'memory', memory: { slot: 2 } })).toMatch(/^pool\.memory: unknown setting\(s\) "slot"; known settings are slots, readyTimeoutSeconds, resetTimeoutSeconds, restart$/);
    expect(problems({ provider: 'nowhere' })).toMatch(/pool\.provider: must be "local" \(start workers here\), "remote" \(use running workers by URL\), .*or "memory" \(test stand-in\)/);
    expect(problems({ provider: 'memory', memory: {}, warm: 3, maxWorkers: 2 })).toMatch(/pool\.warm: is 3 but at most 2/);
    expect(parsePoolConfig({ provider: 'memory', memory: { slots: 2 } }, 'pool', registry)).toMatchObject({ provider: 'memory', maxWorkers: 1, memory: { slots: 2, readyTimeoutSeconds: 600 } });
  });
});
