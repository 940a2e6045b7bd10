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
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestMtime } from './newest-mtime.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [task = 'start', ...args] = process.argv.slice(2);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function say(line) {
  process.stderr.write(`\x1b[36m[quillman]\x1b[0m ${line}\n`);
}

/**
 * Stopping `npm start` must stop everything it started, whatever a
 * supervisor sends: a stop signal is passed on to the running child once (the
 * gateway drains, then stops its workers), and this process exits as the
 * child did. npm may also die without passing anything on (SIGKILL, or an
 * npm that just exits and leaves its `sh -c` behind); this process notices
 * that its parent chain broke and asks the child to stop the same way.
 */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'];
let current;
let stopAsked = false;

function askToStop(signal) {
  if (!current) process.exit(128 + constants.signals[signal]);
  // The child may hear the same signal straight from a terminal or a group kill; one request from us is enough.
  if (stopAsked) return;
  stopAsked = true;
  current.kill(signal);
}
for (const signal of STOP_SIGNALS) process.on(signal, () => askToStop(signal));

/** Parent pid of `pid` from /proc (Linux); undefined elsewhere or when it is gone. */
function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

// npm runs us through `sh -c`, which stays alive when npm dies: watch the grandparent too.
const parentAtStart = process.ppid;
const grandparentAtStart = parentOf(parentAtStart);
setInterval(() => {
  const orphaned = process.ppid !== parentAtStart || (grandparentAtStart !== undefined && parentOf(parentAtStart) !== grandparentAtStart);
  if (orphaned && current) askToStop('SIGTERM');
}, 500).unref();

function run(cmd, cmdArgs, env = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    current = child;
    stopAsked = false;
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      current = undefined;
      resolveRun(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
    });
  });
}

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    say(`Node ${process.versions.node} is too old: QuiLLMan needs Node 20.19 or newer (https://nodejs.org).`);
    process.exit(1);
  }
}

/** npm records what it installed in node_modules/.package-lock.json; older than the lock file means stale. */
async function ensureDependencies() {
  const installed = join(root, 'node_modules/.package-lock.json');
  const lock = join(root, 'package-lock.json');
  const stale = !existsSync(installed) || statSync(installed).mtimeMs < Math.max(statSync(lock).mtimeMs, statSync(join(root, 'package.json')).mtimeMs);
  if (!stale) return;
  say('installing npm packages (first run, or package.json changed)…');
  // `npm install`, not `npm ci`: it follows the lock file too, but tolerates optional platform
  // packages a registry mirror lacks (node-llama-cpp's macOS/Windows builds), where ci refuses.
  // onnxruntime-node's install step downloads CUDA files; the CPU runtime it ships needs none.
  const code = await run(npm, ['install', '--no-audit', '--no-fund'], { ONNXRUNTIME_NODE_INSTALL: 'skip' });
  if (code !== 0) {
    say('npm install failed: check your network access to the npm registry, then run the command again.');
    process.exit(code);
  }
}

const STAMP = join(root, 'dist/.build-stamp');
const SOURCES = ['src', 'web', 'package.json', 'package-lock.json', 'tsconfig.json'];

async function ensureBuilt() {
  const built = existsSync(STAMP) ? Number(readFileSync(STAMP, 'utf8')) : 0;
  const newest = Math.max(...SOURCES.map((s) => newestMtime(join(root, s))));
  if (built >= newest && existsSync(join(root, 'dist/cli/main.js'))) return;
  say('building…');
  const code = await run(npm, ['run', '--silent', 'build']);
  if (code !== 0) {
    say('the build failed; the errors are above.');
    process.exit(code);
  }
  writeFileSync(STAMP, String(newest));
}

/**
 * Real servers some tests talk to, made once per machine and cached by version: Kyutai's
 * moshi.server (a Python environment and a tiny checkpoint) for test/kyutai and test/modal, and
 * the Go-built Kubernetes control plane for test/kubernetes. Only when those tests are selected
 * (no filter selects them all).
 */
async function ensureTestServers(vitestArgs) {
  const filters = vitestArgs.filter((a) => !a.startsWith('-'));
  const wants = (re) => filters.length === 0 || filters.some((f) => re.test(f));
  if (wants(/kyutai|modal/)) {
    say("setting up Kyutai's moshi.server for the tests (once per machine: about 4 GB)…");
    const code = await run(process.execPath, ['--import', 'tsx', join(root, 'scripts/kyutai/tiny-moshi.ts')]);
    if (code !== 0) {
      say("Kyutai's server could not be set up (see above); its tests will say so. Fix the cause and run the tests again.");
    }
  }
  if (wants(/kubernetes/) && process.platform === 'linux') {
    say('building the Kubernetes control plane for the tests if needed (once per machine)…');
    const code = await run('bash', [join(root, 'scripts/kube-binaries.sh')]);
    if (code !== 0) say('the Kubernetes binaries could not be built (see above); test/kubernetes will say so.');
  }
}

checkNode();
await ensureDependencies();
await ensureBuilt();

switch (task) {
  case 'start':
    process.exit(await run(process.execPath, [join(root, 'dist/cli/main.js'), 'serve', ...args]));
  case 'test':
    await ensureTestServers(args);
    process.exit(await run(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...args]));
  case 'bench':
    process.exit(await run(process.execPath, ['--import', 'tsx', join(root, 'bench/run.ts'), ...args]));
  default:
    say(`unknown task "${task}": use start, test or bench`);
    process.exit(2);
}
