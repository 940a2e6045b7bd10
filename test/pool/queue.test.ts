/** Queueing and leasing over real `quillman worker --engine loopback` processes. */
import { describe, expect, it } from 'vitest';
import { QueueFullError, type Lease } from '../../src/pool/types.js';
import {
  usePools, closeConversation,
  healthOf,
  healthUrl,
  never,
  newMarker,
  openConversation,
  recordStates,
  waitFor,
  workersIn,
} from './helpers.js';

const marker = newMarker();


const startPool = usePools(marker, 0);


describe('queueing', () => {
  it('gives parallel conversations distinct workers, starting them on demand, and queues the one beyond maxWorkers', async () => {
    const pool = startPool({ warm: 0, maxWorkers: 3, maxQueue: 1 });
    await pool.start();
    expect(pool.snapshot().workers).toHaveLength(0);

    const warming: string[][] = [[], [], [], []];
    const positions: Array<Array<[number, number]>> = [[], [], [], []];
    const acquires = [0, 1, 2, 3].map((i) =>
      pool.acquire({ signal: never(), onQueued: (p, q) => positions[i].push([p, q]), onWarmingUp: (m) => warming[i].push(m) }),
    );
    // 3 can be started, 1 may wait for a busy one: the 5th is one too many.
    await expect(pool.acquire({ signal: never() })).rejects.toBeInstanceOf(QueueFullError);

    const leases = await Promise.all(acquires.slice(0, 3));
    expect(new Set(leases.map((l) => l.worker.id)).size).toBe(3);
    expect(new Set(leases.map((l) => l.worker.url)).size).toBe(3);
    expect(new Set(leases.map((l) => l.worker.pid)).size).toBe(3);
    for (let i = 0; i < 3; i++) expect(warming[i][0]).toMatch(/^Starting a worker/);
    expect(warming[3]).toEqual([]);
    expect(positions[3][0]).toEqual([4, 4]);
    expect(positions[3].at(-1)).toEqual([1, 1]);

    // Each worker really is a separate process taking its own conversation.
    const sockets = await Promise.all(leases.map((l) => openConversation(l.worker.url)));
    for (const lease of leases) expect((await healthOf(healthUrl(lease.worker.url))).status).toBe('busy');
    expect(pool.snapshot().queued).toBe(1);

    await closeConversation(sockets[1]);
    leases[1].release();
    const fourth = await acquires[3];
    expect(fourth.worker.id).toBe(leases[1].worker.id);

    await Promise.all([sockets[0], sockets[2]].map(closeConversation));
    for (const lease of [leases[0], leases[2], fourth]) lease.release();
  });

  it('serves waiters in order, tells them their place, lets them leave, refuses when full and lets retries go first', async () => {
    const pool = startPool({ warm: 1, maxWorkers: 1, maxQueue: 3 });
    await pool.start();
    const holder = await pool.acquire({ signal: never() });

    const told: Record<string, Array<[number, number]>> = { b: [], c: [], d: [], e: [], x: [] };
    const served: string[] = [];
    const leases = new Map<string, Lease>();
    const wait = (name: string, signal = never(), front = false) => {
      const promise = pool.acquire({ signal, front, onQueued: (p, q) => told[name].push([p, q]) });
      promise.then(
        (lease) => {
          served.push(name);
          leases.set(name, lease);
        },
        () => undefined,
      );
      return promise;
    };

    wait('b');
    const leaving = new AbortController();
    const c = wait('c', leaving.signal);
    wait('d');
    expect(told).toMatchObject({ b: [[1, 1], [1, 2], [1, 3]], c: [[2, 2], [2, 3]], d: [[3, 3]] });
    expect(pool.snapshot()).toMatchObject({ queued: 3, accepting: false });

    const full = pool.acquire({ signal: never() });
    await expect(full).rejects.toBeInstanceOf(QueueFullError);
    await expect(full).rejects.toThrow('All workers are busy and the queue is full (3/3 waiting)');

    leaving.abort(new Error('the client went away'));
    await expect(c).rejects.toThrow('the client went away');
    expect(told.b.at(-1)).toEqual([1, 2]);
    expect(told.d.at(-1)).toEqual([2, 2]);

    // A caller retrying after a refusal already had its turn: it goes first, even into a full line.
    wait('x');
    await expect(pool.acquire({ signal: never() })).rejects.toBeInstanceOf(QueueFullError);
    wait('e', never(), true);
    expect(told.e).toEqual([[1, 4]]);
    expect(told.b.at(-1)).toEqual([2, 4]);

    holder.release();
    await waitFor('e to be served', () => leases.get('e'));
    leases.get('e')!.release();
    await waitFor('b to be served', () => leases.get('b'));
    expect(told.d.at(-1)).toEqual([1, 2]);
    leases.get('b')!.release();
    await waitFor('d to be served', () => leases.get('d'));
    leases.get('d')!.release();
    await waitFor('x to be served', () => leases.get('x'));
    expect(served).toEqual(['e', 'b', 'd', 'x']);
    expect(pool.snapshot().queued).toBe(0);
    leases.get('x')!.release();
  });

  it('hands a released worker out again only once it reports itself free', async () => {
    const pool = startPool({ warm: 1, maxWorkers: 1 });
    await pool.start();
    const states = recordStates(pool);
    const first = await pool.acquire({ signal: never() });
    const conversation = await openConversation(first.worker.url);

    // Released while its conversation is still open (the gateway never does this): the worker still says busy.
    first.release();
    let next: Lease | undefined;
    void pool.acquire({ signal: never() }).then((lease) => (next = lease));
    await new Promise((r) => setTimeout(r, 400));
    expect(workersIn(pool, 'resetting')).toBe(1);
    expect(next).toBeUndefined();
    expect((await healthOf(healthUrl(first.worker.url))).status).toBe('busy');

    await closeConversation(conversation);
    await waitFor('the next lease', () => next);
    expect(next!.worker.id).toBe(first.worker.id);
    expect(states.get(first.worker.id)?.slice(-3)).toEqual(['busy', 'resetting', 'busy']);
    next!.release();
  });

  it('refuses an already aborted caller without queueing it', async () => {
    const pool = startPool({ warm: 0, maxWorkers: 1 });
    await pool.start();
    const gone = new AbortController();
    gone.abort(new Error('gone'));
    await expect(pool.acquire({ signal: gone.signal })).rejects.toThrow('gone');
    expect(pool.snapshot()).toMatchObject({ queued: 0, workers: [] });
  });
});
