/**
 * A managed Python environment holding Kyutai's `moshi` package, pinned.
 *
 * Kyutai's server is a Python program with a 4 GB dependency (torch, CUDA
 * build: PyPI has no CPU-only wheel), so it gets a virtual environment of its
 * own, created once per machine and keyed by the pinned version: a second run
 * finds the ready marker and does nothing. The marker is written last, so an
 * interrupted install is redone rather than trusted.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The Kyutai release our interop is verified against (see docs/kyutai.md). */
export const MOSHI_VERSION = '0.2.13';
const MIN_PYTHON: [number, number] = [3, 10];
const READY_MARKER = '.quillman-ready.json';

export interface PythonEnv {
  /** The environment's own interpreter. */
  python: string;
  dir: string;
  moshiVersion: string;
}

export interface EnvProgress {
  stage: 'python' | 'venv' | 'pip' | 'ready';
  message: string;
}

export class PythonEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PythonEnvError';
  }
}

/** Where Kyutai's environment and test checkpoints live: QUILLMAN_KYUTAI_DIR, else ~/.cache/quillman/kyutai. */
export function kyutaiDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.QUILLMAN_KYUTAI_DIR?.trim();
  return override ? resolve(override) : join(homedir(), '.cache', 'quillman', 'kyutai');
}

export function envDirFor(version = MOSHI_VERSION, env: NodeJS.ProcessEnv = process.env): string {
  return join(kyutaiDir(env), `venv-moshi-${version}`);
}

/** The ready environment, or undefined when it has not been (completely) made. */
export function findPythonEnv(version = MOSHI_VERSION, env: NodeJS.ProcessEnv = process.env): PythonEnv | undefined {
  const dir = envDirFor(version, env);
  const python = join(dir, 'bin', 'python');
  if (!existsSync(join(dir, READY_MARKER)) || !existsSync(python)) return undefined;
  return { python, dir, moshiVersion: version };
}

interface Captured {
  code: number | null;
  out: string;
}

/** Runs a program in `env`, handing each output line to `onLine` and keeping the last few for errors. */
function run(bin: string, args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Promise<Captured> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const tail: string[] = [];
    let partial = '';
    const take = (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        onLine?.(line);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => {
      if (partial.trim()) tail.push(partial);
      resolvePromise({ code, out: tail.join('\n') });
    });
  });
}

/** The first `python3`/`python` on the PATH (or QUILLMAN_PYTHON) that is new enough. */
export async function findSystemPython(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const candidates = [env.QUILLMAN_PYTHON?.trim(), 'python3', 'python'].filter((c): c is string => !!c);
  const seen: string[] = [];
  for (const candidate of candidates) {
    let result: Captured;
    try {
      result = await run(candidate, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], env);
    } catch {
      continue;
    }
    const version = result.out.trim().split('\n').pop() ?? '';
    const [major, minor] = version.split('.').map(Number);
    if (result.code !== 0 || !Number.isFinite(major)) continue;
    seen.push(`${candidate} is Python ${version}`);
    if (major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1])) return candidate;
  }
  const found = seen.length ? ` (found: ${seen.join('; ')})` : '';
  throw new PythonEnvError(
    `Kyutai's Moshi server needs Python ${MIN_PYTHON.join('.')} or newer with venv${found}. ` +
      'Install it (Debian/Ubuntu: sudo apt install python3 python3-venv; macOS: brew install python), or point QUILLMAN_PYTHON at one, then run this again.',
  );
}

/**
 * Makes (or finds) the environment: venv, then `pip install moshi==<version>`.
 * pip's download lines are passed on as progress; torch alone is about 900 MB.
 */
export async function ensurePythonEnv(
  options: { version?: string; onProgress?: (p: EnvProgress) => void; env?: NodeJS.ProcessEnv } = {},
): Promise<PythonEnv> {
  const version = options.version ?? MOSHI_VERSION;
  const env = options.env ?? process.env;
  const say = options.onProgress ?? (() => undefined);
  const ready = findPythonEnv(version, env);
  if (ready) {
    say({ stage: 'ready', message: `Kyutai's moshi ${version} is installed in ${ready.dir}` });
    return ready;
  }
  const dir = envDirFor(version, env);
  const systemPython = await findSystemPython(env);
  say({ stage: 'python', message: `using ${systemPython} for Kyutai's environment` });
  await mkdir(kyutaiDir(env), { recursive: true });
  if (!existsSync(join(dir, 'bin', 'python'))) {
    say({ stage: 'venv', message: `creating a Python environment in ${dir}` });
    await rm(dir, { recursive: true, force: true });
    const made = await run(systemPython, ['-m', 'venv', dir], env);
    if (made.code !== 0) {
      throw new PythonEnvError(
        `Could not create a Python virtual environment in ${dir}:\n${indent(made.out)}\nOn Debian/Ubuntu install python3-venv (sudo apt install python3-venv), then run this again.`,
      );
    }
  }
  const python = join(dir, 'bin', 'python');
  const packages = [`moshi==${version}`];
  say({ stage: 'pip', message: `installing ${packages.join(' ')} (about 4 GB with torch; once per machine)` });
  const pip = await run(
    python,
    ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off', ...packages],
    { ...env, PIP_NO_INPUT: '1' },
    (line) => {
      if (/^(Collecting|Downloading|Installing|Successfully)/.test(line.trim())) say({ stage: 'pip', message: line.trim() });
    },
  );
  if (pip.code !== 0) {
    throw new PythonEnvError(
      `pip could not install ${packages.join(' ')} into ${dir}:\n${indent(pip.out)}\n` +
        'Check that this machine reaches PyPI (or set PIP_INDEX_URL to a mirror) and has about 8 GB of free disk, then run this again; what was downloaded is kept in pip\'s cache.',
    );
  }
  await writeFile(join(dir, READY_MARKER), JSON.stringify({ moshi: version, packages, at: new Date().toISOString() }, null, 2));
  say({ stage: 'ready', message: `Kyutai's moshi ${version} is installed in ${dir}` });
  return { python, dir, moshiVersion: version };
}

function indent(text: string): string {
  return text
    .split('\n')
    .slice(-15)
    .map((l) => `  | ${l}`)
    .join('\n');
}
