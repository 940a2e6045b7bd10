#!/usr/bin/env node
/**
 * What `npm start`, `npm test` and `npm run bench` run first, on a fresh clone
 * or an old one: install the npm packages if they are missing or stale, build
 * if the sources changed, then hand over. Plain Node only: this runs before
 * any dependency exists.
 *
 *   node scripts/bootstrap.mjs start [serve flags…]
 *   node scripts/bootstrap.mjs test [vitest args…]
 *   node scripts/bootstrap.mjs bench [name args…]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestMtime } from './newest-mtime.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [task = 'start', ...args] = process.argv.slice(2);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function say(line) {
  process.stderr.write(`\x1b[36m[quillman]\x1b[0m ${line}\n`);
}

function run(cmd, cmdArgs, env = {}) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    say(`Node ${process.versions.node} is too old: QuiLLMan needs Node 20.19 or newer (https://nodejs.org).`);
    process.exit(1);
  }
}

/** npm records what it installed in node_modules/.package-lock.json; older than the lock file means stale. */
function ensureDependencies() {
  const installed = join(root, 'node_modules/.package-lock.json');
  const lock = join(root, 'package-lock.json');
  const stale = !existsSync(installed) || statSync(installed).mtimeMs < Math.max(statSync(lock).mtimeMs, statSync(join(root, 'package.json')).mtimeMs);
  if (!stale) return;
  say('installing npm packages (first run, or package.json changed)…');
  // `npm install`, not `npm ci`: it follows the lock file too, but tolerates optional platform
  // packages a registry mirror lacks (node-llama-cpp's macOS/Windows builds), where ci refuses.
  // onnxruntime-node's install step downloads CUDA files; the CPU runtime it ships needs none.
  const code = run(npm, ['install', '--no-audit', '--no-fund'], { ONNXRUNTIME_NODE_INSTALL: 'skip' });
  if (code !== 0) {
    say('npm install failed: check your network access to the npm registry, then run the command again.');
    process.exit(code);
  }
}

const STAMP = join(root, 'dist/.build-stamp');
const SOURCES = ['src', 'web', 'package.json', 'package-lock.json', 'tsconfig.json'];

function ensureBuilt() {
  const built = existsSync(STAMP) ? Number(readFileSync(STAMP, 'utf8')) : 0;
  const newest = Math.max(...SOURCES.map((s) => newestMtime(join(root, s))));
  if (built >= newest && existsSync(join(root, 'dist/cli/main.js'))) return;
  say('building…');
  const code = run(npm, ['run', '--silent', 'build']);
  if (code !== 0) {
    say('the build failed; the errors are above.');
    process.exit(code);
  }
  writeFileSync(STAMP, String(newest));
}

checkNode();
ensureDependencies();
ensureBuilt();

switch (task) {
  case 'start':
    process.exit(run(process.execPath, [join(root, 'dist/cli/main.js'), 'serve', ...args]));
  case 'test':
    process.exit(run(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...args]));
  case 'bench':
    process.exit(run(process.execPath, ['--import', 'tsx', join(root, 'bench/run.ts'), ...args]));
  default:
    say(`unknown task "${task}": use start, test or bench`);
    process.exit(2);
}
