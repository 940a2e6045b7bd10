/**
 * What runs in each sandbox: Kyutai's moshi.server on all interfaces (the
 * default is localhost only, which nothing outside the container reaches),
 * its weights in Hugging Face's cache on the volume, and no web client (the
 * gateway serves ours). Plain data, so the docs and the smoke script show
 * exactly what the provider sends.
 */
import { MOSHI_PORT, VOLUME_MOUNT, type ModalSettings } from './settings.js';

/** Tags on every sandbox: which gateway owns it, which worker it serves, on what GPU. */
export const TAG = {
  gateway: 'quillman-gateway',
  worker: 'quillman-worker',
  gpu: 'quillman-gpu',
  /** Unique per creation: finds a sandbox still waiting for a GPU, to end it when our own wait is over. */
  start: 'quillman-start',
} as const;

export type ImageSpec = { tag: string; commands: string[] };

/** The registry image, and the Dockerfile commands on top of it (none for a user's own image). */
export function imageSpec(settings: Pick<ModalSettings, 'image' | 'baseImage' | 'moshiVersion'>): ImageSpec {
  if (settings.image) return { tag: settings.image, commands: [] };
  return { tag: settings.baseImage, commands: [`RUN pip install --no-cache-dir moshi==${settings.moshiVersion}`] };
}

export function serverCommand(settings: Pick<ModalSettings, 'hfRepo' | 'serverArgs'>): string[] {
  return [
    'python',
    '-m',
    'moshi.server',
    '--host',
    '0.0.0.0',
    '--port',
    String(MOSHI_PORT),
    '--static',
    'none',
    ...(settings.hfRepo ? ['--hf-repo', settings.hfRepo] : []),
    ...settings.serverArgs,
  ];
}

export function sandboxEnv(settings: Pick<ModalSettings, 'env'>): Record<string, string> {
  return { HF_HOME: `${VOLUME_MOUNT}/huggingface`, PYTHONUNBUFFERED: '1', ...settings.env };
}
