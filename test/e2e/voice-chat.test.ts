/**
 * The app in headless Chromium against the real gateway and loopback
 * workers: the fake microphone speaks, the loopback sends it back, and what
 * the page played must be what was spoken, shifted by the loopback's delay.
 */
import { once } from 'node:events';
import { mkdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { encodeHandshake } from '../../src/protocol/index.js';
import { bestLag, median, rmsOf, windowedCorrelations } from '../helpers/signal.js';
import { speakToFile, tempDir } from '../helpers/speech.js';
import { REPO } from '../helpers/gateway.js';
import { launchBrowser, startGateway, type BrowserSession, type Gateway } from './harness.js';

const LOOPBACK_DELAY_MS = 200;
const RATE = 24_000;

let gateway: Gateway;
let browser: BrowserSession;
let cleanupDir: () => Promise<void>;

beforeAll(async () => {
  const dir = await tempDir('quillman-e2e-');
  cleanupDir = dir.cleanup;
  const wav = await speakToFile('Hello. I am testing the voice chat. The quick brown fox jumps over the lazy dog. One, two, three, four, five.', join(dir.path, 'mic.wav'));
  [gateway, browser] = await Promise.all([startGateway({ loopbackDelayMs: LOOPBACK_DELAY_MS }), launchBrowser(wav)]);
}, 60_000);

/**
 * Each test's pages close when it ends, pass or fail: an open page holds the gateway's only worker, and the next test
 * would wait in the queue behind it.
 */
afterEach(async () => {
  await Promise.all(browser.context.pages().map((p) => p.close().catch(() => undefined)));
});

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await cleanupDir?.();
});

const phaseOf = (page: Page) => page.locator('[data-phase]').getAttribute('data-phase');

async function waitForPhase(page: Page, phase: string, timeout = 15_000): Promise<void> {
  await page.locator(`[data-phase="${phase}"]`).waitFor({ timeout });
}

/**
 * Mic and played audio on the AudioContext's clock, over the last `seconds`
 * both cover: the playout policy settles (and trims) in the first seconds,
 * which moves the alignment.
 */
async function recordedTracks(page: Page, seconds: number) {
  // Cut in the page: the whole session's recording is megabytes of JSON, slow to pass over on a busy machine.
  const tracks = await page.evaluate(
    ([seconds, rate]) => {
      const hook = window.__quillman!;
      const mic = hook.mic()!;
      const played = hook.played()!;
      const end = Math.min(mic.start + mic.pcm.length, played.start + played.pcm.length);
      const start = Math.max(mic.start, played.start, end - seconds * rate);
      const cut = (t: { start: number; pcm: Float32Array }) => Array.from(t.pcm.subarray(Math.max(0, start - t.start), Math.max(0, end - t.start)));
      return { mic: cut(mic), played: cut(played) };
    },
    [seconds, RATE] as const,
  );
  return { mic: Float32Array.from(tracks.mic), played: Float32Array.from(tracks.played) };
}

/** The loopback shifts the stream by its delay less its 80 ms frame; transport adds the rest. */
const MIN_LAG = ((LOOPBACK_DELAY_MS - 80) * RATE) / 1000;
const MAX_LAG = ((LOOPBACK_DELAY_MS + 400) * RATE) / 1000;

/**
 * 'heard' once the last four seconds played are the microphone's speech, shifted by the loopback; otherwise what
 * was found instead.
 */
async function echoOf(page: Page): Promise<string> {
  const { mic, played } = await recordedTracks(page, 4);
  const coarse = bestLag(mic, played, MIN_LAG, MAX_LAG, 24);
  // Half-second windows: a trim or hold (the playout delay moving by a few ms) spoils only the window it falls in.
  const windows = windowedCorrelations(mic, played, MIN_LAG, MAX_LAG, RATE / 2).map((w) => w.correlation);
  const found = { seconds: mic.length / RATE, micRms: rmsOf(mic), playedRms: rmsOf(played), lagMs: (coarse.lag / RATE) * 1000, windows: windows.map((c) => +c.toFixed(2)) };
  const heard = found.seconds >= 3.9 && found.micRms > 0.01 && found.playedRms > 0.01 && coarse.lag > MIN_LAG && windows.length >= 2 && median(windows) > 0.7;
  return heard ? 'heard' : JSON.stringify(found);
}

