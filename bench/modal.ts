/**
 * The modal provider against the control-plane stand-in (a STAND-IN for
 * Modal: scheduling delay 0, image cached), through the real SDK and a real
 * gateway in this process:
 *
 *   1. a caller's connect → the worker's handshake, with a warm sandbox and
 *      with a cold one (a sandbox created for the caller, scale to zero
 *      between runs), the cold time split into its stages;
 *   2. a sandbox killed mid-conversation → the client told;
 *   3. the pool's decision overhead with 100 sandboxes: acquire + release
 *      of the last free one while 99 are busy, dial (connect token), and a
 *      /metrics scrape; the same pool over an in-memory host (no Modal) for
 *      comparison.
 *
 *   npm run bench -- modal [--runs 10] [--sandboxes 100]
 *
 * What a sandbox runs here is our loopback worker (1, 2) or a tiny HTTP
 * server without a health endpoint, like Kyutai's (3): on Modal it is
 * Kyutai's server on a GPU, whose model load (tens of seconds) is not in
 * these numbers. See docs/modal.md for the results and what they mean.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GatewaySettingsSchema } from '../src/gateway/config.js';
import { startGateway, type Gateway } from '../src/gateway/server.js';
import { createPool, type Lease, type WorkerPool } from '../src/pool/index.js';
import { PROVIDERS } from '../src/pool/registry.js';
import { silentLogger } from '../src/util/logger.js';
import { freePort } from '../test/helpers/net.js';
import { connectClient, isHandshake } from '../test/helpers/ws-client.js';
import { MemoryHost, memoryProvider } from '../test/pool/contract/memory-host.js';
import { startModalTestEnv, type ModalTestEnv } from '../test/modal/harness.js';
import type { Launcher } from '../test/modal/stand-in/stand-in.js';
import { machineLine, printTable } from './lib/report.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, sandboxes: { type: 'string', default: '100' } } });
const RUNS = Number(values.runs);
const SANDBOXES = Number(values.sandboxes);
const never = () => new AbortController().signal;

/** A server that answers every HTTP request 404, as Kyutai's does on /health: ready, without a health endpoint. */
const TINY_SERVER = "require('http').createServer((q, s) => { s.statusCode = 404; s.end(); }).listen(Number(process.argv[1]), '127.0.0.1')";
const launcher: Launcher = (ctx) =>
  ctx.requestedCommand.includes('bench/tiny') ? { command: process.execPath, args: ['-e', TINY_SERVER, String(ctx.port)] } : { command: process.execPath, args: ['--import', 'tsx', resolve(import.meta.dirname, '../src/cli/main.ts'), 'worker', '--engine', 'loopback', '--host', '127.0.0.1', '--port', String(ctx.port)], cwd: resolve(import.meta.dirname, '..') };

function stats(values: number[]): { p50: number; max: number; mean: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: sorted[Math.floor((sorted.length - 1) / 2)], max: sorted.at(-1)!, mean: values.reduce((s, v) => s + v, 0) / values.length };
}

const ms = (v: number) => v.toFixed(v < 10 ? 2 : 0);
const us = (v: number) => (v * 1000).toFixed(0);

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withGateway<T>(env: ModalTestEnv, config: ReturnType<ModalTestEnv['config']>, body: (pool: WorkerPool, gateway: Gateway, chatUrl: string) => Promise<T>): Promise<T> {
  const pool = createPool(config, silentLogger);
  await pool.start();
  const gateway = await startGateway({ settings: GatewaySettingsSchema.parse({ host: '127.0.0.1', port: 0 }), pool, log: silentLogger });
  try {
    return await body(pool, gateway, `ws://127.0.0.1:${gateway.port}/api/chat`);
  } finally {
    await gateway.close();
    await pool.close();
  }
}

/** Connect → handshake, in ms. */
async function handshake(chatUrl: string): Promise<number> {
  const started = performance.now();
  const client = connectClient(chatUrl);
  await client.waitFor(isHandshake, 120_000, 'handshake');
  const took = performance.now() - started;
  client.ws.close();
  await client.closed;
  return took;
}

async function connectTimes(env: ModalTestEnv): Promise<void> {
  const warm = await withGateway(env, env.config({ workers: 1, warm: 1 }), async (pool, _gw, url) => {
    const times: number[] = [];
    await handshake(url); // the image build and the first sandbox
    for (let i = 0; i < RUNS; i++) {
      await until('the sandbox idle', () => pool.snapshot().workers[0]?.state === 'idle');
      times.push(await handshake(url));
    }
    return times;
  });

  const cold = await withGateway(env, env.config({ workers: 1, warm: 0, idleTimeoutSeconds: 0.2 }), async (pool, _gw, url) => {
    const runs: { total: number; placed: number; serverUp: number; direct: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      await until('scale to zero', () => pool.snapshot().workers.length === 0 && env.live().length === 0);
      let readyAt = 0;
      const stop = pool.onChange(() => {
        if (!readyAt && pool.snapshot().workers.some((w) => w.state === 'idle' || w.state === 'busy')) readyAt = performance.now();
      });
      const startedAt = performance.now();
      const epochStart = Date.now();
      const total = await handshake(url);
      stop();
      const sb = env.standIn.sandboxes().at(-1)!;
      // The same worker process started directly, right after (same load), for what the sandbox's own start costs.
      runs.push({ total, placed: (sb.startedAt ?? sb.createdAt) * 1000 - epochStart, serverUp: readyAt - startedAt, direct: await processStart() });
    }
    return runs;
  });

  const w = stats(warm);
  const c = stats(cold.map((r) => r.total));
  const d = stats(cold.map((r) => r.direct));
  printTable(`Connect → handshake through the gateway (${RUNS} runs each, stand-in scheduling delay 0, image cached; ${machineLine()})`, ['sandbox', 'p50 ms', 'mean ms', 'max ms'], [
    ['warm (idle sandbox waiting)', ms(w.p50), ms(w.mean), ms(w.max)],
    ['cold (created for the caller)', ms(c.p50), ms(c.mean), ms(c.max)],
  ]);
  const placed = stats(cold.map((r) => r.placed));
  const up = stats(cold.map((r) => r.serverUp));
  printTable('Cold start, where the time goes (p50 ms, from the caller\'s connect)', ['stage', 'p50 ms', 'max ms'], [
    ['sandbox placed (SandboxCreate + GetTaskId via the SDK)', ms(placed.p50), ms(placed.max)],
    ['server in the sandbox ready (process start + first health check through the connect proxy)', ms(up.p50), ms(up.max)],
    ['handshake at the caller', ms(c.p50), ms(c.max)],
    ['for comparison: the same worker process started directly, to its first HTTP answer', ms(d.p50), ms(d.max)],
  ]);
}

