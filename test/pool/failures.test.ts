/** Workers that will not start: the user must learn why, in the worker's own words. */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NoWorkersError } from '../../src/pool/types.js';
import { usePools, never, newMarker, nodeCommand, processesWithMarker, waitFor } from './helpers.js';

const FIXTURES = resolve(import.meta.dirname, 'fixtures');
const marker = newMarker();
const startPool = usePools(marker, 20);
const FAST_RESTARTS = { initialDelaySeconds: 0.05, maxDelaySeconds: 0.2, maxStartFailures: 3 };


/** A worker command that dies at start-up the way a GPU worker does when the card is full. */
const OUT_OF_MEMORY = nodeCommand('-e', `"console.log('loading'); console.error('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB'); process.exit(1)" -- --port {port}`);



describe('workers that fail to start', () => {
  it('gives up on a crash-looping worker and fails waiting callers with its stderr', async () => {
    const pool = startPool({ warm: 0, maxWorkers: 1, local: { command: OUT_OF_MEMORY, restart: { ...FAST_RESTARTS, cooldownSeconds: 1 } } });
    await pool.start();
    const warming: string[] = [];
    const err = await pool.acquire({ signal: never(), onWarmingUp: (m) => warming.push(m) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWorkersError);
    const message = (err as Error).message;
    expect(message).toMatch(/^Worker local-1 failed to start 3 times in a row; the last time its process exited with code 1\./);
    expect(message).toContain('| torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB');
    expect(message).not.toContain('| loading');
    expect(message).toMatch(/Fix the worker command \(pool\.local\.command: .*\)/);
    expect(message).toMatch(/A new worker will be tried for conversations that start in 1 s or later/);
    expect(warming.length).toBeGreaterThan(0);

    const [worker] = pool.snapshot().workers;
    expect(worker).toMatchObject({ id: 'local-1', state: 'down', restarts: 2 });
    expect(worker.detail).toContain('CUDA out of memory');
    expect(pool.snapshot().accepting).toBe(false);

    // Within the cool-down the answer comes at once, without another attempt:
    // no process was started for it (each try of this command counts a restart).
    await expect(pool.acquire({ signal: never() })).rejects.toThrow(/CUDA out of memory/);
    expect(pool.snapshot().workers).toHaveLength(1);
    expect(pool.snapshot().workers[0].restarts).toBe(2);

    // After it, a conversation gets a fresh attempt (which fails the same way here).
    await new Promise((r) => setTimeout(r, 1100));
    await expect(pool.acquire({ signal: never() })).rejects.toThrow(/CUDA out of memory/);
    expect(pool.snapshot().workers.map((w) => w.id)).toEqual(['local-2']);
  });

  it('reports a command that does not exist from start(), and to callers', async () => {
    const pool = startPool({ warm: 1, maxWorkers: 1, local: { command: 'quillman-no-such-command worker --port {port}' } });
    await expect(pool.start()).rejects.toThrow(/ENOENT/);
    const err = await pool.acquire({ signal: never() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWorkersError);
    expect((err as Error).message).toMatch(/Worker local-1 could not be started: "quillman-no-such-command" was not found\. Install it, put it on the PATH, or give its full path in pool\.local\.command/);
  });

  it('kills a worker that is not ready within readyTimeoutSeconds', async () => {
    const silent = nodeCommand('-e', '"setInterval(() => {}, 1000)" -- --port {port}');
    const pool = startPool({ warm: 1, maxWorkers: 1, local: { command: silent, readyTimeoutSeconds: 0.5, restart: { ...FAST_RESTARTS, maxStartFailures: 1 } } });
    await pool.start();
    const [{ pid }] = pool.snapshot().workers;
    const err = await pool.acquire({ signal: never() }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/the last time it was not ready at http:\/\/127\.0\.0\.1:\d+\/health within 0\.5 s \(raise pool\.local\.readyTimeoutSeconds/);
    expect((err as Error).message).toContain('It wrote nothing to stdout or stderr.');
    expect(processesWithMarker(marker)).not.toContain(pid);
  });

  it('relays start-up progress to the caller waiting for the worker', async () => {
    const pool = startPool({ warm: 0, maxWorkers: 1, local: { command: nodeCommand(resolve(FIXTURES, 'slow-loader.mjs'), '--port {port} --load-ms 1200') } });
    await pool.start();
    const warming: string[] = [];
    const lease = await pool.acquire({ signal: never(), onWarmingUp: (m) => warming.push(m) });
    expect(warming[0]).toMatch(/^Starting a worker/);
    expect(warming.some((m) => /^Starting a worker: Loading the language model \(\d+%\)\. Loading models can take a few minutes\.$/.test(m))).toBe(true);
    expect(new Set(warming).size).toBe(warming.length);
    lease.release();
  });

  it('fails callers with the reason a worker gives for its failed start-up', async () => {
    const command = nodeCommand(resolve(FIXTURES, 'slow-loader.mjs'), `--port {port} --load-ms 100 --fail 'model file lm.gguf is missing: run quillman models pull'`);
    const pool = startPool({ warm: 1, maxWorkers: 1, local: { command, restart: { ...FAST_RESTARTS, maxStartFailures: 2 } } });
    await pool.start();
    const err = await pool.acquire({ signal: never() }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/failed to start 2 times in a row; the last time it reports that its start-up failed: model file lm\.gguf is missing: run quillman models pull/);
    await waitFor('its processes to be gone', () => processesWithMarker(marker).length === 0, 5000);
  });
});
