/**
 * Moshi's weights, from Kyutai's Hugging Face repositories into our models
 * cache: listed through the Hub's API (which gives each LFS file's SHA-256),
 * then downloaded with progress, resume and checksum by the same code as every
 * other model (src/models/store.ts). Once installed, nothing is fetched again,
 * so a GPU box without Hub access runs from a copied cache.
 *
 * HF_ENDPOINT and QUILLMAN_MODEL_MIRROR redirect the Hub as for other models.
 */
import { join } from 'node:path';
import { modelCacheDir, modelDir } from '../models/cache.js';
import { mirroredUrl } from '../models/mirror.js';
import type { ModelFile, ModelSpec } from '../models/registry.js';
import { ensureModel, readManifest, type EnsureOptions } from '../models/store.js';
import { networkErrorCode } from '../util/network-error.js';

export const MOSHI_VOICES = ['moshiko', 'moshika'] as const;
export type MoshiVoice = (typeof MOSHI_VOICES)[number];
export const MOSHI_QUANTIZATIONS = ['bf16', 'q8'] as const;
export type MoshiQuantization = (typeof MOSHI_QUANTIZATIONS)[number];

const HUB = 'https://huggingface.co';

/** Kyutai's PyTorch repositories: one per voice and precision. */
export function moshiRepo(voice: MoshiVoice, quantization: MoshiQuantization): string {
  return `kyutai/${voice}-pytorch-${quantization}`;
}

/** Cache folder name of a voice and precision. */
export function moshiModelName(voice: MoshiVoice, quantization: MoshiQuantization): string {
  return `moshi-${voice}-${quantization}`;
}

/** What Kyutai's server needs, by role; `config` only where the repository has one (q8 marks quantisation there). */
export interface MoshiWeights {
  dir: string;
  moshi: string;
  mimi: string;
  tokenizer: string;
  config?: string;
}

export class WeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsError';
  }
}

interface HubEntry {
  type: string;
  path: string;
  size?: number;
  lfs?: { oid?: string; size?: number };
}

/** Files the server reads: the LM and Mimi checkpoints, the SentencePiece tokenizer, and config.json. */
function wanted(path: string): boolean {
  return !path.includes('/') && (path.endsWith('.safetensors') || path.endsWith('.model') || path === 'config.json');
}

/** The repository's files at `revision`, with the sizes and LFS SHA-256 values the Hub publishes. */
export async function listRepo(repo: string, revision = 'main', fetchImpl: typeof fetch = fetch): Promise<ModelFile[]> {
  const url = mirroredUrl(`${HUB}/api/models/${repo}/tree/${revision}`);
  let response: Response;
  try {
    response = await fetchImpl(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    const code = networkErrorCode(err);
    throw new WeightsError(
      `Moshi's weights are not reachable: listing ${repo} at ${url} failed${code ? ` (${code})` : `: ${(err as Error).message}`}. ` +
        'Check that this machine reaches huggingface.co (or set HF_ENDPOINT / QUILLMAN_MODEL_MIRROR to a mirror), or copy an installed ' +
        `models cache (${modelCacheDir()}) from a machine that does.`,
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    const hint = response.status === 401 || response.status === 403 ? ' The repository may need you to accept its terms on huggingface.co and set HF_TOKEN.' : '';
    throw new WeightsError(`Moshi's weights are not reachable: ${url} answered HTTP ${response.status}.${hint}`);
  }
  const entries = (await response.json()) as HubEntry[];
  if (!Array.isArray(entries)) throw new WeightsError(`${url} did not answer with a file list`);
  return entries
    .filter((e) => e.type === 'file' && wanted(e.path))
    .map((e) => ({
      path: e.path,
      url: `${HUB}/${repo}/resolve/${revision}/${e.path}`,
      size: e.lfs?.size ?? e.size ?? 0,
      // The Hub gives LFS files' SHA-256; small files (config.json) are plain git blobs without one.
      sha256: e.lfs?.oid && /^[0-9a-f]{64}$/.test(e.lfs.oid) ? e.lfs.oid : null,
    }));
}

/**
 * Assigns each file to its role by Kyutai's naming: the Mimi checkpoint is the
 * "tokenizer-…" safetensors (or "mimi…" in a folder of one's own).
 */
export function assignRoles(dir: string, paths: string[]): MoshiWeights {
  const safetensors = paths.filter((p) => p.endsWith('.safetensors'));
  const mimi = safetensors.find((p) => p.startsWith('tokenizer') || p.startsWith('mimi'));
  const moshi = safetensors.find((p) => p !== mimi && p.startsWith('model'));
  const tokenizer = paths.find((p) => p.endsWith('.model'));
  const missing = [!moshi && 'the Moshi checkpoint (model*.safetensors)', !mimi && 'the Mimi checkpoint (tokenizer-*.safetensors or mimi*.safetensors)', !tokenizer && 'the text tokenizer (*.model)'].filter(Boolean);
  if (missing.length) throw new WeightsError(`The weights in ${dir} lack ${missing.join(', ')}; delete the folder and run again.`);
  return {
    dir,
    moshi: join(dir, moshi!),
    mimi: join(dir, mimi!),
    tokenizer: join(dir, tokenizer!),
    config: paths.includes('config.json') ? join(dir, 'config.json') : undefined,
  };
}

export interface MoshiWeightsOptions extends Omit<EnsureOptions, 'cacheDir'> {
  voice: MoshiVoice;
  quantization: MoshiQuantization;
  cacheDir?: string;
  revision?: string;
}

/** Installed weights at once; otherwise lists the repository and downloads what the server needs. */
export async function ensureMoshiWeights(options: MoshiWeightsOptions): Promise<MoshiWeights> {
  const cacheDir = options.cacheDir ?? modelCacheDir();
  const name = moshiModelName(options.voice, options.quantization);
  const repo = moshiRepo(options.voice, options.quantization);
  const dir = modelDir(cacheDir, name);
  const installed = await readManifest({ name } as ModelSpec, cacheDir);
  if (installed) return assignRoles(dir, installed.files.map((f) => f.path));
  const files = await listRepo(repo, options.revision, options.fetchImpl);
  const spec: ModelSpec = {
    name,
    kind: 'moshi',
    description: `Kyutai's Moshi (${options.voice}, ${options.quantization}) from ${repo}`,
    license: 'CC-BY 4.0 (Kyutai)',
    files,
    default: false,
  };
  // Check the roles before a 15 GB download, not after.
  assignRoles(dir, files.map((f) => f.path));
  await ensureModel(spec, { ...options, cacheDir });
  return assignRoles(dir, files.map((f) => f.path));
}