/** Spawns the loopback worker as a sandbox would run it and times it to its first HTTP answer. */
async function processStart(): Promise<number> {
  const port = await freePort();
  const local = launcher({ requestedCommand: [], port } as never);
  const started = performance.now();
  const child = spawn(local.command, local.args, { cwd: local.cwd, stdio: 'ignore' });
  try {
    await until('the worker to answer', async () => {
      try {
        await (await fetch(`http://127.0.0.1:${port}/health`)).text();
        return true;
      } catch {
        return false;
      }
    });
    return performance.now() - started;
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
}

async function deathNotice(env: ModalTestEnv): Promise<void> {
  const told = await withGateway(env, env.config({ workers: 1, warm: 1, modal: { restart: { initialDelaySeconds: 0.1 } } }), async (pool, _gw, url) => {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await until('a ready sandbox', () => pool.snapshot().workers.some((w) => w.state === 'idle'));
      const client = connectClient(url);
      await client.waitFor(isHandshake, 120_000, 'handshake');
      const id = String(pool.snapshot().workers.find((w) => w.state === 'busy')?.details?.sandboxId);
      const killedAt = performance.now();
      void env.standIn.kill(id);
      await client.closed;
      times.push(performance.now() - killedAt);
    }
    return times;
  });
  const s = stats(told);
  printTable(`Sandbox killed mid-conversation → client closed with the reason (${RUNS} runs)`, ['p50 ms', 'mean ms', 'max ms'], [[ms(s.p50), ms(s.mean), ms(s.max)]]);
}

/** Acquire + release of the one free worker while all others are busy, and the leases' dials. */
async function decisions(pool: WorkerPool, workers: number): Promise<{ cycleMs: number; dialMs: number }> {
  const progress = setInterval(() => {
    const counts = new Map<string, number>();
    for (const w of pool.snapshot().workers) counts.set(w.state, (counts.get(w.state) ?? 0) + 1);
    process.stderr.write(`  waiting for ${workers} ready workers: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}\n`);
  }, 10_000);
  try {
    await until(`${workers} ready workers`, () => pool.snapshot().workers.filter((w) => w.state === 'idle').length === workers, 600_000);
  } finally {
    clearInterval(progress);
  }
  const held: Lease[] = [];
  for (let i = 0; i < workers - 1; i++) held.push(await pool.acquire({ signal: never() }));
  const dialStart = performance.now();
  for (const lease of held) await lease.dial();
  const dialMs = (performance.now() - dialStart) / held.length;
  const cycles = 2000;
  const start = performance.now();
  for (let i = 0; i < cycles; i++) (await pool.acquire({ signal: never() })).release();
  const cycleMs = (performance.now() - start) / cycles;
  for (const lease of held) lease.release();
  return { cycleMs, dialMs };
}

async function hundred(env: ModalTestEnv): Promise<void> {
  const host = new MemoryHost({ startup: ['no-endpoint'] });
  const memory = createPool({ provider: 'memory', maxWorkers: SANDBOXES, warm: SANDBOXES, memory: {} } as never, silentLogger, { registry: [...PROVIDERS, memoryProvider(() => host)] });
  await memory.start();
  const inMemory = await decisions(memory, SANDBOXES);
  await memory.close();

  const startedAt = performance.now();
  const modal = await withGateway(env, env.config({ workers: SANDBOXES, warm: SANDBOXES, maxQueue: 1000, modal: { serverArgs: ['bench/tiny'], gpuWaitSeconds: 600, readyTimeoutSeconds: 600 } }), async (pool, gateway) => {
    const result = await decisions(pool, SANDBOXES);
    const allUp = performance.now() - startedAt;
    const scrapes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await (await fetch(`${gateway.url}/metrics`)).text();
      scrapes.push(performance.now() - t);
    }
    return { ...result, allUp, scrape: stats(scrapes).p50 };
  });
  printTable(`The pool's decisions with ${SANDBOXES} workers, ${SANDBOXES - 1} busy (mean of 2000 cycles)`, ['host', 'acquire + release µs', 'dial µs', '/metrics scrape ms', `${SANDBOXES} ready after s`], [
    ['in-memory (pool alone)', us(inMemory.cycleMs), us(inMemory.dialMs), '—', '—'],
    ['modal (stand-in)', us(modal.cycleMs), us(modal.dialMs), ms(modal.scrape), (modal.allUp / 1000).toFixed(1)],
  ]);
}

const env = await startModalTestEnv({ launcher, schedulingDelayMs: 0, imageBuildMs: 0 });
try {
  await connectTimes(env);
  await deathNotice(env);
  await hundred(env);
} finally {
  await env.close();
}
