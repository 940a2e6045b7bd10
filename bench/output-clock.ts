/**
 * Does the reply audio leave on a steady clock? Per engine, through the
 * gateway as deployed (`quillman serve`, its own process, one worker), a
 * spoken session of --seconds (30) streamed in real time: questions one after
 * another, each 700 ms after the previous reply ended (or 3 s after the
 * question, for an engine that does not take turns). Every audio message's
 * arrival is compared with its place in the stream (its Ogg granule
 * position): the worst lag behind a steady 80 ms clock, and the p99 and
 * largest gap between audio messages.
 *
 *   npm run bench -- clock [--engines loopback,cascade,cascade-llama] [--seconds 30] [--runs 2]
 *
 * Engines: loopback (80 ms delay); cascade with Silero, PocketSphinx, flite
 * and a FAKE cloud language model on 127.0.0.1 streaming a fixed reply at
 * 30 ms a word (test/cascade-e2e/fake-cloud-lm.ts); cascade-llama: the same
 * with node-llama-cpp on the tiny random-weight test GGUF in the worker.
 * The worker's event-loop delay (its /health) is printed beside the figures.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyLlamaGguf } from '../test/cascade/gguf-writer.js';
import { clockFigures, MIC_CHUNK, probeOutputClock, type ClockFigures } from '../test/cascade-e2e/clock-probe.js';
import { startFakeCloudLm } from '../test/cascade-e2e/fake-cloud-lm.js';
import { Script, samplesOf, trimSilence } from '../test/cascade-e2e/voice.js';
import { speak } from '../test/helpers/speech.js';
import { machineLine, printTable } from './lib/report.js';
import { serve } from './lib/serve.js';
import { arg } from './lib/args.js';

const QUESTIONS = ['What is the capital of France?', 'How far away is the moon?', 'Can you recommend a good book?', 'Why is the sky blue?'];
const REPLY = 'That is a good question. The short answer is yes, and I can tell you more about it if you like.';
const GAP_MS = 700;
/** An engine that takes no turns (loopback) gets its next question this long after the last one ended. */
const NO_TURN_NEXT_MS = 3000;
/** The first second is start-up (handshake, first frames); the goals are about what follows. */
const SKIP_MS = 1000;

interface Row {
  engine: string;
  run: number;
  figures: ClockFigures;
  turns: number;
  loopDelay?: { p99Ms: number; maxMs: number };
}

async function session(chatUrl: string, seconds: number, clips: Float32Array[]): Promise<{ figures: ClockFigures; turns: number }> {
  const script = new Script();
  let asked = 0;
  let questionEnd = 0;
  let nextAt = samplesOf(800);
  const result = await probeOutputClock({
    url: chatUrl,
    maxMs: seconds * 1000,
    mic: (at, heard) => {
      if (at >= nextAt) {
        questionEnd = script.put(at, clips[asked % clips.length]);
        asked++;
        nextAt = questionEnd + samplesOf(NO_TURN_NEXT_MS);
      } else if (asked > 0) {
        const replied = heard.events.some((e) => e.event.type === 'turn' && e.event.state === 'listening' && e.event.turn === asked && e.event.reason === undefined);
        if (replied) nextAt = Math.min(nextAt, at + samplesOf(GAP_MS));
      }
      return script.chunk(at);
    },
  });
  if (result.errors.length > 0) process.stderr.write(`  errors: ${result.errors.join('; ')}\n`);
  const turns = result.events.filter((e) => e.event.type === 'timings').length;
  return { figures: clockFigures(result.arrivals, SKIP_MS), turns };
}

const f0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '—' : String(Math.round(v)));

async function main(): Promise<void> {
  const engines = (arg('--engines') ?? 'loopback,cascade').split(',');
  const seconds = Number(arg('--seconds') ?? 30);
  const runs = Number(arg('--runs') ?? 2);
  const clips = await Promise.all(QUESTIONS.map(async (q) => trimSilence(await speak(q))));
  const dir = mkdtempSync(join(tmpdir(), 'quillman-bench-'));
  const lm = await startFakeCloudLm({ reply: () => REPLY, wordDelayMs: 30 });
  const rows: Row[] = [];
  try {
    for (const engine of engines) {
      let served;
      if (engine === 'loopback') served = await serve('loopback', [], { name: 'loopback', loopback: { delayMs: 80 } }, dir);
      else if (engine === 'cascade') served = await serve('cascade', ['--stt', 'pocketsphinx', '--tts', 'flite', '--lm-url', lm.url], { name: 'cascade', cascade: { idlePromptAfterMs: 0 } }, dir);
      else if (engine === 'cascade-llama') {
        const gguf = join(dir, 'tiny.gguf');
        writeTinyLlamaGguf(gguf);
        served = await serve('cascade', ['--stt', 'pocketsphinx', '--tts', 'flite', '--gguf', gguf], { name: 'cascade', cascade: { idlePromptAfterMs: 0, maxReplyTokens: 48 } }, dir);
      } else throw new Error(`unknown engine ${engine}: choose loopback, cascade or cascade-llama`);
      try {
        for (let run = 1; run <= runs; run++) {
          process.stderr.write(`${engine}: session ${run} of ${runs}, ${seconds} s…\n`);
          const { figures, turns } = await session(served.chatUrl, seconds, clips);
          const row: Row = { engine, run, figures, turns };
          if (served.workerHealthUrl) {
            const health = (await (await fetch(served.workerHealthUrl)).json().catch(() => ({}))) as { eventLoopDelay?: { p99Ms: number; maxMs: number } };
            row.loopDelay = health.eventLoopDelay;
          }
          rows.push(row);
          // Let the pool hand the worker back before the next session.
          await new Promise((r) => setTimeout(r, 1500));
        }
      } finally {
        await served.stop();
      }
    }
  } finally {
    await lm.close();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\nreply audio against a steady clock — ${machineLine()}\n`);
  process.stdout.write(`${seconds} s sessions through the gateway, microphone in ${MIC_CHUNK / 24} ms steps; the first ${SKIP_MS} ms of stream skipped\n`);
  printTable(
    'Audio messages behind a steady clock (ms)',
    ['engine', 'run', 'messages', 'replies', 'worst lag', 'lag p99', 'gap p99', 'gap max', 'worst at (s)', 'worker loop delay p99 / max'],
    rows.map((r) => [
      r.engine,
      String(r.run),
      String(r.figures.messages),
      String(r.turns),
      f0(r.figures.worstLagMs),
      f0(r.figures.lagP99Ms),
      f0(r.figures.gapP99Ms),
      f0(r.figures.gapMaxMs),
      (r.figures.worstAtStreamMs / 1000).toFixed(1),
      r.loopDelay ? `${r.loopDelay.p99Ms.toFixed(1)} / ${r.loopDelay.maxMs.toFixed(1)}` : '—',
    ]),
  );
}

await main();
