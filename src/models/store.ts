/**
 * Installs registry models into the cache and answers "is it there?".
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_FILE, modelCacheDir, modelDir } from './cache.js';
import { downloadFile, DownloadError, type DownloadProgress } from './download.js';
import { mirroredUrl } from './mirror.js';
import { runCommand } from '../util/run-command.js';
import { findModel, MODELS, modelSize, type ModelSpec } from './registry.js';

export interface ModelProgress {
  model: string;
  /** 0..1 over the whole model. */
  fraction?: number;
  received: number;
  total?: number;
  bytesPerSecond?: number;
  message: string;
}

export interface EnsureOptions {
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: (p: ModelProgress) => void;
  /** Per-file progress, e.g. a terminal bar. */
  onFileProgress?: (file: string, p: DownloadProgress) => void;
  fetchImpl?: typeof fetch;
  idleTimeoutMs?: number;
}

export interface Manifest {
  name: string;
  installedAt: string;
  files: { path: string; sha256: string; verified: boolean }[];
}

export class ModelNotInstalledError extends Error {
  constructor(readonly model: string) {
    super(`Model ${model} is not installed. Run \`quillman models pull ${model}\` to download it.`);
    this.name = 'ModelNotInstalledError';
  }
}

export async function readManifest(spec: ModelSpec, cacheDir = modelCacheDir()): Promise<Manifest | undefined> {
  try {
    const raw = await readFile(join(modelDir(cacheDir, spec.name), MANIFEST_FILE), 'utf8');
    const parsed = JSON.parse(raw) as Manifest;
    return parsed && parsed.name === spec.name ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export async function isInstalled(spec: ModelSpec, cacheDir = modelCacheDir()): Promise<boolean> {
  return (await readManifest(spec, cacheDir)) !== undefined;
}

/** The model's folder if installed, else throws ModelNotInstalledError. */
export async function installedModelDir(name: string, cacheDir = modelCacheDir(), registry: readonly ModelSpec[] = MODELS): Promise<string> {
  const spec = findModel(name, registry);
  if (!spec) throw new Error(`Unknown model ${name}. Known models: ${registry.map((m) => m.name).join(', ')}`);
  if (!(await isInstalled(spec, cacheDir))) throw new ModelNotInstalledError(name);
  return modelDir(cacheDir, name);
}

async function untar(archive: string, into: string, signal?: AbortSignal): Promise<void> {
  // The system tar (GNU tar, bsdtar on macOS and Windows 10+) reads bzip2; no npm package we trust does.
  const { code, stderr } = await runCommand('tar', ['-xjf', archive, '-C', into], { signal, stderrLimit: 4000 }).catch((err: Error) => {
    throw new DownloadError(`Cannot unpack ${archive}: ${err.message} (is \`tar\` installed?)`, 'io', { cause: err });
  });
  if (code !== 0) throw new DownloadError(`Cannot unpack ${archive}: tar exited with ${code}: ${stderr.trim()}`, 'io');
}

/**
 * Downloads (resuming where a previous attempt stopped) and verifies a model.
 * Returns its folder. Already-installed models return at once.
 */
export async function ensureModel(spec: ModelSpec, opts: EnsureOptions = {}): Promise<string> {
  const cacheDir = opts.cacheDir ?? modelCacheDir();
  const dir = modelDir(cacheDir, spec.name);
  if (await isInstalled(spec, cacheDir)) return dir;
  await mkdir(dir, { recursive: true });

  const total = modelSize(spec);
  let doneBytes = 0;
  const report = (file: string, p: DownloadProgress) => {
    opts.onFileProgress?.(file, p);
    const received = doneBytes + p.received;
    opts.onProgress?.({
      model: spec.name,
      received,
      total,
      fraction: total > 0 ? Math.min(1, received / total) : undefined,
      bytesPerSecond: p.bytesPerSecond,
      message: `Downloading ${spec.name}: ${(received / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(0)} MB`,
    });
  };
  const common = { signal: opts.signal, fetchImpl: opts.fetchImpl, idleTimeoutMs: opts.idleTimeoutMs };
  const files: Manifest['files'] = [];

  if (spec.archive) {
    const archivePath = join(cacheDir, `${spec.name}.tar.bz2`);
    const res = await downloadFile({
      url: mirroredUrl(spec.archive.url),
      dest: archivePath,
      sha256: spec.archive.sha256,
      expectedSize: spec.archive.size,
      onProgress: (p) => report(spec.archive!.topFolder, p),
      ...common,
    });
    const staging = join(cacheDir, `.${spec.name}.unpack`);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await untar(archivePath, staging, opts.signal);
    await rm(dir, { recursive: true, force: true });
    await rename(join(staging, spec.archive.topFolder), dir);
    await rm(staging, { recursive: true, force: true });
    await rm(archivePath, { force: true });
    files.push({ path: spec.archive.url.split('/').pop() ?? 'archive', sha256: res.sha256, verified: Boolean(spec.archive.sha256) });
  } else {
    for (const f of spec.files ?? []) {
      const res = await downloadFile({
        url: mirroredUrl(f.url),
        dest: join(dir, f.path),
        sha256: f.sha256,
        expectedSize: f.size,
        onProgress: (p) => report(f.path, p),
        ...common,
      });
      doneBytes += res.bytes;
      files.push({ path: f.path, sha256: res.sha256, verified: Boolean(f.sha256) });
    }
  }
  const manifest: Manifest = { name: spec.name, installedAt: new Date().toISOString(), files };
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  return dir;
}
