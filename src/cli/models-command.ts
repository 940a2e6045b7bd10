/**
 * `quillman models pull [names...]` and `quillman models list`: the neural
 * models of the cascade engine, fetched ahead of time (a server would
 * otherwise download them on its first start).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { modelCacheDir } from '../models/cache.js';
import { modelsList, modelsPull } from '../models/commands.js';
import { checkMirror, describeMirror } from '../models/mirror.js';

interface CacheFlags {
  /** The same flag as serve's and worker's --models-dir. */
  modelsDir?: string;
}

function cacheDirOf(flags: CacheFlags): string {
  return flags.modelsDir ? resolve(flags.modelsDir) : modelCacheDir();
}

export function registerModelsCommand(program: Command): void {
  const models = program
    .command('models')
    .description('download and list the neural models of the cascade engine (cache: QUILLMAN_CACHE_DIR or ~/.cache/quillman/models)');

  models
    .command('pull')
    .description('download models, resuming interrupted downloads and checking checksums (no names: the defaults); QUILLMAN_MODEL_MIRROR=<url> fetches from a mirror')
    .argument('[names...]', 'model names from `quillman models list`')
    .option('--models-dir <dir>', 'model cache folder [default: QUILLMAN_CACHE_DIR or ~/.cache/quillman/models]')
    .action(async (names: string[], flags: CacheFlags) => {
      checkMirror();
      const mirror = describeMirror();
      if (mirror) process.stdout.write(`${mirror}\n`);
      // Ctrl-C stops the download cleanly: what arrived stays in <file>.partial and the next pull resumes it.
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      try {
        const results = await modelsPull(names, { cacheDir: cacheDirOf(flags), signal: controller.signal });
        if (results.some((r) => !r.ok)) process.exitCode = 1;
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
    });

  models
    .command('list')
    .description('list the known models, whether each is installed, and the cache folder')
    .option('--models-dir <dir>', 'model cache folder [default: QUILLMAN_CACHE_DIR or ~/.cache/quillman/models]')
    .option('--json', 'print JSON for scripts instead of the table')
    .action(async (flags: CacheFlags & { json?: boolean }) => {
      const rows = await modelsList({ cacheDir: cacheDirOf(flags), out: flags.json ? () => undefined : undefined });
      if (flags.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    });
}
