/**
 * The web app's own view of the reply audio, engine by engine: headless
 * Chromium talks to `quillman serve` for --seconds (60), once with the
 * default engine (cascade: Silero, PocketSphinx, flite, and a FAKE cloud
 * language model on 127.0.0.1, test/cascade-e2e/fake-cloud-lm.ts) and once
 * with the loopback engine, and prints the playout worklet's counters:
 * missed audio, underruns (after the first second apart), the delay the
 * adaptive buffer settled on.
 *
 *   npm run bench -- web-engines [--seconds 60] [--engines cascade,loopback]
 *
 * The fake microphone loops a question followed by eight seconds of quiet,
 * so the cascade answers a question every ten seconds or so, and the
 * loopback echoes it. No network emulation: the gateway is on 127.0.0.1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeWav } from '../src/audio/wav.js';
import { ensureWebApp, launchBrowser } from '../test/e2e/harness.js';
import { startFakeCloudLm } from '../test/cascade-e2e/fake-cloud-lm.js';
import { speak } from '../test/helpers/speech.js';
import { machineLine, printTable } from './lib/report.js';
import { serve } from './lib/serve.js';
import { arg } from './lib/args.js';

const RATE = 24_000;
const QUESTION = 'What is the capital of France?';
const REPLY = 'That is a good question. The short answer is yes, and I can tell you more about it if you like.';

interface Row {
  engine: string;
  seconds: number;
  played: number;
  missedMs: number;
  underruns: number;
  lateUnderruns: number;
  meanDelayMs: number;
  targetMs: number;
  replies: number;
}

async function session(url: string, engine: string, seconds: number, wav: string): Promise<Row> {
  const browser = await launchBrowser(wav);
  try {
    const page = await browser.context.newPage();
    page.on('pageerror', (err) => console.error(`[page error] ${err.message}`));
    await page.goto(`${url}/?trace=1`);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('[data-phase="live"]').waitFor({ timeout: 60_000 });
    await page.waitForFunction(() => window.__quillman?.playout()?.started === true, undefined, { timeout: 30_000, polling: 100 });
    // Underruns in the first second of playback are allowed by the goal; count them apart.
    await page.waitForTimeout(1000);
    const early = await page.evaluate(() => window.__quillman!.playout()!.underruns);
    await page.waitForTimeout(seconds * 1000 - 1000);
    const stats = await page.evaluate(() => window.__quillman!.playout()!);
    const snapshot = await page.evaluate(() => window.__quillman!.snapshot());
    await page.getByRole('button', { name: 'Disconnect' }).click();
    const replies = snapshot.transcript.filter((l: { role: string }) => l.role === 'assistant').length;
    return {
      engine,
      seconds,
      played: stats.played / RATE,
      missedMs: (stats.missed * 1000) / RATE,
      underruns: stats.underruns,
      lateUnderruns: stats.underruns - early,
      meanDelayMs: stats.played > 0 ? (stats.delaySum / stats.played / RATE) * 1000 : NaN,
      targetMs: (stats.target * 1000) / RATE,
      replies,
    };
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  const seconds = Number(arg('--seconds') ?? 60);
  const engines = (arg('--engines') ?? 'cascade,loopback').split(',');
  const load = loadavg().map((l) => l.toFixed(2)).join(' / ');
  await ensureWebApp();
  const dir = mkdtempSync(join(tmpdir(), 'quillman-bench-'));
  const lm = await startFakeCloudLm({ reply: () => REPLY, wordDelayMs: 30 });
  const rows: Row[] = [];
  try {
    const question = await speak(QUESTION);
    const wav = join(dir, 'mic.wav');
    const looped = new Float32Array(question.length + 8 * RATE);
    looped.set(question);
    await writeWav(wav, looped, RATE);
    for (const engine of engines) {
      process.stderr.write(`${engine}: ${seconds} s in Chromium…\n`);
      const served =
        engine === 'loopback'
          ? await serve('loopback', [], { name: 'loopback' }, dir)
          : await serve('cascade', ['--lm-url', lm.url], { name: 'cascade', cascade: { idlePromptAfterMs: 0 } }, dir);
      try {
        rows.push(await session(served.chatUrl.replace(/^ws/, 'http').replace(/\/api\/chat$/, ''), engine, seconds, wav));
      } finally {
        await served.stop();
      }
    }
  } finally {
    await lm.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const f = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '—');
  process.stdout.write(`\nweb app playout by engine — ${machineLine()}; load average at the start ${load}\n`);
  printTable(
    `The app's own counters (?trace=1, window.__quillman.playout()) over ${seconds} s, gateway on 127.0.0.1`,
    ['engine', 'played s', 'replies', 'missed ms', 'underruns', 'after the first second', 'mean playout delay ms', 'target ms'],
    rows.map((r) => [r.engine, f(r.played, 1), r.engine === 'loopback' ? '—' : String(r.replies), f(r.missedMs), String(r.underruns), String(r.lateUnderruns), f(r.meanDelayMs), f(r.targetMs)]),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
