import { Option, type Command } from 'commander';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSettings, SETTINGS, type Settings } from '../config/settings.js';
import { startGateway } from '../gateway/server.js';
import { createPool, findProvider } from '../pool/index.js';
import { prepareMoshi, type MoshiPlan } from '../kyutai/prepare.js';
import { stderrProgressBars } from '../models/progress-bar.js';
import { createLogger, type Logger } from '../util/logger.js';
import { onShutdown } from './options.js';
import { shellQuote } from '../util/shell-quote.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');


/** This very CLI (built or run through tsx) started as a worker: the default local worker command. */
export function selfWorkerCommand(engine: string): string {
  const self = [process.execPath, ...process.execArgv, process.argv[1]].map(shellQuote).join(' ');
  return `${self} worker --engine ${shellQuote(engine)} --port {port}`;
}

export const ENGINE_LABELS: Record<string, string> = {
  cascade: 'cascade (CPU: VAD → speech-to-text → language model → text-to-speech)',
  loopback: 'loopback (TEST ENGINE: plays your voice back after a delay; not a conversation)',
};

/** With `moshi`, the plan prepareMoshi() made supplies the worker command, its environment and the GPUs. */
export function resolveSettings(flags: Record<string, unknown>, moshi?: MoshiPlan): Settings {
  return loadSettings({
    configFile: flags.config as string | undefined,
    flags,
    derive(raw) {
      const pool = ((raw.pool ??= {}) as Record<string, unknown>);
      const engine = ((raw.engine ??= {}) as Record<string, unknown>);
      const gateway = ((raw.gateway ??= {}) as Record<string, unknown>);
      const local = ((pool.local ??= {}) as Record<string, unknown>);
      if (moshi) {
        local.command ??= moshi.command;
        local.env = { ...moshi.env, ...(local.env as object | undefined) };
        local.gpus ??= moshi.gpus;
        // Moshi 7B loads 15 GB of weights before it listens: minutes on a cold disk.
        local.readyTimeoutSeconds ??= 1800;
      }
      local.command ??= selfWorkerCommand(String(engine.name ?? 'cascade'));
      // Our workers read their engine settings from here, so one config file configures the whole system.
      local.env = { QUILLMAN_ENGINE_SETTINGS: JSON.stringify(engine), ...(local.env as object | undefined) };
      gateway.staticDir ??= resolve(REPO_ROOT, 'dist/web');
    },
  });
}

export function registerServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description('run the gateway: the web app, and one worker per conversation from a pool')
    .option('--config <file>', 'YAML or JSON settings file (also QUILLMAN_CONFIG)');
  for (const spec of SETTINGS) {
    const option = new Option(spec.flag, `${spec.description} [env ${spec.env}]`);
    cmd.addOption(spec.choices ? option.choices(spec.choices) : option);
  }
  cmd.action(async (flags: Record<string, unknown>) => {
    let settings = resolveSettings(flags);
    const log = createLogger('gateway');
    let moshiLabel: string | undefined;
    if (settings.engine.name === 'moshi') {
      const plan = await setUpMoshi(settings, log);
      settings = resolveSettings(flags, plan);
      moshiLabel = plan.label;
    }
    // A provider whose workers run something else than our engine (remote servers, Kyutai on a GPU host) names it.
    const engineLabel = moshiLabel ?? findProvider(settings.pool.provider)?.engineLabel ?? ENGINE_LABELS[settings.engine.name] ?? settings.engine.name;
    const pool = createPool(settings.pool, log.child({ component: 'pool' }));
    const startPool = pool.start();
    const gateway = await startGateway({ settings: settings.gateway, pool, log, engineLabel });
    log.info(`QuiLLMan is serving ${gateway.url} with the ${engineLabel} engine`);
    // Drain first: no new conversations, live ones warned and given drainSeconds; a second signal skips the wait.
    onShutdown(
      log,
      async (hurry) => {
        hurry.addEventListener('abort', () => void gateway.close(), { once: true });
        await gateway.drain();
        await gateway.close();
        await pool.close();
      },
      { forceAfterMs: settings.gateway.drainSeconds * 1000 + 15_000 },
    );
    await startPool.catch((err: Error) => log.error({ err }, 'the worker pool failed to start'));
  });
}

/** Python environment, weights and GPUs for `--engine moshi`, with progress on the terminal. */
async function setUpMoshi(settings: Settings, log: Logger): Promise<MoshiPlan> {
  if (settings.pool.provider !== 'local') {
    throw new Error(
      `--engine moshi sets up Kyutai's server on this machine; with --provider ${settings.pool.provider} the workers run elsewhere and bring their own. Drop --engine moshi.`,
    );
  }
  return prepareMoshi({
    settings: settings.engine.moshi,
    gpus: settings.pool.local.gpus,
    say: (line) => log.info(`moshi: ${line}`),
    onFileProgress: stderrProgressBars('moshi weights '),
  });
}
