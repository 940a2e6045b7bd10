/**
 * The "container image" the simulated nodes run: this checkout's CLI bundled
 * into one ES module, as the Dockerfile's `npm run build` makes dist/ for the
 * real image. One file starts in about a second where `node --import tsx`
 * takes several on a busy machine, which matters when a test runs eighty
 * worker pods. Packages stay external and load from node_modules, so the
 * bundle lives under node_modules/.cache.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../../..');

export interface Image {
  /** `node <entry> <args>` is the image's entrypoint. */
  readonly entry: string;
  remove(): void;
}

export async function buildImage(): Promise<Image> {
  // esbuild is installed with tsx (which runs every test); it does the same transform here, once.
  const { build } = await import('esbuild');
  const dir = join(REPO, 'node_modules/.cache/quillman-kubernetes-tests', `${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(dir, { recursive: true });
  const entry = join(dir, 'quillman.mjs');
  await build({
    entryPoints: [join(REPO, 'src/cli/main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: entry,
    logLevel: 'warning',
  });
  return { entry, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
