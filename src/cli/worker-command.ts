import type { Command } from 'commander';
import { ENGINE_NAMES, createEngine, type EngineName } from '../engines/registry.js';
import { LOOPBACK_DEFAULTS } from '../engines/loopback.js';
import { createLogger } from '../util/logger.js';
import { startWorkerServer, type WorkerServer } from '../worker/server.js';
import { intOption, numberOption, onShutdown } from './options.js';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run a worker: one engine serving one conversation at a time over the Moshi protocol')
    .option('--port <n>', 'port to listen on (0 picks a free one)', intOption, 8998)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--engine <name>', `engine: ${ENGINE_NAMES.join(', ')}`, process.env.QUILLMAN_ENGINE ?? 'loopback')
    .option('--slots <n>', 'independent workers in this process, on consecutive ports (they share loaded models)', intOption, 1)
    .option('--loopback-delay-ms <ms>', 'loopback: delay, including its 80 ms frame', numberOption, LOOPBACK_DEFAULTS.delayMs)
    .option('--loopback-text-interval-ms <ms>', 'loopback: stream time between text pieces (0: none)', numberOption, LOOPBACK_DEFAULTS.textIntervalMs)
    .option('--idle-timeout <s>', 'end a conversation after this long without audio', numberOption, 30)
    .action(async (opts: { port: number; host: string; engine: string; slots: number; loopbackDelayMs: number; loopbackTextIntervalMs: number; idleTimeout: number }) => {
      const log = createLogger('worker');
      if (!(ENGINE_NAMES as readonly string[]).includes(opts.engine)) {
        throw new Error(`unknown engine "${opts.engine}": choose one of ${ENGINE_NAMES.join(', ')}`);
      }
      const engine = await createEngine({
        name: opts.engine as EngineName,
        loopback: { delayMs: opts.loopbackDelayMs, textIntervalMs: opts.loopbackTextIntervalMs },
      });
      const servers: WorkerServer[] = [];
      for (let i = 0; i < opts.slots; i++) {
        servers.push(
          await startWorkerServer({
            port: opts.port === 0 ? 0 : opts.port + i,
            host: opts.host,
            engine,
            log: log.child({ slot: i }),
            idleTimeoutMs: opts.idleTimeout * 1000,
          }),
        );
      }
      onShutdown(log, async () => {
        await Promise.all(servers.map((s) => s.close()));
        await engine.dispose?.();
      });
    });
}
