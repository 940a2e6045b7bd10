/**
 * The Python relay's environment: a venv with aiohttp, made once per
 * machine under ~/.cache/quillman/bench/, named by the hash of
 * bench/python-relay/requirements.txt so that a change there makes a new one.
 * Without python3, venv or PyPI the relay bench goes on without its Python
 * column and says what to install.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const PYTHON_RELAY_DIR = resolve(import.meta.dirname, 'python-relay');
export const PYTHON_RELAY_SCRIPT = join(PYTHON_RELAY_DIR, 'relay.py');
const REQUIREMENTS = join(PYTHON_RELAY_DIR, 'requirements.txt');
const STAMP = '.complete';

export type PythonRelayEnv = { ok: true; python: string } | { ok: false; why: string };

function say(line: string): void {
  process.stderr.write(`relay bench: ${line}\n`);
}

/** Runs a command with its output shown (pip's progress), bounded in time. */
function run(cmd: string, args: string[], timeoutMs: number, show: boolean): Promise<{ code: number | null; error?: string; output: string }> {
  return new Promise((done) => {
    let output = '';
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
      if (show) process.stderr.write(d.toString().replace(/^(?=.)/gm, '  │ '));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => (clearTimeout(timer), done({ code: null, error: err.message, output })));
    child.on('exit', (code, signal) => (clearTimeout(timer), done({ code, error: signal ? `killed (${signal}) after ${timeoutMs / 1000} s` : undefined, output })));
  });
}

export async function pythonRelayEnv(): Promise<PythonRelayEnv> {
  const requirements = await readFile(REQUIREMENTS);
  const key = createHash('sha256').update(requirements).digest('hex').slice(0, 16);
  const root = join(homedir(), '.cache/quillman/bench');
  const dir = join(root, `python-relay-${key}`);
  const python = join(dir, 'bin/python');
  if (existsSync(join(dir, STAMP))) {
    // A python upgraded or removed under the venv leaves it broken: check before trusting it.
    const check = await run(python, ['-c', 'import aiohttp'], 30_000, false);
    if (check.code === 0) return { ok: true, python };
    say(`the cached Python venv at ${dir} no longer works (${check.error ?? check.output.trim().split('\n').pop()}); making it again`);
    await rm(dir, { recursive: true, force: true });
  }

  const version = await run('python3', ['--version'], 30_000, false);
  if (version.code !== 0) {
    return { ok: false, why: `python3 is not available (${version.error ?? version.output.trim()}): install it (Debian: apt-get install python3 python3-venv) for the Python relay column` };
  }
  say(`setting up a Python venv with aiohttp for the Python relay (${version.output.trim()}, once per machine) in ${dir}…`);
  await mkdir(root, { recursive: true });
  // Built aside and renamed into place: a run stopped halfway, or two at once, never leave a half venv under the real name.
  const building = `${dir}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  try {
    say('  python3 -m venv…');
    const venv = await run('python3', ['-m', 'venv', building], 120_000, true);
    if (venv.code !== 0) {
      return { ok: false, why: `python3 -m venv failed (${venv.error ?? venv.output.trim().split('\n').pop()}): install the venv module (Debian: apt-get install python3-venv) for the Python relay column` };
    }
    say(`  pip install -r ${REQUIREMENTS}…`);
    const pip = await run(join(building, 'bin/python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--progress-bar', 'off', '-r', REQUIREMENTS], 300_000, true);
    if (pip.code !== 0) {
      return { ok: false, why: `pip could not install aiohttp (${pip.error ?? 'exit ' + pip.code}; is PyPI reachable?): see the output above; the Python relay column is skipped` };
    }
    await writeFile(join(building, STAMP), new Date().toISOString() + '\n');
    try {
      await rename(building, dir);
    } catch {
      // Another run finished first; its venv is as good as ours.
      if (!existsSync(join(dir, STAMP))) throw new Error(`could not move ${building} to ${dir}`);
    }
    say('  Python venv ready');
    return { ok: true, python };
  } finally {
    await rm(building, { recursive: true, force: true });
  }
}
