import type { Command } from 'commander';
import { ENGINE_NAMES, createEngine, type EngineName, type EngineSettings } from '../engines/registry.js';
import { LOOPBACK_DEFAULTS } from '../engines/loopback.js';
import { createLogger } from '../util/logger.js';
import { startWorkerServer, type WorkerServer } from '../worker/server.js';
import { intOption, numberOption, onShutdown } from './options.js';

interface WorkerFlags {
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

/**
 * Engine settings: the gateway hands its own to the workers it starts through
 * QUILLMAN_ENGINE_SETTINGS (JSON); flags given here win over them.
 */
function engineSettings(flags: WorkerFlags): EngineSettings {
  const inherited = process.env.QUILLMAN_ENGINE_SETTINGS ? (JSON.parse(process.env.QUILLMAN_ENGINE_SETTINGS) as Partial<EngineSettings>) : {};
  const name = flags.engine ?? inherited.name ?? process.env.QUILLMAN_ENGINE ?? 'cascade';
  if (!(ENGINE_NAMES as readonly string[]).includes(name)) throw new Error(`unknown engine "${name}": choose one of ${ENGINE_NAMES.join(', ')}`);
  const loopback = { ...inherited.loopback };
  if (flags.loopbackDelayMs !== undefined) loopback.delayMs = flags.loopbackDelayMs;
  if (flags.loopbackTextIntervalMs !== undefined) loopback.textIntervalMs = flags.loopbackTextIntervalMs;
  return { name: name as EngineName, loopback, cascade: inherited.cascade };
}

export function registerWorkerCommand(program: Command): void {
  program
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
    .option('--packets-per-page <n>', '20 ms Opus packets per Ogg page sent (1: lowest latency; 4: one page per 80 ms frame)', intOption, 1)
    .action(async (flags: WorkerFlags) => {
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
