/** Warm workers, idle stops, deaths, restarts and shutdown, over real worker processes. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NoWorkersError } from '../../src/pool/types.js';
import {
  basePortForFile,
  captureLog,
  isAlive,
  localConfig,
  never,
  newMarker,
  nodeCommand,
  processesWithMarker,
  recordStates,
  waitFor,
  usePools,
  workersIn,
} from './helpers.js';
import { MARKER_VARIABLE } from '../helpers/processes.js';

const FIXTURES = resolve(import.meta.dirname, 'fixtures');
const marker = newMarker();
const startPool = usePools(marker, 10);



describe('worker lifecycle', () => {
  it('starts the warm workers at start() and no more, relaying their log lines', async () => {
    const { log, records } = captureLog();
    const pool = startPool({ warm: 2, maxWorkers: 3 }, log);
    await pool.start();
    const started = pool.snapshot().workers;
    expect(started).toHaveLength(2);
    expect(started.every((w) => w.state === 'starting' && typeof w.pid === 'number')).toBe(true);
    await waitFor('both warm workers ready', () => workersIn(pool, 'idle') === 2);
    const ready = pool.snapshot().workers;
    expect(ready.map((w) => w.url)).toEqual([expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+\/api\/chat$/), expect.stringMatching(/\/api\/chat$/)]);
    // (tsx may add an esbuild helper under a worker: the check is on the workers themselves.)
    expect(processesWithMarker(marker)).toEqual(expect.arrayContaining(ready.map((w) => w.pid)));
    expect(pool.snapshot()).toMatchObject({ accepting: true, maxWorkers: 3, queued: 0 });
    // Our worker logs pino JSON on stderr: relayed as its message, at its level, under the worker's id.
    expect(records).toContainEqual(expect.objectContaining({ level: 30, worker: 'local-2', stream: 'stderr', msg: '[local-2] worker listening' }));
  });

  it('stops an extra worker after idleTimeoutSeconds and keeps the warm one', async () => {
    const pool = startPool({ warm: 1, maxWorkers: 2, idleTimeoutSeconds: 1 });
    await pool.start();
    const a = await pool.acquire({ signal: never() });
    const b = await pool.acquire({ signal: never() });
    expect(pool.snapshot().workers).toHaveLength(2);
    const pids = [a.worker.pid!, b.worker.pid!];
    a.release();
    b.release();
    await waitFor('one idle worker to be stopped', () => pool.snapshot().workers.length === 1, 10_000);
    const [kept] = pool.snapshot().workers;
    expect(pids).toContain(kept.pid);
    const stopped = pids.find((pid) => pid !== kept.pid)!;
    await waitFor('the stopped process to be gone', () => !isAlive(stopped));
    // The warm one stays, however long it idles.
    await new Promise((r) => setTimeout(r, 1500));
    expect(pool.snapshot().workers).toMatchObject([{ id: kept.id, state: 'idle', pid: kept.pid }]);
  });

  it('fires `lost` when a leased worker dies, restarts it, and serves the next conversation', async () => {
    const pool = startPool({ warm: 1, maxWorkers: 1, local: { restart: { initialDelaySeconds: 0.2 } } });
    await pool.start();
    const lease = await pool.acquire({ signal: never() });
    const pid = lease.worker.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('lost', () => lease.lost.aborted);
    expect(String(lease.lost.reason)).toMatch(/worker local-1 failed: its process was killed by SIGKILL; restarting in 0.2 s/);

    const next = await pool.acquire({ signal: never() });
    expect(next.worker).toMatchObject({ id: 'local-1', restarts: 1 });
    expect(next.worker.pid).not.toBe(pid);
    // The dead lease's release is a no-op: it must not free the worker the next conversation holds.
    lease.release();
    expect(pool.snapshot().workers[0].state).toBe('busy');
    next.release();
  });

  it('restarts a worker released as unhealthy before handing it out again', async () => {
    const pool = startPool({ warm: 1, maxWorkers: 1 });
    await pool.start();
    const states = recordStates(pool);
    const lease = await pool.acquire({ signal: never() });
    lease.release({ healthy: false, reason: 'stalled' });
    const next = await pool.acquire({ signal: never() });
    expect(next.worker.restarts).toBe(1);
    expect(next.worker.pid).not.toBe(lease.worker.pid);
    expect(isAlive(lease.worker.pid!)).toBe(false);
    expect(states.get('local-1')).toEqual(expect.arrayContaining(['resetting', 'starting']));
    next.release();
  });

  it('close() ends leases, turns waiters away and kills what ignores SIGTERM, children included', async () => {
    const pool = startPool({ warm: 1, maxWorkers: 1, local: { command: nodeCommand(resolve(FIXTURES, 'stubborn-process.mjs')), stopGraceSeconds: 0.5 } });
    await pool.start();
    const lease = await pool.acquire({ signal: never() });
    const waiting = pool.acquire({ signal: never() }).catch((err: unknown) => err);
    // The stubborn process and the child it started.
    await waitFor('two processes', () => processesWithMarker(marker).length === 2);

    // close() settles only once the process that ignores SIGTERM is killed after the grace period.
    await pool.close();
    expect(lease.lost.aborted).toBe(true);
    expect(await waiting).toBeInstanceOf(NoWorkersError);
    await expect(pool.acquire({ signal: never() })).rejects.toThrow(/shutting down/);
    await waitFor('no process left', () => processesWithMarker(marker).length === 0, 5000);
    expect(pool.snapshot().workers).toEqual([]);
  });

  it('stops the workers of a gateway that is killed outright, which cannot run close()', async () => {
    const config = localConfig({ warm: 2, maxWorkers: 2, local: { basePort: basePortForFile(40), stopGraceSeconds: 1 } }, marker);
    const host = spawn(process.execPath, ['--import', 'tsx', resolve(FIXTURES, 'pool-host.ts'), JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, [MARKER_VARIABLE]: marker },
    });
    try {
      const [line] = (await once(host.stdout!, 'data')) as [Buffer];
      const workerPids = JSON.parse(line.toString()) as number[];
      expect(workerPids).toHaveLength(2);
      // Besides the host and its workers: the reaper watching them (and tsx's esbuild).
      expect(processesWithMarker(marker)).toEqual(expect.arrayContaining([host.pid, ...workerPids]));
      expect(processesWithMarker(marker).length).toBeGreaterThan(3);
    } finally {
      host.kill('SIGKILL');
    }
    await waitFor('every process of the killed gateway to be gone', () => processesWithMarker(marker).length === 0, 5000);
  });
});
