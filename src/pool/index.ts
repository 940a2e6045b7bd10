/**
 * The worker pool: `createPool(config, logger)` validates the settings and
 * creates the provider they name from the registry. See docs/pool.md.
 */
import type { Logger } from 'pino';
import { parsePoolConfig, type PoolConfigInput } from './config.js';
import { Pool } from './pool.js';
import type { AnyProviderDefinition } from './provider.js';
import { PROVIDERS } from './registry.js';
import type { WorkerPool } from './types.js';

export { parsePoolConfig, PoolConfigError, PoolConfigSchema, type PoolConfig, type PoolConfigInput } from './config.js';
export { findProvider, PROVIDER_NAMES, PROVIDERS, type ProviderName } from './registry.js';
export type { AnyProviderDefinition, ProviderCapabilities, ProviderDefinition } from './provider.js';
export * from './types.js';

export interface CreatePoolOptions {
  /** Providers to choose from instead of the built-in ones (tests add stand-ins this way). */
  registry?: readonly AnyProviderDefinition[];
}

/** Throws PoolConfigError when the settings are invalid. Call start() next, and close() on shutdown. */
export function createPool(config: PoolConfigInput, logger: Logger, options: CreatePoolOptions = {}): WorkerPool {
  const registry = options.registry ?? PROVIDERS;
  const parsed = parsePoolConfig(config, 'pool', registry) as unknown as Record<string, unknown> & { provider: string; warm: number; maxWorkers: number; maxQueue: number; idleTimeoutSeconds: number };
  const definition = registry.find((p) => p.name === parsed.provider)!;
  const limits = {
    maxWorkers: parsed.maxWorkers,
    // Nothing to keep warm where the pool cannot start workers.
    warm: definition.capabilities.launches ? parsed.warm : 0,
    maxQueue: parsed.maxQueue,
    idleTimeoutSeconds: parsed.idleTimeoutSeconds,
  };
  return new Pool(limits, logger, (events) => definition.create({ settings: parsed[definition.name], pool: limits, log: logger, events }));
}
