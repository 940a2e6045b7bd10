/**
 * The provider contract: what every provider of workers must do for the
 * pool and the gateway, whatever runs the workers. Each provider has a
 * `<name>.contract.test.ts` that calls `describeProviderContract` with a
 * harness: how to configure it, how to end one of its workers from outside,
 * how to hold a conversation over a lease's dial information, and how to
 * list what it left running. Providers that need an environment (a
 * control-plane stand-in, an API server) start it in `setup` and stop it in
 * `teardown`.
 *
 * See docs/pool.md, "Adding a provider".
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type PoolConfigInput } from '../../../src/pool/index.js';
import type { AnyProviderDefinition } from '../../../src/pool/provider.js';
import { PROVIDERS } from '../../../src/pool/registry.js';
import { NoWorkersError, type DialInfo, type Lease, type WorkerInfo, type WorkerPool } from '../../../src/pool/types.js';
import { silentLogger } from '../../../src/util/logger.js';
import { recordStates, waitFor } from '../helpers.js';

export interface PoolShape {
  /** Workers: exactly these for a fixed set; maxWorkers for a provider that launches them. */
  workers: number;
  /** Conversations each worker holds at once. */
  slots?: number;
  /** Workers started at once (launching providers). */
  warm?: number;
}

export interface Conversation {
  close(): Promise<void>;
}

export interface ProviderHarness {
  /** Providers to create pools from; the built-in registry when absent (stand-ins add theirs). */
  registry?: readonly AnyProviderDefinition[];
  /** Most slots its workers can be given here (1 where a worker serves one conversation only). */
  maxSlots: number;
  /** Pool settings for healthy workers of this shape; maxQueue is the suite's. */
  config(shape: PoolShape): Promise<PoolConfigInput>;
  /**
   * Pool settings whose workers never become ready, and the text the user
   * must read. Launching providers: every start fails (maxStartFailures 3,
   * restarts 0.05 s doubling); fixed sets: an unreachable worker.
   */
  broken(): Promise<{ config: PoolConfigInput; failure: RegExp }>;
  /** Ends a running worker from outside, the way it dies in the field (process killed, sandbox exits, pod deleted). */
  kill(worker: WorkerInfo): Promise<void>;
  /** Holds a conversation as the gateway would, over the lease's dial information; resolves once the worker took it. */
  converse(dial: DialInfo, worker: WorkerInfo): Promise<Conversation>;
  /** What the provider started that still runs (process ids, sandbox ids, pod names). */
  running(): Promise<string[]>;
  /** Extra checks on one lease's dial information (per-lease credentials). */
  checkDial?(dial: DialInfo, worker: WorkerInfo): void;
  /** Its workers serve one conversation each and are replaced (WorkerHost.singleUse: Kubernetes pods). */
  singleUse?: boolean;
}

export interface ContractOptions {
  /** Starts the provider's environment once for the whole suite. */
  setup(): Promise<ProviderHarness>;
  teardown?(harness: ProviderHarness): Promise<void>;
  /** Generous: every wait is for an event, this is only the point of giving up. */
  timeoutMs?: number;
}

const never = () => new AbortController().signal;

