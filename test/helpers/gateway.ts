/**
 * A gateway in the test process, with real worker processes started by the
 * local provider: the same code path as `quillman serve`.
 */
import { resolve } from 'node:path';
import { GatewaySettingsSchema, type GatewaySettings } from '../../src/gateway/config.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { PoolConfigSchema } from '../../src/pool/config.js';
import { createPool } from '../../src/pool/index.js';
import type { WorkerPool } from '../../src/pool/types.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import { shellQuote } from '../../src/util/shell-quote.js';

export const REPO = resolve(import.meta.dirname, '../..');

/** Node arguments that run our CLI from source, exactly as a user runs the built one. */
export const CLI_ARGS = ['--import', 'tsx', resolve(REPO, 'src/cli/main.ts')];

/** The CLI as a command template line (the local provider's format). */
export function cliCommand(args: string): string {
  return [process.execPath, ...CLI_ARGS].map(shellQuote).join(' ') + ' ' + args;
}

export function loopbackWorkerCommand(extra = ''): string {
  return cliCommand(`worker --engine loopback --port {port} ${extra}`.trim());
}

let nextBasePort = 20_000 + (process.pid % 200) * 50;

export interface TestGateway {
  gateway: Gateway;
  pool: WorkerPool;
  /** ws://…/api/chat */
  chatUrl: string;
  httpUrl: string;
  close(): Promise<void>;
}

export async function startTestGateway(
  options: { gateway?: Partial<GatewaySettings>; pool?: Record<string, unknown>; workerArgs?: string; log?: Logger } = {},
): Promise<TestGateway> {
  const log = options.log ?? silentLogger;
  const basePort = nextBasePort;
  nextBasePort += 20;
  const remote = options.pool?.provider === 'remote';
  const poolConfig = PoolConfigSchema.parse({
    provider: 'local',
    ...(remote ? {} : { warm: 1, maxWorkers: 2 }),
    maxQueue: 4,
    ...options.pool,
    ...(remote ? {} : { local: { command: loopbackWorkerCommand(options.workerArgs), basePort, ...(options.pool?.local as object | undefined) } }),
  });
  const pool = createPool(poolConfig, log);
  await pool.start();
  const settings = GatewaySettingsSchema.parse({ host: '127.0.0.1', port: 0, ...options.gateway });
  const gateway = await startGateway({ settings, pool, log, engineLabel: 'loopback (test)' });
  return {
    gateway,
    pool,
    chatUrl: `ws://127.0.0.1:${gateway.port}/api/chat`,
    httpUrl: gateway.url,
    async close() {
      try {
        await gateway.close();
      } finally {
        await pool.close();
      }
    },
  };
}

/**
 * Polls until `check` gives something other than false, null or undefined (a
 * throw counts as not yet), or the time is up.
 */
export async function eventually<T>(
  check: () => T | false | null | undefined | Promise<T | false | null | undefined>,
  timeoutMs = 10_000,
  what = 'condition',
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== undefined && value !== null) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
