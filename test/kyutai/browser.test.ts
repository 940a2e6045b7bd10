/**
 * The web app in headless Chromium with a fake microphone, talking to
 * Kyutai's real server: through our gateway (local provider starting the
 * server), and straight to it through the app's server field.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/gateway.js';
import { newMarker, MARKER_VARIABLE } from '../helpers/processes.js';
import { speakToFile, tempDir } from '../helpers/speech.js';
import { launchBrowser, startGateway, type BrowserSession, type Gateway } from '../e2e/harness.js';
import { expectNoneLeft, requireTinyMoshi, startRealMoshi, tinyServerCommand, TINY_ENV, type RealMoshi } from './real-moshi.js';

const RATE = 24_000;
const marker = newMarker();
let gateway: Gateway;
let direct: RealMoshi;
let browser: BrowserSession;
let cleanupDir: () => Promise<void>;

beforeAll(async () => {
  const tiny = requireTinyMoshi();
  const dir = await tempDir('quillman-kyutai-web-');
  cleanupDir = dir.cleanup;
  const wav = await speakToFile('Hello Moshi. I am talking to you from a browser. How are you today?', join(dir.path, 'mic.wav'));
  [gateway, direct, browser] = await Promise.all([
    startGateway({ loopbackDelayMs: 0, workerCommand: tinyServerCommand(tiny), env: { ...TINY_ENV, [MARKER_VARIABLE]: marker } }),
    startRealMoshi(tiny, marker),
    launchBrowser(wav),
  ]);
}, 200_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await direct?.stop();
  await cleanupDir?.();
  await expectNoneLeft(marker);
});

async function talk(page: Page, name: string) {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.getByRole('button', { name: 'Connect' }).click();
  // The gateway's worker may still be loading the model: generous.
  await page.locator('[data-phase="live"]').waitFor({ timeout: 120_000 });
  await expect.poll(() => page.evaluate(() => (window.__quillman!.playout()?.played ?? 0) / 24_000), { timeout: 60_000 }).toBeGreaterThan(4);
  const snapshot = await page.evaluate(() => window.__quillman!.snapshot());
  const playout = await page.evaluate(() => window.__quillman!.playout()!);
  await mkdir(join(REPO, 'test-results'), { recursive: true });
  await page.screenshot({ path: join(REPO, `test-results/kyutai-${name}.png`), fullPage: true });
  await page.getByRole('button', { name: 'Disconnect' }).click();
  await page.locator('[data-phase="ended"]').waitFor({ timeout: 15_000 });
  return { errors, snapshot, playout };
}

describe("the web app with Kyutai's moshi.server", () => {
  it('talks through the gateway: audio plays, the words show, stats are sane, no page errors', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/`);
    const { errors, snapshot, playout } = await talk(page, 'gateway');
    expect(errors).toEqual([]);
    expect(snapshot.stats!.sentKbps).toBeGreaterThan(5);
    expect(snapshot.stats!.receivedKbps).toBeGreaterThan(5);
    expect(playout.played / RATE).toBeGreaterThan(4);
    // The model's text pieces make up the assistant's line.
    expect(snapshot.transcript.some((line) => line.role === 'assistant' && line.text.trim().length > 0)).toBe(true);
    await page.close();
  }, 240_000);

  it("talks to the server straight through the app's server field", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/`);
    await page.evaluate((serverAddress) => localStorage.setItem('quillman.settings.v1', JSON.stringify({ params: {}, serverAddress })), direct.url);
    await page.reload();
    const { errors, snapshot, playout } = await talk(page, 'direct');
    expect(errors).toEqual([]);
    expect(snapshot.stats!.receivedKbps).toBeGreaterThan(5);
    expect(playout.played / RATE).toBeGreaterThan(4);
    expect(snapshot.transcript.some((line) => line.role === 'assistant' && line.text.trim().length > 0)).toBe(true);
    await page.close();
  }, 240_000);
});
