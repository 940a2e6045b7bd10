/**
 * Which NVIDIA GPUs this machine has, and what Moshi can run on them.
 *
 * Moshi 7B needs 16–24 GB of GPU memory with bf16 weights (15.4 GB of weights
 * plus activations) and about 12 GB with q8 (8.2 GB of weights). `auto` takes
 * bf16 where every GPU used has 24 GB or more, q8 where they have 12 GB or
 * more, and refuses below that rather than let CUDA run out of memory.
 */
import { execFile } from 'node:child_process';
import type { MoshiQuantization } from './weights.js';

export interface Gpu {
  /** CUDA index as nvidia-smi numbers it (what CUDA_VISIBLE_DEVICES takes). */
  index: string;
  name: string;
  memoryMiB: number;
}

export const BF16_MIN_MIB = 24 * 1024;
export const Q8_MIN_MIB = 12 * 1024;

export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

/** nvidia-smi's CSV: "0, NVIDIA L4, 23034" per line. */
export function parseNvidiaSmi(csv: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const line of csv.split('\n')) {
    const [index, name, memory] = line.split(',').map((s) => s.trim());
    if (!index || !name || !memory || !/^\d+$/.test(index) || !Number.isFinite(Number(memory))) continue;
    gpus.push({ index, name, memoryMiB: Number(memory) });
  }
  return gpus;
}

/** The GPUs nvidia-smi reports; an empty list when it is missing or finds none. */
export function detectGpus(env: NodeJS.ProcessEnv = process.env): Promise<Gpu[]> {
  return new Promise((resolve) => {
    execFile(
      env.QUILLMAN_NVIDIA_SMI ?? 'nvidia-smi',
      ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'],
      { timeout: 15_000, env },
      (err, stdout) => resolve(err ? [] : parseNvidiaSmi(stdout)),
    );
  });
}

const gib = (mib: number) => `${Math.round(mib / 1024)} GB`;

/**
 * The GPUs to use (all found, or those asked for) and the precision that fits
 * the smallest of them. Throws GpuError with what to do next.
 */
export function planGpus(found: Gpu[], options: { wanted?: string[]; quantization: MoshiQuantization | 'auto' }): { gpus: Gpu[]; quantization: MoshiQuantization } {
  if (found.length === 0) {
    throw new GpuError(
      'No NVIDIA GPU was found (nvidia-smi is missing or lists none). Moshi needs a GPU with 16–24 GB of memory (12 GB with --moshi-quantization q8). ' +
        'Run QuiLLMan on a GPU machine, use serverless GPUs with --provider modal, or use the CPU engine (--engine cascade). ' +
        'The tiny CPU checkpoint (--moshi-device cpu --moshi-checkpoint DIR) exists for tests only.',
    );
  }
  let gpus = found;
  if (options.wanted?.length) {
    const unknown = options.wanted.filter((id) => !found.some((g) => g.index === id));
    if (unknown.length) throw new GpuError(`GPU ${unknown.join(', ')} is not on this machine; nvidia-smi lists ${found.map((g) => `${g.index} (${g.name})`).join(', ')}.`);
    gpus = found.filter((g) => options.wanted!.includes(g.index));
  }
  const smallest = Math.min(...gpus.map((g) => g.memoryMiB));
  const small = gpus.find((g) => g.memoryMiB === smallest)!;
  let quantization: MoshiQuantization;
  if (options.quantization === 'auto') {
    if (smallest >= BF16_MIN_MIB) quantization = 'bf16';
    else if (smallest >= Q8_MIN_MIB) quantization = 'q8';
    else throw new GpuError(notEnough(small, Q8_MIN_MIB, 'q8'));
  } else {
    quantization = options.quantization;
    const need = quantization === 'bf16' ? BF16_MIN_MIB : Q8_MIN_MIB;
    if (smallest < need) {
      const hint = quantization === 'bf16' && smallest >= Q8_MIN_MIB ? ' Use --moshi-quantization q8 (or auto), which needs 12 GB.' : '';
      throw new GpuError(notEnough(small, need, quantization) + hint);
    }
  }
  return { gpus, quantization };
}

function notEnough(gpu: Gpu, need: number, quantization: string): string {
  return (
    `GPU ${gpu.index} (${gpu.name}) has ${gib(gpu.memoryMiB)} of memory; Moshi with ${quantization} weights needs at least ${gib(need)}. ` +
    'Choose larger GPUs with --gpus, or use serverless GPUs (--provider modal) or the CPU engine (--engine cascade).'
  );
}
