/**
 * The managed Python environment for Kyutai's server: found when ready,
 * made when not, and clear errors when Python or PyPI is missing. The real
 * 4 GB install is what `.ci/run` makes; these cases use empty folders.
 */
import { existsSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensurePythonEnv, envDirFor, findPythonEnv, findSystemPython, PythonEnvError } from '../../src/kyutai/python-env.js';
import { tempDir } from '../helpers/speech.js';

describe("Kyutai's Python environment", () => {
  it('is found, and left alone, once its ready marker is there', async () => {
    const dir = await tempDir();
    try {
      const env = { ...process.env, QUILLMAN_KYUTAI_DIR: dir.path };
      expect(findPythonEnv('9.9.9', env)).toBeUndefined();
      const venv = envDirFor('9.9.9', env);
      await mkdir(join(venv, 'bin'), { recursive: true });
      await writeFile(join(venv, 'bin', 'python'), '#!/bin/sh\nexit 0\n');
      const marker = join(venv, '.quillman-ready.json');
      await writeFile(marker, '{}');
      const before = (await stat(marker)).mtimeMs;
      const progress: string[] = [];
      const found = await ensurePythonEnv({ version: '9.9.9', env, onProgress: (p) => progress.push(p.stage) });
      expect(found).toEqual({ python: join(venv, 'bin', 'python'), dir: venv, moshiVersion: '9.9.9' });
      expect(progress).toEqual(['ready']);
      expect((await stat(marker)).mtimeMs).toBe(before);
    } finally {
      await dir.cleanup();
    }
  });

  it('says how to get Python when there is none', async () => {
    const err = await findSystemPython({ PATH: '/nonexistent', QUILLMAN_PYTHON: '/nonexistent/python' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PythonEnvError);
    expect((err as Error).message).toMatch(/needs Python 3\.10 or newer.*apt install python3 python3-venv.*QUILLMAN_PYTHON/s);
  });

  it('makes the environment, and says what to check when pip cannot reach PyPI, without a ready marker', async () => {
    const dir = await tempDir();
    try {
      const env = { ...process.env, QUILLMAN_KYUTAI_DIR: dir.path, PIP_INDEX_URL: 'http://127.0.0.1:9/simple', PIP_RETRIES: '0', PIP_TIMEOUT: '2' };
      const stages: string[] = [];
      const err = await ensurePythonEnv({ version: '0.2.13', env, onProgress: (p) => stages.push(p.stage) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PythonEnvError);
      expect((err as Error).message).toMatch(/pip could not install moshi==0\.2\.13.*reaches PyPI.*PIP_INDEX_URL/s);
      expect(stages).toEqual(['python', 'venv', 'pip']);
      expect(existsSync(join(envDirFor('0.2.13', env), 'bin', 'python'))).toBe(true);
      expect(findPythonEnv('0.2.13', env)).toBeUndefined();
    } finally {
      await dir.cleanup();
    }
  }, 120_000);
});
