/**
 * What the browser tests and the benchmark share: a real gateway with
 * loopback workers as a child process, and headless Debian Chromium with a
 * fake microphone playing a WAV file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import type {} from '../../web/src/test-hook-types.js';
import { freePort } from '../helpers/net.js';

export { freePort };

export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const CHROMIUM = '/usr/bin/chromium';


export interface Gateway {
  url: string;
  port: number;
  logs: () => string;
  stop: () => Promise<void>;
}

/** Starts `quillman serve` with loopback workers and waits until it answers. */
export async function startGateway(options: { loopbackDelayMs: number; textIntervalMs?: number }): Promise<Gateway> {
  if (!existsSync(join(REPO_ROOT, 'dist/web/index.html'))) throw new Error('dist/web is missing: build the app first (npx vite build --config web/vite.config.ts)');
  const port = await freePort();
  const workerPort = await freePort();
  const worker = [
    process.execPath,
    '--import',
    'tsx',
    join(REPO_ROOT, 'src/cli/main.ts'),
    'worker',
    '--engine',
    'loopback',
    '--host',
    '127.0.0.1',
    '--loopback-delay-ms',
    String(options.loopbackDelayMs),
    '--loopback-text-interval-ms',
    String(options.textIntervalMs ?? 240),
    '--port',
    '{port}',
  ].join(' ');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', String(port), '--host', '127.0.0.1', '--engine', 'loopback', '--warm', '1', '--worker-base-port', String(workerPort), '--worker-command', worker, '--static-dir', 'dist/web'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
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

/** Stops a detached child and everything it started (its workers). */
export async function stopProcessGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(-child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(-child.pid, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
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
