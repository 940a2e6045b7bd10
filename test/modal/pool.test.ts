/**
 * The modal provider's pool behaviour, through the real `modal` SDK against
 * the control-plane stand-in (a STAND-IN for Modal): warm buffer, scale to
 * zero, start-up progress for waiting callers, GPU fallback and the error
 * when no GPU can be had, credentials checked at start-up, and a caller
 * without the credential refused at Modal's door.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPool, NoWorkersError, type PoolConfigInput, type WorkerPool } from '../../src/pool/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { waitFor } from '../pool/helpers.js';
import { closeSocket, openDialled, startModalTestEnv, upgradeStatus, type ModalTestEnv } from './harness.js';

let env: ModalTestEnv;
const pools: WorkerPool[] = [];
const never = () => new AbortController().signal;

beforeAll(async () => {
  env = await startModalTestEnv({ imageBuildMs: 1500 });
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  env.standIn.restoreCapacity();
  env.standIn.setSchedulingDelay(0);
  await waitFor('every sandbox to be gone', () => env.live().length === 0, 30_000);
});

afterAll(async () => {
  await env?.close();
});

function newPool(config: PoolConfigInput): WorkerPool {
  const pool = createPool(config, silentLogger);
  pools.push(pool);
  return pool;
}

const states = (pool: WorkerPool) => pool.snapshot().workers.map((w) => w.state);

describe('the modal provider', () => {
  it('tells a waiting caller each start-up stage with the time so far, then serves it; the image is built once', async () => {
    env.standIn.setSchedulingDelay(2500);
    const pool = newPool(env.config({ workers: 1, warm: 0 }));
    await pool.start();
    const told: string[] = [];
    const lease = await pool.acquire({ signal: never(), onWarmingUp: (m) => told.push(m) });
    const text = told.join('\n');
    // The stages in order: image, GPU, server; each with a clock that moves.
    const at = (re: RegExp) => told.findIndex((m) => re.test(m));
    expect(at(/building the sandbox image \(python:3\.11-slim \+ moshi 0\.2\.13/)).toBeGreaterThanOrEqual(0);
    expect(at(/waiting for an L40S GPU on Modal \(\d+ s\)/)).toBeGreaterThan(at(/building the sandbox image/));
    expect(at(/Kyutai's server is starting on an L40S/)).toBeGreaterThan(at(/waiting for an L40S GPU/));
    const gpuClock = told.filter((m) => /waiting for an L40S GPU/.test(m)).map((m) => Number(/\((\d+) s\)/.exec(m)![1]));
    expect(new Set(gpuClock).size).toBeGreaterThan(1);
    expect(text).not.toMatch(/undefined/);
    expect(lease.worker.details).toMatchObject({ gpuType: 'L40S', sandboxId: expect.stringMatching(/^sb-\w{22}$/) });
    lease.release();
    // A second sandbox does not build the image again.
    const builds = env.standIn.builtImages().map((i) => i.builds);
    expect(builds.every((n) => n === 1)).toBe(true);
  });

  it('keeps the warm buffer started before anyone calls, and never more than maxWorkers', async () => {
    const pool = newPool(env.config({ workers: 3, warm: 2 }));
    await pool.start();
    await waitFor('two warm sandboxes ready', () => states(pool).filter((s) => s === 'idle').length === 2, 60_000);
    expect(env.live()).toHaveLength(2);
    // Three callers: the warm two serve at once, a third sandbox starts for the last.
    const leases = await Promise.all([0, 1, 2].map(() => pool.acquire({ signal: never() })));
    expect(new Set(leases.map((l) => l.worker.details?.sandboxId)).size).toBe(3);
    expect(env.live()).toHaveLength(3);
    let fourth = false;
    const waiting = pool.acquire({ signal: never() }).then((l) => {
      fourth = true;
      return l;
    });
    await waitFor('the fourth caller to queue', () => pool.snapshot().queued === 1);
    expect(env.live()).toHaveLength(3);
    expect(fourth).toBe(false);
    leases[0].release();
    (await waiting).release();
    for (const l of leases.slice(1)) l.release();
  });

  it('scales to zero: with warm 0 an idle sandbox is terminated after the idle timeout', async () => {
    const pool = newPool(env.config({ workers: 1, warm: 0, idleTimeoutSeconds: 1 }));
    await pool.start();
    expect(env.live()).toEqual([]);
    const lease = await pool.acquire({ signal: never() });
    const id = String(lease.worker.details?.sandboxId);
    const ws = await openDialled(await lease.dial());
    await closeSocket(ws);
    lease.release();
    await waitFor('the idle sandbox to be terminated', () => env.standIn.sandbox(id)?.state === 'finished', 30_000);
    expect(env.standIn.sandbox(id)?.exitCode).toBe(137);
    await waitFor('the pool to be empty', () => pool.snapshot().workers.length === 0);
    expect(env.live()).toEqual([]);
  });

  it('asks for the next GPU type when the first cannot be had within gpuWaitSeconds, and ends the sandbox left waiting', async () => {
    env.standIn.setNoCapacity(['L40S'], { queue: true });
    env.standIn.setNoCapacity(['A100-80GB'], { failAfterMs: 200 }); // Modal says RESOURCE_EXHAUSTED outright
    const pool = newPool(env.config({ workers: 1, modal: { gpu: ['L40S', 'A100-80GB', 'H100'], gpuWaitSeconds: 3 } }));
    await pool.start();
    const told: string[] = [];
    const lease = await pool.acquire({ signal: never(), onWarmingUp: (m) => told.push(m) });
    expect(lease.worker.details?.gpuType).toBe('H100');
    expect(told.join('\n')).toMatch(/waiting for an H100 GPU on Modal \(no L40S within 3 s; Modal has no A100-80GB free\)/);
    // The L40S sandbox that was still queued is gone, not left waiting (and billing once placed).
    const l40s = env.standIn.sandboxes({ tags: { 'quillman-gpu': 'L40S' } });
    expect(l40s.length).toBeGreaterThan(0);
    expect(l40s.every((s) => s.state === 'finished')).toBe(true);
    expect(env.live()).toEqual([lease.worker.details?.sandboxId]);
    lease.release();
  });

  it('tells the caller clearly when no GPU of any listed type can be had', async () => {
    env.standIn.setNoCapacity(['L40S', 'A100-80GB'], { queue: true });
    const restart = { initialDelaySeconds: 0.05, maxDelaySeconds: 0.1, maxStartFailures: 2, cooldownSeconds: 5 };
    const pool = newPool(env.config({ workers: 1, modal: { gpu: 'L40S,A100-80GB', gpuWaitSeconds: 1, restart } }));
    await pool.start();
    const told: string[] = [];
    const err = await pool.acquire({ signal: never(), onWarmingUp: (m) => told.push(m) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWorkersError);
    expect((err as Error).message).toMatch(/no GPU could be had on Modal: no L40S within 1 s; no A100-80GB within 1 s\. .*pool\.modal\.gpu/);
    // Between attempts the caller heard why it waited.
    expect(told.join('\n')).toMatch(/restarting \(.*no GPU could be had on Modal/);
    // Callers in the cool-down hear it at once.
    await expect(pool.acquire({ signal: never() })).rejects.toThrow(/no GPU could be had/);
    await waitFor('no sandbox left queued', () => env.live().length === 0, 30_000);
  });

  it('refuses a caller without the credential: a leaked endpoint URL reaches no GPU', async () => {
    const pool = newPool(env.config({ workers: 1 }));
    await pool.start();
    const lease = await pool.acquire({ signal: never() });
    const dial = await lease.dial();
    const refusedBefore = env.standIn.connectRefusals();
    // Without the token, with a made-up one, and with the header's scheme but nothing else.
    expect(await upgradeStatus(dial.url, { ca: dial.ca })).toBe(401);
    expect(await upgradeStatus(dial.url, { ca: dial.ca, headers: { authorization: 'Bearer forged-token' } })).toBe(403);
    expect(await upgradeStatus(dial.url.replace('/api/chat', '/health'), { ca: dial.ca })).toBe(401);
    const refused = env.standIn.connectRefusals();
    expect((refused[401] ?? 0) - (refusedBefore[401] ?? 0)).toBe(2);
    expect((refused[403] ?? 0) - (refusedBefore[403] ?? 0)).toBe(1);
    // The sandbox has no public tunnel at all.
    expect(env.standIn.sandbox(String(lease.worker.details?.sandboxId))?.tunnels).toEqual([]);
    // With the lease's credential it gets through.
    const ws = await openDialled(dial);
    await closeSocket(ws);
    lease.release();
  });

  it('names the setting to fix when Modal refuses what the sandbox asks for, without retrying', async () => {
    const pool = newPool(env.config({ workers: 1, modal: { secrets: ['no-such-secret'] } }));
    await pool.start();
    const err = await pool.acquire({ signal: never() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWorkersError);
    expect((err as Error).message).toMatch(/no-such-secret.*pool\.modal\.secrets/s);
    expect(pool.snapshot().workers[0]?.restarts).toBe(0);
    expect(env.live()).toEqual([]);
  });

  it('fails at start-up with the fix when the token is missing or wrong', async () => {
    const { MODAL_TOKEN_ID, MODAL_TOKEN_SECRET } = process.env;
    try {
      delete process.env.MODAL_TOKEN_ID;
      delete process.env.MODAL_TOKEN_SECRET;
      await expect(newPool(env.config()).start()).rejects.toThrow(/Modal credentials are missing.*MODAL_TOKEN_ID and MODAL_TOKEN_SECRET.*~\/\.modal\.toml/s);
      process.env.MODAL_TOKEN_ID = MODAL_TOKEN_ID;
      process.env.MODAL_TOKEN_SECRET = 'as-wrong';
      await expect(newPool(env.config()).start()).rejects.toThrow(/Modal refused the token .*modal token new/s);
    } finally {
      process.env.MODAL_TOKEN_ID = MODAL_TOKEN_ID;
      process.env.MODAL_TOKEN_SECRET = MODAL_TOKEN_SECRET;
    }
    expect(env.live()).toEqual([]);
  });
});