/** What the page heard and played, half a second at a time, and what the gateway said: for a failed echo assertion. */
async function whatTheAppSaw(page: Page): Promise<string> {
  const seen = await page.evaluate((rate) => {
    const hook = window.__quillman!;
    const level = (t: { start: number; pcm: Float32Array } | undefined) => {
      if (!t) return 'none';
      const out: string[] = [];
      for (let i = 0; i < t.pcm.length; i += rate / 2) {
        const w = t.pcm.subarray(i, i + rate / 2);
        out.push(Math.sqrt(w.reduce((a, x) => a + x * x, 0) / Math.max(1, w.length)).toFixed(3));
      }
      return `from frame ${t.start}: ${out.join(' ')}`;
    };
    const snapshot = hook.snapshot();
    return { phase: snapshot.phase, stats: snapshot.stats, playout: hook.playout(), mic: level(hook.mic()), played: level(hook.played()) };
  }, RATE);
  return `the app saw: ${JSON.stringify(seen)}\nthe gateway logged (tail):\n${gateway.logs().slice(-2000)}`;
}

/** Runs `check`, adding what the app saw to its error. */
async function explained(page: Page, check: () => Promise<void> | void): Promise<void> {
  try {
    await check();
  } catch (err) {
    (err as Error).message += `\n${await whatTheAppSaw(page).catch((e: Error) => `(could not read the page: ${e.message})`)}`;
    throw err;
  }
}

