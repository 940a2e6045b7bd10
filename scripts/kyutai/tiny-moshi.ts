/**
 * Kyutai's real Moshi server for tests: the pinned `moshi` package in a
 * managed Python environment, and a tiny random checkpoint that it loads and
 * runs on a CPU in real time.
 *
 *   node --import tsx scripts/kyutai/tiny-moshi.ts      make both if missing; print the checkpoint folder
 *
 * `.ci/run` runs it; so does `npm test` when the Kyutai tests are selected.
 * The first run downloads about 4 GB (torch) and takes minutes; later runs
 * find everything keyed by version and return at once.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensurePythonEnv, findPythonEnv, kyutaiDir, MOSHI_VERSION } from '../../src/kyutai/python-env.js';

const WRITER = resolve(import.meta.dirname, 'write_tiny_moshi.py');
/** Starts Kyutai's server unchanged but for the CPU warm-up fix. */
export const MOSHI_LAUNCHER = resolve(import.meta.dirname, '../../src/kyutai/moshi_server.py');
const DONE_MARKER = 'tiny-moshi.json';

export interface TinyMoshi {
  python: string;
  checkpoint: string;
  launcher: string;
}

/** Keyed by the writer's content and Kyutai's version: either changing makes a new checkpoint. */
export function tinyCheckpointDir(env: NodeJS.ProcessEnv = process.env): string {
  const digest = createHash('sha256').update(readFileSync(WRITER)).digest('hex').slice(0, 10);
  return join(kyutaiDir(env), `tiny-moshi-${MOSHI_VERSION}-${digest}`);
}

export const HOW_TO_MAKE = 'node --import tsx scripts/kyutai/tiny-moshi.ts';

/** The environment and checkpoint if both are ready; otherwise undefined (see HOW_TO_MAKE). */
export function findTinyMoshi(env: NodeJS.ProcessEnv = process.env): TinyMoshi | undefined {
  const pyEnv = findPythonEnv(MOSHI_VERSION, env);
  const checkpoint = tinyCheckpointDir(env);
  if (!pyEnv || !existsSync(join(checkpoint, DONE_MARKER))) return undefined;
  return { python: pyEnv.python, checkpoint, launcher: MOSHI_LAUNCHER };
}

/** The arguments that start Kyutai's server on the tiny checkpoint, on a CPU, fully offline. */
export function tinyServerArgs(tiny: TinyMoshi, port: number | string, host = '127.0.0.1'): string[] {
  const c = tiny.checkpoint;
  return [
    tiny.launcher,
    '--device', 'cpu',
    '--host', host,
    '--port', String(port),
    '--config-path', join(c, 'config.json'),
    '--moshi-weight', join(c, 'model.safetensors'),
    '--mimi-weight', join(c, 'mimi.safetensors'),
    '--tokenizer', join(c, 'tokenizer.model'),
    '--static', 'none',
  ];
}

/** Variables Kyutai's server needs to run offline on a CPU. */
export const TINY_SERVER_ENV = { HF_HUB_OFFLINE: '1', NO_TORCH_COMPILE: '1', OMP_NUM_THREADS: '1', PYTHONUNBUFFERED: '1' };

export async function ensureTinyMoshi(say: (line: string) => void = (l) => process.stderr.write(`[tiny-moshi] ${l}\n`)): Promise<TinyMoshi> {
  const found = findTinyMoshi();
  if (found) return found;
  const pyEnv = await ensurePythonEnv({ onProgress: (p) => say(p.message) });
  const dir = tinyCheckpointDir();
  if (!existsSync(join(dir, DONE_MARKER))) {
    const tmp = `${dir}.partial`;
    rmSync(tmp, { recursive: true, force: true });
    say(`writing the tiny random checkpoint to ${dir}`);
    const r = spawnSync(pyEnv.python, [WRITER, tmp, dir], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...TINY_SERVER_ENV } });
    if (r.status !== 0) throw new Error(`${WRITER} failed (exit ${r.status}); its output is above`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  return { python: pyEnv.python, checkpoint: dir, launcher: MOSHI_LAUNCHER };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  ensureTinyMoshi()
    .then((tiny) => process.stdout.write(`${tiny.checkpoint}\n`))
    .catch((err: Error) => {
      process.stderr.write(`[tiny-moshi] ${err.message}\n`);
      process.exit(1);
    });
}
