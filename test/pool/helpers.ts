/** Shared by the pool tests: real worker commands, waiting, and proof that no process outlives its test. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach } from 'vitest';
import WebSocket from 'ws';
import type { PoolConfigInput } from '../../src/pool/config.js';
import { createPool } from '../../src/pool/index.js';
import type { WorkerPool } from '../../src/pool/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { shellQuote } from '../../src/util/shell-quote.js';
import { CLI_ARGS, eventually, loopbackWorkerCommand } from '../helpers/gateway.js';
import { MARKER_VARIABLE, processesWithMarker } from '../helpers/processes.js';

/** An acquire that nobody cancels. */
export const never = () => new AbortController().signal;

/** Our own worker, run from source with the loopback engine: the real thing, minus the models. */
export function loopbackWorkerArgv(port: number | '{port}'): string[] {
  return [process.execPath, ...CLI_ARGS, 'worker', '--engine', 'loopback', '--port', String(port)];
}

/** `node <script> …` as a command template. */
export function nodeCommand(script: string, args = '--port {port}'): string {
  return `${shellQuote(process.execPath)} ${shellQuote(script)} ${args}`;
}

/** Ports far from the gateway tests' range, different per test file process. */
export function basePortForFile(offset = 0): number {
  return 30_000 + (process.pid % 400) * 50 + offset;
}

type PoolSettings = Record<string, unknown> & { local?: Record<string, unknown> };

/**
 * Call once per test file: returns a starter for pools on this file's ports
 * (pid-based, offset per file), closes them after each test, and checks at the
 * end that no process carrying the file's marker is left.
 */
export function usePools(marker: string, portOffset: number, defaults: { local?: Record<string, unknown> } = {}) {
  const pools: WorkerPool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.close()));
  });
  afterAll(async () => {
    await expectNoProcessesLeft(marker);
  });
  return (settings: PoolSettings, log: Logger = silentLogger): WorkerPool => {
    const local = { basePort: basePortForFile(portOffset), ...defaults.local, ...settings.local };
    const pool = createPool(localConfig({ ...settings, local }, marker), log);
    pools.push(pool);
    return pool;
  };
}

/** A pool setup for tests: a marker in every worker's environment lets afterAll find any process left behind. */
export function localConfig(overrides: Partial<Record<string, unknown>> & { local?: Record<string, unknown> }, marker: string): PoolConfigInput {
  const { local, ...rest } = overrides;
  return {
    provider: 'local',
    ...rest,
    local: {
      command: loopbackWorkerCommand(),
      readyTimeoutSeconds: 30,
      stopGraceSeconds: 3,
      ...local,
      env: { [MARKER_VARIABLE]: marker, ...(local?.env as Record<string, string> | undefined) },
    },
  } as PoolConfigInput;
}

export { newMarker, processesWithMarker } from '../helpers/processes.js';


export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `eventually` in the pool tests' argument order, with the default and the finer poll their timings were written against. */
export function waitFor<T>(what: string, check: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  return eventually(check, timeoutMs, what, 25);
}

export function workersIn(pool: WorkerPool, state: string): number {
  return pool.snapshot().workers.filter((w) => w.state === state).length;
}

/** Records every state each worker passes through, from the pool's change notifications. */
export function recordStates(pool: WorkerPool): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  pool.onChange(() => {
    for (const w of pool.snapshot().workers) {
      const states = seen.get(w.id) ?? [];
      if (states.at(-1) !== w.state) states.push(w.state);
      seen.set(w.id, states);
    }
  });
  return seen;
}

export interface CapturedLog {
  log: Logger;
  records: Array<Record<string, unknown> & { msg?: string }>;
}

export function captureLog(): CapturedLog {
  const records: CapturedLog['records'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), records };
}

/** Opens a websocket conversation with a worker directly (as another gateway or client would). */
export function openConversation(url: string, headers?: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolveSocket, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, headers });
    ws.once('open', () => resolveSocket(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

export function closeConversation(ws: WebSocket): Promise<void> {
  return new Promise((resolveClose) => {
    if (ws.readyState === WebSocket.CLOSED) return resolveClose();
    ws.once('close', () => resolveClose());
    ws.close();
  });
}

export async function healthOf(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  return (await res.json()) as Record<string, unknown>;
}

/** The worker's HTTP health URL from its websocket chat URL. */
export function healthUrl(chatUrl: string): string {
  return chatUrl.replace(/^ws/, 'http').replace(/\/api\/chat$/, '/health');
}

/** Fails unless every process carrying `marker` is gone (helpers like esbuild exit a moment after their parent). */
export async function expectNoProcessesLeft(marker: string): Promise<void> {
  await waitFor(`no process left behind (still running: ${processesWithMarker(marker).join(', ')})`, () => processesWithMarker(marker).length === 0, 5000);
}