describe('voice chat in the browser', () => {
  it('goes live, echoes the speech back through the loopback, shows words and stats, and reconnects', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${gateway.url}/`);
    expect(await phaseOf(page)).toBe('idle');

    await page.getByRole('button', { name: 'Connect' }).click();
    await waitForPhase(page, 'live');
    // Until four seconds of speech have come back, however long a busy machine takes (the sentence lasts about 6 s).
    await explained(page, () => expect.poll(() => echoOf(page), { timeout: 60_000, interval: 1000 }).toBe('heard'));

    await explained(page, async () => {
      const snapshot = await page.evaluate(() => window.__quillman!.snapshot());
      const playout = await page.evaluate(() => window.__quillman!.playout()!);
      expect(snapshot.stats!.sentKbps).toBeGreaterThan(5);
      expect(snapshot.stats!.receivedKbps).toBeGreaterThan(5);
      expect(playout.played / RATE).toBeGreaterThan(3);
    });

    await expect.poll(() => page.locator('.line-assistant').first().textContent()).toContain('This is the loopback engine.');
    expect(await page.locator('[data-stat="latency"]').textContent()).toMatch(/^\d+ ms$/);
    expect(await page.locator('[data-stat="reply-lag"]').textContent()).toMatch(/^\d+ ms$/);

    await mkdir(join(REPO, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(REPO, 'test-results/web-live.png'), fullPage: true });

    const micSeconds = await page.evaluate((rate) => window.__quillman!.mic()!.pcm.length / rate, RATE);
    await page.getByRole('button', { name: 'Disconnect' }).click();
    await waitForPhase(page, 'ended');
    // The conversation as heard, both sides mixed: as long as the session (the microphone's recording), 16-bit mono at 24 kHz.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download audio (WAV)' }).click()]);
    const wav = await readFile((await download.path())!);
    expect(wav.subarray(0, 4).toString()).toBe('RIFF');
    expect(wav.readUInt32LE(24)).toBe(RATE);
    expect(micSeconds).toBeGreaterThan(4);
    expect((wav.length - 44) / 2 / RATE).toBeGreaterThan(micSeconds - 0.5);

    await page.getByRole('button', { name: 'Reconnect' }).click();
    await waitForPhase(page, 'live');
    await expect.poll(() => page.evaluate(() => window.__quillman!.playout()?.played ?? 0), { timeout: 10_000 }).toBeGreaterThan(RATE);
    const again = await page.evaluate(() => window.__quillman!.snapshot());
    expect(again.transcript.length).toBeGreaterThan(0);

    await page.getByRole('button', { name: 'Disconnect' }).click();
    expect(errors).toEqual([]);
  }, 150_000);

  it('sends silence while muted, without stopping the stream', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/`);
    await page.getByRole('button', { name: 'Connect' }).click();
    await waitForPhase(page, 'live');
    await page.waitForTimeout(2000);
    await page.getByRole('button', { name: 'Mute' }).click();
    // Once the loopback's delay, the playout delay and a recorder batch have passed, however long a loaded
    // machine makes them: the mic, then its echo, fall silent.
    await expect.poll(async () => rmsOf((await recordedTracks(page, 1)).mic), { timeout: 30_000, interval: 500 }).toBe(0);
    await expect.poll(async () => rmsOf((await recordedTracks(page, 1)).played), { timeout: 30_000, interval: 500 }).toBeLessThan(0.001);
    const muted = await page.evaluate(() => window.__quillman!.snapshot());
    expect(muted.muted).toBe(true);
    expect(muted.stats!.sentKbps).toBeGreaterThan(1);

    await page.getByRole('button', { name: 'Unmute' }).click();
    await expect.poll(async () => rmsOf((await recordedTracks(page, 1)).mic), { timeout: 30_000, interval: 500 }).toBeGreaterThan(0.01);
    await page.getByRole('button', { name: 'Disconnect' }).click();
  }, 120_000);

  it('plays the echo through the wasm codecs too', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/?codec=wasm`);
    await page.getByRole('button', { name: 'Connect' }).click();
    await waitForPhase(page, 'live');
    // Enough echo played for the comparison, however slowly a busy machine runs the wasm codecs. If it never comes, say
    // what the app saw (the phase holds the server's reason when a conversation ends).
    await expect
      .poll(() => page.evaluate(() => window.__quillman!.playout()?.played ?? 0), { timeout: 60_000, interval: 500 })
      .toBeGreaterThan(5 * RATE)
      .catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await whatTheAppSaw(page)}`);
      });
    expect(await page.evaluate(() => window.__quillman!.snapshot().codecs)).toEqual({ encoder: 'wasm', decoder: 'wasm' });
    await explained(page, () => expect.poll(() => echoOf(page), { timeout: 60_000, interval: 1000 }).toBe('heard'));
    await page.getByRole('button', { name: 'Disconnect' }).click();
  }, 120_000);

  it('talks to the server in Settings, and says goodbye with a clean close when the user disconnects', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const closes: { code: number; reason: string }[] = [];
    server.on('connection', (ws) => {
      ws.send(encodeHandshake());
      ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
    });
    try {
      const page = await browser.context.newPage();
      await page.goto(`${gateway.url}/`);
      const address = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/chat`;
      await page.evaluate((serverAddress) => localStorage.setItem('quillman.settings.v1', JSON.stringify({ params: {}, serverAddress })), address);
      await page.reload();
      await page.getByRole('button', { name: 'Connect' }).click();
      await waitForPhase(page, 'live');
      await page.getByRole('button', { name: 'Disconnect' }).click();
      await expect.poll(() => closes).toEqual([{ code: 1000, reason: 'user disconnected' }]);
    } finally {
      server.close();
    }
  }, 30_000);

  it('explains a server that cannot be reached, and what to do', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/`);
    await page.evaluate(() => localStorage.setItem('quillman.settings.v1', JSON.stringify({ params: {}, serverAddress: 'ws://127.0.0.1:9/api/chat' })));
    await page.reload();
    await page.getByRole('button', { name: 'Connect' }).click();
    await waitForPhase(page, 'error');
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('Could not reach the server');
    expect(await alert.textContent()).toContain('server address in Settings');
  }, 30_000);
});
