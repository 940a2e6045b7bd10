/**
 * A gateway that needs an API key, and the web app opened with the key in its
 * address (#token=…): it connects, the key leaves the address bar, and the
 * same app without it is refused with a reason the user can act on.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speakToFile, tempDir } from '../helpers/speech.js';
import { launchBrowser, startGateway, type BrowserSession, type Gateway } from './harness.js';

const KEY = 'qk_test_5f0e8b1c2d3a4e6f';
let gateway: Gateway;
let browser: BrowserSession;
let cleanupDir: () => Promise<void>;

beforeAll(async () => {
  const dir = await tempDir('quillman-e2e-key-');
  cleanupDir = dir.cleanup;
  const wav = await speakToFile('Hello.', join(dir.path, 'mic.wav'));
  [gateway, browser] = await Promise.all([startGateway({ loopbackDelayMs: 200, env: { QUILLMAN_API_KEYS: KEY } }), launchBrowser(wav)]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await cleanupDir?.();
});

describe('the web app on a gateway that needs a key', () => {
  it('connects with the key given in its address, and takes the key out of the address bar', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/#token=${KEY}`);
    expect(page.url()).not.toContain(KEY);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('[data-phase="live"]').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Disconnect' }).click();
    await page.close();
  }, 120_000);

  it('is refused without it, and says so', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/`);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('[data-phase="error"]').waitFor({ timeout: 60_000 });
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/key|token/i);
    await page.close();
  }, 120_000);
});
