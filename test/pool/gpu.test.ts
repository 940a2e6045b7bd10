/** GPU pinning: each worker process sees exactly one GPU through CUDA_VISIBLE_DEVICES. */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../src/pool/types.js';
import { usePools, never, healthOf, healthUrl, newMarker, nodeCommand, waitFor } from './helpers.js';

const GPU_REPORTER = nodeCommand(resolve(import.meta.dirname, 'fixtures/gpu-reporter.mjs'));
const marker = newMarker();
const startPool = usePools(marker, 30, { local: { command: GPU_REPORTER } });



describe('GPU pinning', () => {
  it('pins workers round-robin to the listed GPUs, up to workersPerGpu each', async () => {
    const pool = startPool({ warm: 0, local: { gpus: '3,5', workersPerGpu: 2, env: { CUDA_VISIBLE_DEVICES: '0,1,2,3,4,5' } } });
    await pool.start();
    expect(pool.snapshot().maxWorkers).toBe(4);
    const leases = await Promise.all([0, 1, 2, 3].map(() => pool.acquire({ signal: never() })));
    const pinned = leases.map((l) => l.worker.gpu);
    expect(pinned.filter((g) => g === '3')).toHaveLength(2);
    expect(pinned.filter((g) => g === '5')).toHaveLength(2);
    for (const lease of leases) {
      expect((await healthOf(healthUrl(lease.worker.url))).cudaVisibleDevices).toBe(lease.worker.gpu);
    }
    for (const lease of leases) lease.release();
  });

  it('keeps a GPU across restarts and gives a freed one to the next worker started', async () => {
    const pool = startPool({ warm: 0, idleTimeoutSeconds: 0.3, local: { gpus: ['0', '1'] } });
    await pool.start();
    const [a, b]: Lease[] = await Promise.all([pool.acquire({ signal: never() }), pool.acquire({ signal: never() })]);
    expect(new Set([a.worker.gpu, b.worker.gpu])).toEqual(new Set(['0', '1']));

    a.release({ healthy: false, reason: 'test' });
    const c = await pool.acquire({ signal: never() });
    expect(c.worker).toMatchObject({ id: a.worker.id, gpu: a.worker.gpu, restarts: 1 });

    // Idle beyond warm (0) it is stopped while b still holds the other GPU; a new worker gets the free one.
    c.release();
    await waitFor('the idle worker to be stopped', () => pool.snapshot().workers.length === 1, 5000);
    const d = await pool.acquire({ signal: never() });
    expect(d.worker).toMatchObject({ id: 'local-3', gpu: a.worker.gpu });
    expect((await healthOf(healthUrl(d.worker.url))).cudaVisibleDevices).toBe(a.worker.gpu);
    d.release();
    b.release();
  });
});
