/**
 * What the browser tests and the benchmark share: a real gateway with
 * loopback workers as a child process, and headless Debian Chromium with a
 * fake microphone playing a WAV file.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import type {} from '../../web/src/test-hook-types.js';
import { CLI_ARGS, loopbackWorkerCommand, REPO } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { newestMtime } from '../../scripts/newest-mtime.mjs';
import { stopProcessGroup } from '../helpers/processes.js';

export const CHROMIUM = '/usr/bin/chromium';

/** What the web app is built from: its own folder and the protocol code it imports. */
const WEB_SOURCES = ['web', 'src/protocol'];

/**
 * Builds dist/web unless it is newer than every source of the app. `npm test`
 * and `npm run bench` have built it already; a plain `npx vitest run` after
 * an edit has not, and must not test a stale app.
 */
export async function ensureWebApp(): Promise<void> {
  const index = join(REPO, 'dist/web/index.html');
  const built = existsSync(index) ? statSync(index).mtimeMs : 0;
  if (built > Math.max(...WEB_SOURCES.map((s) => newestMtime(join(REPO, s))))) return;
  await promisify(execFile)(process.execPath, [join(REPO, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'error'], { cwd: REPO });
}

export interface Gateway {
  url: string;
  port: number;
  logs: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts `quillman serve` on an up-to-date build of the app, and waits until it answers: with
 * loopback workers, or with `workerCommand` (e.g. Kyutai's server) and `env` for the workers.
 */
export async function startGateway(options: { loopbackDelayMs: number; textIntervalMs?: number; workerCommand?: string; env?: NodeJS.ProcessEnv }): Promise<Gateway> {
  await ensureWebApp();
  const port = await freePort();
  const workerPort = await freePort();
  const worker =
    options.workerCommand ?? loopbackWorkerCommand(`--host 127.0.0.1 --loopback-delay-ms ${options.loopbackDelayMs} --loopback-text-interval-ms ${options.textIntervalMs ?? 240}`);
  const child = spawn(
    process.execPath,
    [...CLI_ARGS, 'serve', '--port', String(port), '--host', '127.0.0.1', '--engine', 'loopback', '--warm', '1', '--worker-base-port', String(workerPort), '--worker-command', worker, '--static-dir', 'dist/web'],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...options.env } },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = () => stopProcessGroup(child);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(`${url}/`);
      if (res.ok && (await res.text()).includes('id="root"')) return { url, port, logs: () => output, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`the gateway did not start serving the app:\n${output.slice(-3000)}`);
}

export interface BrowserSession {
  browser: Browser;
  context: BrowserContext;
  close: () => Promise<void>;
}

/** Headless Chromium whose microphone plays `wavFile`, with permission granted. */
export async function launchBrowser(wavFile: string): Promise<BrowserSession> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'quillman-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wavFile}`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const browser = context.browser()!;
  return {
    browser,
    context,
    close: async () => {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
