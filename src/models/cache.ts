import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Where models live: QUILLMAN_CACHE_DIR, else ~/.cache/quillman/models. */
export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.QUILLMAN_CACHE_DIR?.trim();
  if (override) return resolve(override);
  return join(homedir(), '.cache', 'quillman', 'models');
}

export function modelDir(cacheDir: string, name: string): string {
  return join(cacheDir, name);
}

/** Written last, so a folder without it is an interrupted install, never a usable model. */
export const MANIFEST_FILE = 'quillman-manifest.json';
