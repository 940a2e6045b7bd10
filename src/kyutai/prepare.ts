/**
 * `--engine moshi`: everything the README's GPU section used to ask people to
 * do by hand, done before the gateway starts its workers. It checks the GPUs,
 * makes the managed Python environment with Kyutai's pinned package,
 * downloads the weights that fit the GPUs into the models cache, and returns
 * the command that starts one Kyutai server per GPU through the local
 * provider (which pins each to its GPU with CUDA_VISIBLE_DEVICES).
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { shellQuote } from '../util/shell-quote.js';
import type { DownloadProgress } from '../models/download.js';
import { detectGpus, planGpus, type Gpu } from './gpus.js';
import { ensurePythonEnv, type EnvProgress } from './python-env.js';
import { assignRoles, ensureMoshiWeights, MOSHI_QUANTIZATIONS, MOSHI_VOICES, moshiRepo, type MoshiWeights } from './weights.js';

/** Starts Kyutai's server unchanged, but for a CPU warm-up fix (see the file). */
export const MOSHI_LAUNCHER = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/kyutai/moshi_server.py');

export const MoshiSettingsSchema = z
  .object({
    /** Kyutai's two voices: moshiko (male), moshika (female). */
    voice: z.enum(MOSHI_VOICES).default('moshiko'),
    /** bf16 needs 24 GB per GPU, q8 12 GB; auto picks by the smallest GPU used. */
    quantization: z.enum([...MOSHI_QUANTIZATIONS, 'auto']).default('auto'),
    /** cpu runs only the tiny test checkpoint in real time; Moshi 7B needs CUDA. */
    device: z.enum(['cuda', 'cpu']).default('cuda'),
    /** A folder with config.json, the Moshi and Mimi safetensors and tokenizer.model, instead of Kyutai's weights. */
    checkpoint: z.string().min(1).optional(),
  })
  .strict();

export type MoshiSettings = z.output<typeof MoshiSettingsSchema>;

export interface MoshiPlan {
  /** The local provider's command template ({port}, {host}). */
  command: string;
  /** For the workers: offline Hugging Face, no torch.compile on CPU. */
  env: Record<string, string>;
  /** GPU ids to pin one worker each to; undefined on CPU. */
  gpus?: string[];
  label: string;
  weights: MoshiWeights;
}

export class MoshiSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MoshiSetupError';
  }
}

/** A checkpoint folder of one's own (e.g. the tiny test model): its files by role. */
export function checkpointWeights(dir: string): MoshiWeights {
  const folder = resolve(dir);
  if (!existsSync(folder)) throw new MoshiSetupError(`--moshi-checkpoint ${dir}: no such folder.`);
  return assignRoles(folder, readdirSync(folder));
}

/** The command line of one Kyutai server, with {host} and {port} left for the local provider. */
export function serverCommand(python: string, weights: MoshiWeights, device: 'cuda' | 'cpu'): string {
  const args = [
    python,
    MOSHI_LAUNCHER,
    '--device',
    device,
    '--moshi-weight',
    weights.moshi,
    '--mimi-weight',
    weights.mimi,
    '--tokenizer',
    weights.tokenizer,
    ...(weights.config ? ['--config-path', weights.config] : []),
    // Kyutai's own web page would be downloaded from the Hub at start; the gateway serves ours.
    '--static',
    'none',
  ].map(shellQuote);
  return [...args, '--host', '{host}', '--port', '{port}'].join(' ');
}

export interface PrepareOptions {
  settings: MoshiSettings;
  /** GPU ids the user listed (--gpus); all that nvidia-smi finds otherwise. */
  gpus?: string[];
  say?: (line: string) => void;
  /** Each weights file's download progress. */
  onFileProgress?: (file: string, progress: DownloadProgress) => void;
  detect?: () => Promise<Gpu[]>;
}

export async function prepareMoshi(options: PrepareOptions): Promise<MoshiPlan> {
  const { settings } = options;
  const say = options.say ?? (() => undefined);
  let gpus: Gpu[] = [];
  let quantization = settings.quantization === 'auto' ? 'bf16' : settings.quantization;
  if (settings.device === 'cpu') {
    if (!settings.checkpoint) {
      throw new MoshiSetupError(
        'Moshi 7B cannot run in real time on a CPU: --moshi-device cpu takes only a small checkpoint of your own (--moshi-checkpoint DIR; the tests use a tiny random one). ' +
          'For a conversation without a GPU use the CPU engine (--engine cascade) or serverless GPUs (--provider modal).',
      );
    }
    say('Moshi on the CPU: for tests and small checkpoints only');
  } else {
    const found = await (options.detect ?? detectGpus)();
    try {
      const plan = planGpus(found, { wanted: options.gpus, quantization: settings.quantization });
      gpus = plan.gpus;
      quantization = plan.quantization;
    } catch (err) {
      throw new MoshiSetupError((err as Error).message);
    }
    say(`GPUs: ${gpus.map((g) => `${g.index} ${g.name} (${Math.round(g.memoryMiB / 1024)} GB)`).join(', ')}; one Moshi server each, ${quantization} weights`);
  }

  const env = await ensurePythonEnv({ onProgress: (p: EnvProgress) => say(p.message) }).catch((err: Error) => {
    throw new MoshiSetupError(err.message);
  });

  let weights: MoshiWeights;
  if (settings.checkpoint) {
    weights = checkpointWeights(settings.checkpoint);
    say(`weights: ${weights.dir}`);
  } else {
    say(`weights: ${moshiRepo(settings.voice, quantization)} (about ${quantization === 'bf16' ? '15' : '8'} GB, once)`);
    weights = await ensureMoshiWeights({
      voice: settings.voice,
      quantization,
      onFileProgress: options.onFileProgress,
    }).catch((err: Error) => {
      throw new MoshiSetupError(err.message);
    });
  }

  return {
    command: serverCommand(env.python, weights, settings.device),
    // On a CPU a small model runs best on one thread; torch.compile needs a compiler toolchain and CUDA.
    env: { HF_HUB_OFFLINE: '1', PYTHONUNBUFFERED: '1', ...(settings.device === 'cpu' ? { NO_TORCH_COMPILE: '1', OMP_NUM_THREADS: '1' } : {}) },
    gpus: settings.device === 'cpu' ? undefined : gpus.map((g) => g.index),
    label: `moshi (Kyutai's moshi.server ${env.moshiVersion}, ${settings.checkpoint ? `checkpoint ${weights.dir}` : `${settings.voice} ${quantization}`}, ${settings.device})`,
    weights,
  };
}
