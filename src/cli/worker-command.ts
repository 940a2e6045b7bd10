import type { Command } from 'commander';
import { CASCADE_SETTINGS, cascadeSettingsFor } from '../config/settings.js';
import { ENGINE_NAMES, createEngine, type EngineName, type EngineSettings } from '../engines/registry.js';
import { LOOPBACK_DEFAULTS } from '../engines/loopback.js';
import { createLogger } from '../util/logger.js';
import { startWorkerServer, type WorkerServer } from '../worker/server.js';
import { intOption, numberOption, onShutdown } from './options.js';

interface WorkerFlags extends Record<string, unknown> {
  port: number;
  host: string;
  engine?: string;
  slots: number;
  loopbackDelayMs?: number;
  loopbackTextIntervalMs?: number;
  idleTimeout: number;
  packetsPerPage: number;
  echoPages?: boolean;
}

function inheritedSettings(): Partial<EngineSettings> {
  const raw = process.env.QUILLMAN_ENGINE_SETTINGS;
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Partial<EngineSettings>;
  } catch {
    // reported below
  }
  throw new Error('QUILLMAN_ENGINE_SETTINGS is not a JSON object; it is set by `quillman serve` for the workers it starts: unset it to run a worker on its own');
}

/**
 * Engine settings: the gateway hands its own to the workers it starts through
 * QUILLMAN_ENGINE_SETTINGS (JSON); flags given here win over them. The cascade
 * flags are the very ones `quillman serve` has (one table, config/settings.ts).
 */
function engineSettings(flags: WorkerFlags): EngineSettings {
  const inherited = inheritedSettings();
  const name = flags.engine ?? inherited.name ?? process.env.QUILLMAN_ENGINE ?? 'cascade';
  if (!(ENGINE_NAMES as readonly string[]).includes(name)) throw new Error(`unknown engine "${name}": choose one of ${ENGINE_NAMES.join(', ')}`);
  const loopback = { ...inherited.loopback };
  if (flags.loopbackDelayMs !== undefined) loopback.delayMs = flags.loopbackDelayMs;
  if (flags.loopbackTextIntervalMs !== undefined) loopback.textIntervalMs = flags.loopbackTextIntervalMs;
  const cascade = name === 'cascade' ? cascadeSettingsFor({ inherited: inherited.cascade, flags }) : inherited.cascade;
  return { name: name as EngineName, loopback, cascade };
}

export function registerWorkerCommand(program: Command): void {
  const cmd = program
    .command('worker')
    .description('run a worker: one engine serving one conversation at a time over the Moshi protocol')
    .option('--port <n>', 'port to listen on (0 picks a free one)', intOption, 8998)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--engine <name>', `engine: ${ENGINE_NAMES.join(', ')} [default: cascade]`)
    .option('--slots <n>', 'independent workers in this process, on consecutive ports (they share loaded models)', intOption, 1)
    .option('--loopback-delay-ms <ms>', `loopback: delay, including its 80 ms frame [default: ${LOOPBACK_DEFAULTS.delayMs}]`, numberOption)
    .option('--loopback-text-interval-ms <ms>', `loopback: stream time between text pieces, 0 for none [default: ${LOOPBACK_DEFAULTS.textIntervalMs}]`, numberOption)
    .option('--idle-timeout <s>', 'end a conversation after this long without audio', numberOption, 30)
    .option('--echo-pages', 'benchmarks only: return audio pages as received, without Opus or an engine')
    .option('--packets-per-page <n>', '20 ms Opus packets per Ogg page sent (1: lowest latency; 4: one page per 80 ms frame)', intOption, 1);
  for (const spec of CASCADE_SETTINGS) {
    cmd.option(spec.flag, `${spec.description} [env ${spec.env}]`);
  }
  cmd.action(async (flags: WorkerFlags) => {
    const log = createLogger('worker');
    const engine = await createEngine(engineSettings(flags));
    const servers: WorkerServer[] = [];
    for (let i = 0; i < flags.slots; i++) {
      servers.push(
        await startWorkerServer({
          port: flags.port === 0 ? 0 : flags.port + i,
          host: flags.host,
          engine,
          log: log.child({ slot: i }),
          idleTimeoutMs: flags.idleTimeout * 1000,
          packetsPerPage: flags.packetsPerPage,
          echoPages: flags.echoPages,
        }),
      );
    }
    onShutdown(log, async () => {
      await Promise.all(servers.map((s) => s.close()));
      await engine.dispose?.();
    });
  });
}
