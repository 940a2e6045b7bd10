/** Remote workers: real `quillman worker` processes started by the test, reached by URL. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/pool/index.js';
import { NoWorkersError, type Lease, type WorkerPool } from '../../src/pool/types.js';
import { silentLogger } from '../../src/util/logger.js';
import {
  closeConversation,
  expectNoProcessesLeft,
  isAlive,
  loopbackWorkerArgv,
  never,
  newMarker,
  openConversation,
  recordStates,
  waitFor,
} from './helpers.js';
import { freePort } from '../helpers/net.js';
import { MARKER_VARIABLE } from '../helpers/processes.js';

const marker = newMarker();
const pools: WorkerPool[] = [];
const children = new Set<ChildProcess>();

async function startWorker(port: number): Promise<ChildProcess> {
  const [command, ...args] = loopbackWorkerArgv(port);
  const child = spawn(command, args, { stdio: 'ignore', env: { ...process.env, [MARKER_VARIABLE]: marker } });
  children.add(child);
  child.once('exit', () => children.delete(child));
  await waitFor(`the worker on port ${port}`, () => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false));
  return child;
}

function stopWorker(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Stand-in for Kyutai's moshi.server (which cannot run here): no /health, its web page on /. */
function startKyutaiStandIn(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/' ? 200 : 404);
    res.end();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

function remotePool(urls: string[], healthIntervalSeconds = 0.2): WorkerPool {
  const pool = createPool({ provider: 'remote', maxQueue: 4, remote: { urls, healthIntervalSeconds, healthTimeoutSeconds: 2 } }, silentLogger);
  pools.push(pool);
  return pool;
}

let ours: number[] = [];
let kyutai: { server: Server; port: number };
let deadPort: number;

beforeAll(async () => {
  ours = [await freePort(), await freePort()];
  await Promise.all(ours.map(startWorker));
  kyutai = await startKyutaiStandIn();
  deadPort = await freePort();
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.close()));
});

afterAll(async () => {
  await Promise.all([...children].map(stopWorker));
  await new Promise((resolve) => kyutai.server.close(resolve));
  await expectNoProcessesLeft(marker);
});

describe('remote workers', () => {
  it('checks every worker at start(): reachable ones are idle, the others down with the reason', async () => {
    const pool = remotePool([`http://127.0.0.1:${ours[0]}`, `ws://127.0.0.1:${ours[1]}/api/chat`, `http://127.0.0.1:${kyutai.port}/`, `http://127.0.0.1:${deadPort}`]);
    await pool.start();
    const snapshot = pool.snapshot();
    expect(snapshot.maxWorkers).toBe(4);
    expect(snapshot.workers.map((w) => [w.id, w.url, w.state])).toEqual([
      ['remote-1', `ws://127.0.0.1:${ours[0]}/api/chat`, 'idle'],
      ['remote-2', `ws://127.0.0.1:${ours[1]}/api/chat`, 'idle'],
      ['remote-3', `ws://127.0.0.1:${kyutai.port}/api/chat`, 'idle'],
      ['remote-4', `ws://127.0.0.1:${deadPort}/api/chat`, 'down'],
    ]);
    expect(snapshot.workers[3].detail).toMatch(/connection refused/);
  });

  it('skips a worker another client is using, and takes it back once it reports free', async () => {
    const pool = remotePool([`http://127.0.0.1:${ours[0]}`, `http://127.0.0.1:${ours[1]}`, `http://127.0.0.1:${kyutai.port}`]);
    await pool.start();
    const states = recordStates(pool);
    const elsewhere = await openConversation(`ws://127.0.0.1:${ours[0]}/api/chat`);
    await waitFor('remote-1 to be seen in use', () => pool.snapshot().workers[0].state === 'resetting');
    expect(pool.snapshot().workers[0].detail).toBe('in use by another client');

    const first = await pool.acquire({ signal: never() });
    const second = await pool.acquire({ signal: never() });
    expect([first.worker.id, second.worker.id]).toEqual(['remote-2', 'remote-3']);
    // The Kyutai stand-in cannot say when it is free: the end of our conversation decides.
    second.release();
    expect(pool.snapshot().workers[2].state).toBe('idle');
    const third = await pool.acquire({ signal: never() });
    expect(third.worker.id).toBe('remote-3');

    let fourth: Lease | undefined;
    void pool.acquire({ signal: never() }).then((lease) => (fourth = lease));
    await new Promise((r) => setTimeout(r, 500));
    expect(fourth).toBeUndefined();
    await closeConversation(elsewhere);
    await waitFor('remote-1 to be handed out', () => fourth);
    expect(fourth!.worker.id).toBe('remote-1');
    expect(states.get('remote-1')).toEqual(expect.arrayContaining(['resetting', 'busy']));
    for (const lease of [first, third, fourth!]) lease.release();
  });

  it('skips a worker that refused a conversation until a check finds it free', async () => {
    const pool = remotePool([`http://127.0.0.1:${ours[0]}`]);
    await pool.start();
    const lease = await pool.acquire({ signal: never() });
    // Another client gets there first; our connection is refused with HTTP 503.
    const elsewhere = await openConversation(lease.worker.url);
    await expect(openConversation(lease.worker.url)).rejects.toThrow('HTTP 503');
    lease.release({ healthy: true, refused: true, reason: 'HTTP 503' });
    expect(pool.snapshot().workers[0]).toMatchObject({ state: 'resetting', detail: 'refused a conversation (HTTP 503): in use by another client' });

    let next: Lease | undefined;
    void pool.acquire({ signal: never(), front: true }).then((l) => (next = l));
    await new Promise((r) => setTimeout(r, 600));
    expect(next).toBeUndefined();
    await closeConversation(elsewhere);
    await waitFor('the worker to be handed out again', () => next);
    const conversation = await openConversation(next!.worker.url);
    await closeConversation(conversation);
    next!.release();
  });

  it('marks a dead worker down, ends its lease, turns callers away, and takes it back when it returns', async () => {
    const port = await freePort();
    const worker = await startWorker(port);
    const pool = remotePool([`ws://127.0.0.1:${port}`]);
    await pool.start();
    const lease = await pool.acquire({ signal: never() });
    await stopWorker(worker);
    expect(isAlive(worker.pid!)).toBe(false);

    await waitFor('the lease to be lost', () => lease.lost.aborted, 5000);
    expect(String(lease.lost.reason)).toMatch(/worker remote-1 failed: .*connection refused/);
    const err = await pool.acquire({ signal: never() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWorkersError);
    expect((err as Error).message).toMatch(new RegExp(`^No worker is reachable:\\n  remote-1 \\(ws://127\\.0\\.0\\.1:${port}/api/chat\\): .*connection refused`));
    expect((err as Error).message).toMatch(/Check that the workers are running and that the gateway can reach them\.$/);
    expect(pool.snapshot().accepting).toBe(false);

    await startWorker(port);
    await waitFor('the worker to be back', () => pool.snapshot().workers[0].state === 'idle', 5000);
    const again = await pool.acquire({ signal: never() });
    expect(again.worker.id).toBe('remote-1');
    again.release();
  });
});
