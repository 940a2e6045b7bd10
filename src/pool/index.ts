/**
 * The worker pool: `createPool(config, logger)` validates the settings and
 * picks the provider. See docs/pool.md for the design.
 */
import type { Logger } from 'pino';
import { parsePoolConfig, type PoolConfigInput } from './config.js';
import { Pool } from './pool.js';
import { LocalProvider } from './providers/local.js';
import { RemoteProvider } from './providers/remote.js';
import type { WorkerPool } from './types.js';

export { parsePoolConfig, PoolConfigError, PoolConfigSchema, type PoolConfig, type PoolConfigInput } from './config.js';
export * from './types.js';

/** Throws PoolConfigError when the settings are invalid. Call start() next, and close() on shutdown. */
export function createPool(config: PoolConfigInput, logger: Logger): WorkerPool {
  const parsed = parsePoolConfig(config);
  const settings = {
    maxWorkers: parsed.maxWorkers,
    warm: parsed.provider === 'local' ? parsed.warm : 0,
    maxQueue: parsed.maxQueue,
    idleTimeoutSeconds: parsed.idleTimeoutSeconds,
    cooldownSeconds: parsed.provider === 'local' ? parsed.local.restart.cooldownSeconds : 0,
  };
  return new Pool(settings, logger, (events) =>
    parsed.provider === 'local' ? new LocalProvider(parsed.local, logger, events) : new RemoteProvider(parsed.remote, logger, events),
  );
}
