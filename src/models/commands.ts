/**
 * `quillman models pull [names]` and `quillman models list`, as functions the
 * CLI wires up. They print for people and return data for scripts and tests.
 */
import { modelCacheDir, modelDir } from './cache.js';
import { stderrProgressBars } from './progress-bar.js';
import { defaultModels, findModel, MODELS, modelSize, type ModelSpec } from './registry.js';
import { ensureModel, readManifest, type EnsureOptions } from './store.js';

export interface ModelsCommandOptions extends Omit<EnsureOptions, 'onFileProgress'> {
  registry?: readonly ModelSpec[];
  /** Where human-readable lines go (default stdout); progress bars always go to stderr. */
  out?: (line: string) => void;
  /** Show stderr progress bars (default true). */
  progressBar?: boolean;
}

export interface PullResult {
  name: string;
  ok: boolean;
  dir?: string;
  error?: string;
  /** SHA-256 values recorded for files the registry had no checksum for (trust on first use). */
  unpinned?: { path: string; sha256: string }[];
}

export async function modelsPull(names: string[] = [], opts: ModelsCommandOptions = {}): Promise<PullResult[]> {
  const registry = opts.registry ?? MODELS;
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const cacheDir = opts.cacheDir ?? modelCacheDir();
  const specs: ModelSpec[] = [];
  const results: PullResult[] = [];
  for (const name of names.length > 0 ? names : defaultModels(registry).map((m) => m.name)) {
    const spec = findModel(name, registry);
    if (spec) specs.push(spec);
    else results.push({ name, ok: false, error: `Unknown model ${name}. Known: ${registry.map((m) => m.name).join(', ')}` });
  }
  for (const r of results) out(`✗ ${r.error}`);
  for (const spec of specs) {
    try {
      const dir = await ensureModel(spec, {
        ...opts,
        cacheDir,
        onFileProgress: opts.progressBar === false ? undefined : stderrProgressBars(`${spec.name}/`),
      });
      const manifest = await readManifest(spec, cacheDir);
      const unpinned = (manifest?.files ?? []).filter((f) => !f.verified).map((f) => ({ path: f.path, sha256: f.sha256 }));
      results.push({ name: spec.name, ok: true, dir, unpinned });
      out(`✓ ${spec.name} → ${dir}`);
      for (const u of unpinned) out(`  note: ${u.path} has no published checksum; recorded sha256 ${u.sha256}`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      results.push({ name: spec.name, ok: false, error: message });
      out(`✗ ${spec.name}: ${message}`);
    }
  }
  return results;
}

export interface ListedModel {
  name: string;
  kind: string;
  installed: boolean;
  default: boolean;
  sizeMB: number;
  dir: string;
  description: string;
}

export async function modelsList(opts: Pick<ModelsCommandOptions, 'registry' | 'cacheDir' | 'out'> = {}): Promise<ListedModel[]> {
  const registry = opts.registry ?? MODELS;
  const cacheDir = opts.cacheDir ?? modelCacheDir();
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rows: ListedModel[] = [];
  for (const spec of registry) {
    rows.push({
      name: spec.name,
      kind: spec.kind,
      installed: (await readManifest(spec, cacheDir)) !== undefined,
      default: spec.default,
      sizeMB: Math.round(modelSize(spec) / 1e6),
      dir: modelDir(cacheDir, spec.name),
      description: spec.description,
    });
  }
  out(`Model cache: ${cacheDir}`);
  const width = Math.max(...rows.map((r) => r.name.length), 4);
  for (const r of rows) {
    out(`${r.installed ? '✓' : ' '} ${r.name.padEnd(width)}  ${r.kind.padEnd(3)}  ${String(r.sizeMB).padStart(5)} MB${r.default ? '  (default)' : ''}  ${r.description}`);
  }
  if (rows.some((r) => !r.installed)) out('Install with `quillman models pull [names]` (no names: the defaults).');
  return rows;
}