/** Registers the contract suite for one provider. */
export function describeProviderContract(name: string, options: ContractOptions): void {
  describe(`provider contract: ${name}`, () => {
    let harness: ProviderHarness;
    const pools: WorkerPool[] = [];
    const conversations: Conversation[] = [];
    const timeout = options.timeoutMs ?? 20_000;

    beforeAll(async () => {
      harness = await options.setup();
    });
    afterEach(async () => {
      await Promise.all(conversations.splice(0).map((c) => c.close().catch(() => undefined)));
      await Promise.all(pools.splice(0).map((p) => p.close()));
    });
    afterAll(async () => {
      if (harness) await options.teardown?.(harness);
    });

    const newPool = async (config: PoolConfigInput): Promise<WorkerPool> => {
      const pool = createPool({ maxQueue: 4, ...config }, silentLogger, { registry: harness.registry });
      pools.push(pool);
      return pool;
    };
    const launches = () => (harness.registry ?? PROVIDERS).find((p) => p.name === name)!.capabilities.launches;
    const start = async (shape: PoolShape) => {
      const pool = await newPool(await harness.config(shape));
      await pool.start();
      return pool;
    };
    const converse = async (lease: Lease) => {
      const conversation = await harness.converse(await lease.dial(), lease.worker);
      conversations.push(conversation);
      return conversation;
    };
    const idleCount = (pool: WorkerPool) => pool.snapshot().workers.filter((w) => w.state === 'idle').length;

    it('start → ready → lease → conversation → release → reset → idle, and the same worker serves again', async () => {
      const pool = await start({ workers: 1, warm: 1 });
      await waitFor('the worker to be ready', () => idleCount(pool) === 1, timeout);
      const states = recordStates(pool);
      const lease = await pool.acquire({ signal: never() });
      expect(lease.worker.provider).toBe(name);
      expect(pool.snapshot().workers[0]).toMatchObject({ state: 'busy', conversations: 1 });
      const conversation = await converse(lease);
      await conversation.close();
      lease.release();
      if (harness.singleUse) {
        // A single-use worker stops after its conversation; the next caller gets a new one.
        await waitFor('the used worker to be gone', () => !pool.snapshot().workers.some((w) => w.id === lease.worker.id), timeout);
        expect(states.get(lease.worker.id)!.at(-1)).toBe('stopping');
        const next = await pool.acquire({ signal: never() });
        expect(next.worker.id).not.toBe(lease.worker.id);
        // …on a fresh instance: a different address.
        expect(next.worker.url).not.toBe(lease.worker.url);
        next.release();
        return;
      }
      await waitFor('the worker to be idle again', () => idleCount(pool) === 1, timeout);
      const seen = states.get(lease.worker.id)!;
      expect(seen[0]).toBe('busy');
      expect(seen.at(-1)).toBe('idle');
      expect(seen.every((s) => s === 'busy' || s === 'resetting' || s === 'idle')).toBe(true);
      const again = await pool.acquire({ signal: never() });
      expect(again.worker.id).toBe(lease.worker.id);
      again.release();
    });

    it('gives dial information per lease, and none once the lease is over', async () => {
      const pool = await start({ workers: 2, warm: 2 });
      await waitFor('both workers ready', () => idleCount(pool) === 2, timeout);
      const leases = [await pool.acquire({ signal: never() }), await pool.acquire({ signal: never() })];
      expect(new Set(leases.map((l) => l.worker.id)).size).toBe(2);
      for (const lease of leases) {
        const dial = await lease.dial();
        expect(dial.url).toMatch(/^[a-z]+:\/\//);
        harness.checkDial?.(dial, lease.worker);
        // The gateway can really reach the worker with it.
        const conversation = await converse(lease);
        await conversation.close();
      }
      leases[0].release();
      await expect(leases[0].dial()).rejects.toThrow(/released/);
      leases[1].release();
    });

    it('fires `lost` when a leased worker ends, and does not hand it out while it is gone', async () => {
      const pool = await start({ workers: 1, warm: 1 });
      await waitFor('the worker to be ready', () => idleCount(pool) === 1, timeout);
      const lease = await pool.acquire({ signal: never() });
      await converse(lease);
      await harness.kill(lease.worker);
      await waitFor('the lease to be lost', () => lease.lost.aborted, timeout);
      expect(String(lease.lost.reason)).toContain(lease.worker.id);
      const worker = pool.snapshot().workers.find((w) => w.id === lease.worker.id);
      expect(worker?.state).not.toBe('busy');
      expect(worker?.conversations ?? 0).toBe(0);
      // Its release afterwards changes nothing.
      lease.release();
      if (launches()) {
        // A launching provider replaces it: the next conversation gets a running worker.
        const next = await pool.acquire({ signal: never() });
        await converse(next);
        next.release();
      } else {
        expect(pool.snapshot().workers[0].state).toBe('down');
      }
    });

    it('never puts more conversations on a worker than its slots, and queues the rest', async () => {
      const slots = Math.min(2, harness.maxSlots);
      const pool = await start({ workers: 2, slots, warm: 2 });
      const leases = await Promise.all(Array.from({ length: 2 * slots }, () => pool.acquire({ signal: never() })));
      const perWorker = new Map<string, number>();
      for (const lease of leases) perWorker.set(lease.worker.id, (perWorker.get(lease.worker.id) ?? 0) + 1);
      expect([...perWorker.values()]).toEqual([slots, slots]);
      expect(pool.snapshot().workers.map((w) => [w.slots, w.conversations])).toEqual([
        [slots, slots],
        [slots, slots],
      ]);

      const positions: number[] = [];
      let extra: Lease | undefined;
      void pool.acquire({ signal: never(), onQueued: (p) => positions.push(p) }).then((l) => (extra = l));
      await waitFor('the extra caller to be queued', () => positions.length > 0, timeout);
      expect(positions[0]).toBe(1);
      expect(pool.snapshot()).toMatchObject({ queued: 1 });
      // No more workers than allowed were started for it.
      expect(pool.snapshot().workers).toHaveLength(2);
      expect(extra).toBeUndefined();

      leases[0].release();
      await waitFor('the extra caller to be served', () => extra, timeout);
      // The slot that came free serves it (a single-use provider's replacement worker, in its place).
      if (!harness.singleUse) expect(extra!.worker.id).toBe(leases[0].worker.id);
      const busiest = Math.max(...pool.snapshot().workers.map((w) => w.conversations));
      expect(busiest).toBeLessThanOrEqual(slots);
      for (const lease of [...leases.slice(1), extra!]) lease.release();
    });

    it('gives up with the reason the user must read, after backing off', async () => {
      const { config, failure } = await harness.broken();
      const pool = await newPool(config);
      await pool.start();
      const details: string[] = [];
      pool.onChange(() => {
        for (const w of pool.snapshot().workers) if (w.detail && details.at(-1) !== w.detail) details.push(w.detail);
      });
      const err = await pool.acquire({ signal: never() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NoWorkersError);
      expect((err as Error).message).toMatch(failure);
      expect(pool.snapshot().accepting).toBe(false);
      if (pool.snapshot().workers.some((w) => w.restarts > 0)) {
        // Restarts back off: each wait doubles.
        const waits = details.map((d) => /restarting in ([\d.]+) s$/.exec(d)?.[1]).filter((s): s is string => !!s).map(Number);
        expect(waits.length).toBeGreaterThanOrEqual(2);
        expect(waits[1]).toBeCloseTo(waits[0] * 2);
        expect((err as Error).message).toMatch(/failed to start \d+ times in a row; the last time/);
      }
      await waitFor('nothing left running', async () => (await harness.running()).length === 0, timeout);
    });

    it('close() ends leases, turns waiters away and leaves nothing running', async () => {
      const pool = await start({ workers: 1, warm: 1 });
      const lease = await pool.acquire({ signal: never() });
      await converse(lease);
      const waiting = pool.acquire({ signal: never() }).catch((e: unknown) => e);
      // (A fixed set's workers are not the provider's to stop: it starts nothing.)
      if (launches()) expect((await harness.running()).length).toBeGreaterThan(0);
      await pool.close();
      expect(lease.lost.aborted).toBe(true);
      expect(await waiting).toBeInstanceOf(NoWorkersError);
      expect(pool.snapshot().workers).toEqual([]);
      await waitFor('nothing left running', async () => (await harness.running()).length === 0, timeout);
    });
  });
}
