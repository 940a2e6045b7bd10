/**
 * Voice-to-voice latency of the cascade engine through the gateway, turn by
 * turn, with what each stage took and what one conversation costs in CPU.
 *
 *   npm run bench -- cascade [--turns 20] [--word-ms 30] [--no-llama] [--threads N] [--threads-probe]
 *                            [--cascade '{"speculativeAfterMs":240}'] [--verbose]
 *                            [--no-tradeoff | --tradeoff-only] [--tradeoff-turns 10] [--settings 0,3]
 *
 * One conversation of N turns through `quillman serve` (its own process, as
 * deployed) and the `quillman worker --engine cascade` process it starts
 * (Silero VAD, PocketSphinx, flite), configured with the documented flags,
 * streamed in real time by the project's terminal client library.
 * The language model is, in turn:
 *   - a FAKE cloud API on 127.0.0.1 (test/cascade-e2e/fake-cloud-lm.ts)
 *     streaming a fixed reply at --word-ms per word (one word ≈ one token),
 *     the first word one interval after the request;
 *   - node-llama-cpp on the tiny random-weight GGUF the tests write (the
 *     local path's overhead; it speaks gibberish, and its speed says nothing
 *     about a real model's).
 * --threads-probe adds llama.cpp's speed by thread count on a random stand-in
 * as heavy as Qwen2.5-0.5B Q4_K_M (width 896, 6 layers in F32: 390 MB read
 * per token), idle and with one core kept busy.
 *
 * Voice-to-voice latency = when the first non-silent reply sample would play
 * (its arrival at the client, no playout buffer) − when the user's speech
 * ended (the end of the question clip, trimmed of silence, on the clock the
 * client sends it by). "Stream" latency is the same on the stream clock alone
 * (output sample i goes out about when input sample i came in), without
 * transport delays.
 *
 * False starts: after the questions, the same server hears PAUSED utterances,
 * sentences with a pause of 300-700 ms in the middle (flite speech, the
 * pause inserted between two clips), most after a function word ("tell me
 * about | the history of Rome"), some after a word a sentence could end on
 * ("play some music | by the Beatles"). A false start is a turn the bot took
 * (a final user transcript) before the user had finished the sentence.
 *
 * Trade-off: with the fake model only, the questions (--tradeoff-turns) and
 * the paused utterances again under several end-of-turn settings, from the
 * old fixed 600 ms wait to the adaptive ones: p50, p90, false starts.
 */
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PERSONA } from '../src/engines/cascade/config.js';
import { loadLlamaLm } from '../src/engines/cascade/lm/llama.js';
import { writeTinyLlamaGguf } from '../test/cascade/gguf-writer.js';
import { startFakeCloudLm, type FakeCloudLm } from '../test/cascade-e2e/fake-cloud-lm.js';
import { cpuSeconds } from '../test/cascade-e2e/harness.js';
import { CHUNK, converse, ms, samplesOf, Script, trimSilence } from '../test/cascade-e2e/voice.js';
import { speak } from '../test/helpers/speech.js';
import { machineLine, printTable } from './lib/report.js';
import { serve as serveGateway, type Served } from './lib/serve.js';
import { arg } from './lib/args.js';

/** The gateway with one cascade worker on the offline stages. */
function serve(flags: string[], config: Record<string, unknown>, dir: string): Promise<Served> {
  return serveGateway('cascade', ['--stt', 'pocketsphinx', '--tts', 'flite', ...flags], { cascade: config }, dir);
}

const QUESTIONS = [
  'What is the capital of France?',
  'How far away is the moon?',
  'Can you recommend a good book?',
  'What should I cook for dinner tonight?',
  'Why is the sky blue?',
];
const REPLY = 'That is a good question. The short answer is yes, and I can tell you more about it if you like.';
/** Sentences said with a pause inside: [before, pause ms, after]. Seven pause after a function word, three after a word a sentence may end on. */
const PAUSED: [string, number, string][] = [
  ['Tell me about', 500, 'the history of Rome.'],
  ['What is the capital of', 400, 'France?'],
  ['I would like to', 600, 'book a table for two.'],
  ['Can you recommend a', 350, 'good book?'],
  ['How far away is', 450, 'the moon?'],
  ['My favourite colour is', 700, 'blue.'],
  ['I went to the market and', 550, 'bought some apples.'],
  ['Play some music', 400, 'by the Beatles.'],
  ['Set a timer', 300, 'for ten minutes.'],
  ['What should I cook', 650, 'for dinner tonight?'],
];
/** End-of-turn settings compared in the trade-off table (engine config keys; the first is the engine before this table existed). */
const TRADEOFF: { label: string; settings: Record<string, number> }[] = [
  { label: 'fixed 600; model and recogniser close at 320 (before)', settings: { hangMs: 600, hangAfterCompleteMs: 600, hangWhenReadyMs: 600, hangAfterIncompleteMs: 600, judgeAfterWords: 1, speculativeAfterMs: 320, speculativeLeadMs: 280, finalPassLeadMs: 280 } },
  { label: '320 / 900, judged at any length; both at 80', settings: { hangMs: 600, hangAfterCompleteMs: 320, hangWhenReadyMs: 320, hangAfterIncompleteMs: 900, judgeAfterWords: 1, speculativeAfterMs: 80, speculativeLeadMs: 240, finalPassLeadMs: 240 } },
  { label: '320 / 900, judged from 4 words; model at 80, close at 160', settings: { hangMs: 600, hangAfterCompleteMs: 320, hangWhenReadyMs: 320, hangAfterIncompleteMs: 900, judgeAfterWords: 4, speculativeAfterMs: 80, speculativeLeadMs: 240, finalPassLeadMs: 160 } },
  { label: '320 / 900, judged from 4 words; both at 80', settings: { hangMs: 600, hangAfterCompleteMs: 320, hangWhenReadyMs: 320, hangAfterIncompleteMs: 900, judgeAfterWords: 4, speculativeAfterMs: 80, speculativeLeadMs: 240, finalPassLeadMs: 240 } },
  { label: '280 / 900, judged from 4 words; both at 80', settings: { hangMs: 600, hangAfterCompleteMs: 280, hangWhenReadyMs: 280, hangAfterIncompleteMs: 900, judgeAfterWords: 4, speculativeAfterMs: 80, speculativeLeadMs: 200, finalPassLeadMs: 200 } },
  { label: '320 / 900, judged from 4 words; model at 80, recogniser closes where the speech ends', settings: { hangMs: 600, hangAfterCompleteMs: 320, hangWhenReadyMs: 320, hangAfterIncompleteMs: 900, judgeAfterWords: 4, speculativeAfterMs: 20, speculativeLeadMs: 240, finalPassLeadMs: 320 } },
  { label: '320 / 900, judged from 4 words; both where the speech ends', settings: { hangMs: 600, hangAfterCompleteMs: 320, hangWhenReadyMs: 320, hangAfterIncompleteMs: 900, judgeAfterWords: 4, speculativeAfterMs: 20, speculativeLeadMs: 320, finalPassLeadMs: 320 } },
  { label: '280 / 900, judged from 4 words; model at 80, recogniser closes where the speech ends', settings: { hangMs: 600, hangAfterCompleteMs: 280, hangWhenReadyMs: 280, hangAfterIncompleteMs: 900, judgeAfterWords: 4, speculativeAfterMs: 20, speculativeLeadMs: 200, finalPassLeadMs: 320 } },
  { label: '240 / 900, judged from 4 words; both at 80', settings: { hangMs: 600, hangAfterCompleteMs: 240, hangWhenReadyMs: 240, hangAfterIncompleteMs: 900, judgeAfterWords: 4, speculativeAfterMs: 80, speculativeLeadMs: 160, finalPassLeadMs: 160 } },
  { label: '320 / 900, or 240 once the reply is ready; model where the speech ends, recogniser at 80 (default)', settings: { hangMs: 600, hangAfterCompleteMs: 320, hangWhenReadyMs: 240, hangAfterIncompleteMs: 900, judgeAfterWords: 4, speculativeAfterMs: 20, speculativeLeadMs: 320, finalPassLeadMs: 240 } },
];
/** Pause between the end of a reply and the next question. */
const GAP_MS = 700;
/** A turn with no reply within this long is counted as failed. */
const TURN_TIMEOUT_MS = 15_000;

interface Turn {
  index: number;
  /** Voice-to-voice, client clock (ms). */
  v2vMs?: number;
  /** Same on the stream clock (ms). */
  streamMs?: number;
  /** End of speech → final transcript received (turn decided), client clock. */
  decidedMs?: number;
  timings?: Record<string, unknown>;
}

interface FalseStart {
  utterance: string;
  /** The bot took the turn before the user finished. */
  falseStart: boolean;
  /** What the recogniser made of it (the final transcripts, in order). */
  heard: string[];
}

interface RunResult {
  label: string;
  turns: Turn[];
  falseStarts?: FalseStart[];
  stats?: Record<string, Record<string, number | undefined>>;
  cpuShare?: number;
  sessionS: number;
  /** The worker's event-loop delay over the conversation (its /health). */
  loopDelay?: { p99Ms: number; maxMs: number };
}

async function converseTurns(server: Served, label: string, turns: number, clips: Float32Array[]): Promise<RunResult> {
  const script = new Script();
  const ends: number[] = [];
  let nextAt = samplesOf(800);
  let waitingSince = 0;
  let finishedAt: number | undefined;
  let cpu0: number | undefined;
  let wall0 = 0;
  let cpuShare: number | undefined;
  const pid = server.workerPid;

  const { heard, sentAt } = await converse({
    url: server.chatUrl,
    maxMs: turns * 20_000,
    mic: (at, h) => {
      if (at === 0 && pid !== undefined) {
        cpu0 = cpuSeconds(pid);
        wall0 = performance.now();
      }
      const done = ends.length;
      if (finishedAt === undefined) {
        const replied = done > 0 && h.eventsOf('turn').some((e) => e.value.state === 'listening' && e.value.turn === done && e.value.reason === undefined);
        const timedOut = done > 0 && at - waitingSince > samplesOf(TURN_TIMEOUT_MS);
        if (done === 0 ? at >= nextAt : replied || timedOut) {
          if (done === turns) finishedAt = at;
          else {
            const start = done === 0 ? at : at + samplesOf(GAP_MS);
            ends.push(script.put(start, clips[done % clips.length]));
            waitingSince = ends[done];
          }
        }
      }
      if (finishedAt !== undefined && at > finishedAt + samplesOf(300)) {
        if (pid !== undefined && cpu0 !== undefined) cpuShare = (cpuSeconds(pid) - cpu0) / ((performance.now() - wall0) / 1000);
        return undefined;
      }
      return script.chunk(at);
    },
  });

  const results: Turn[] = ends.map((end, index) => {
    const until = ends[index + 1] ?? heard.length;
    const turn: Turn = { index };
    const first = heard.firstSound(end, until);
    const endWall = speechEndWall(end, sentAt);
    const final = heard.events.find((e) => e.value.type === 'transcript' && e.value.role === 'user' && e.value.final === true && e.atSample >= end && e.atSample < until);
    if (final && endWall !== undefined) turn.decidedMs = final.wallMs - endWall;
    turn.timings = heard.events.find((e) => e.value.type === 'timings' && e.value.turn === index + 1)?.value;
    if (first < 0) return turn;
    turn.streamMs = ms(first - end);
    const arrival = heard.playTime(first);
    if (endWall !== undefined && arrival !== undefined) turn.v2vMs = arrival - endWall;
    return turn;
  });
  const stats = heard.eventsOf('stats').at(-1)?.value as RunResult['stats'];
  const health = server.workerHealthUrl ? ((await (await fetch(server.workerHealthUrl)).json().catch(() => ({}))) as { eventLoopDelay?: RunResult['loopDelay'] }) : {};
  return { label, turns: results, stats, cpuShare, sessionS: ms(heard.length) / 1000, loopDelay: health.eventLoopDelay };
}

interface PausedClip {
  text: string;
  before: Float32Array;
  pauseMs: number;
  after: Float32Array;
}

/**
 * One conversation of paused sentences: each is said (before, pause, after),
 * the bot answers, and once it has been quiet for GAP_MS the next one comes.
 */
async function falseStarts(server: Served, clips: PausedClip[]): Promise<FalseStart[]> {
  const script = new Script();
  const items: { text: string; start: number; afterEnd: number }[] = [];
  let nextAt = samplesOf(800);
  const { heard, sentAt } = await converse({
    url: server.chatUrl,
    maxMs: clips.length * 20_000,
    mic: (at, h) => {
      const current = items.at(-1);
      if (current && at > current.afterEnd + samplesOf(1000)) {
        const lastTurn = h.eventsOf('turn').at(-1);
        const quiet = lastTurn?.value.state === 'listening' && h.lastSound(h.length - samplesOf(GAP_MS)) < 0;
        if (quiet || at > current.afterEnd + samplesOf(TURN_TIMEOUT_MS)) nextAt = Math.min(nextAt, at);
      }
      if (at >= nextAt) {
        if (items.length === clips.length) return undefined;
        const clip = clips[items.length];
        const afterStart = script.put(at, clip.before) + samplesOf(clip.pauseMs);
        items.push({ text: clip.text, start: at, afterEnd: script.put(afterStart, clip.after) });
        nextAt = Infinity;
      }
      return script.chunk(at);
    },
  });
  // By wall time: when each sentence began to be sent, when its end was sent, when each transcript came.
  const wallOf = (sample: number) => sentAt[Math.min(sentAt.length - 1, Math.floor(sample / CHUNK))] ?? Infinity;
  return items.map((item, i) => {
    const from = wallOf(item.start);
    const until = i + 1 < items.length ? wallOf(items[i + 1].start) : Infinity;
    const finals = heard.events.filter((e) => e.value.type === 'transcript' && e.value.role === 'user' && e.value.final === true && e.wallMs >= from && e.wallMs < until);
    return { utterance: item.text, falseStart: finals.some((e) => e.wallMs < wallOf(item.afterEnd)), heard: finals.map((e) => String(e.value.text)) };
  });
}

/** Wall time at which sample `end` was spoken: its 20 ms chunk was sent when its last sample was "captured". */
function speechEndWall(end: number, sentAt: number[]): number | undefined {
  const chunk = Math.floor((end - 1) / CHUNK);
  const sent = sentAt[chunk];
  return sent === undefined ? undefined : sent - ms((chunk + 1) * CHUNK - end);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  return sorted[lo] + (sorted[Math.min(sorted.length - 1, lo + 1)] - sorted[lo]) * (rank - lo);
}

const f0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '—' : String(Math.round(v)));
const f2 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(3));

function numbers(turns: Turn[], pick: (t: Turn) => unknown): number[] {
  return turns.map(pick).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

function report(runs: RunResult[], wordMs: number): void {
  process.stdout.write(`\ncascade latency — ${machineLine()}; load average at the start ${startLoad}\n`);
  process.stdout.write(`fake cloud LM: ${wordMs} ms per word (≈ token), first word ${wordMs} ms after the request; reply: "${REPLY}"\n`);
  if (process.argv.includes('--cascade')) process.stdout.write(`engine settings: ${arg('--cascade')}\n`);
  printTable(
    'Voice-to-voice latency, end of the user\'s speech → first reply sound at the client (ms)',
    ['language model', 'turns ok', 'p50', 'p90', 'min', 'max', 'stream p50', 'stream p90'],
    runs.map((r) => {
      const v = numbers(r.turns, (t) => t.v2vMs);
      const s = numbers(r.turns, (t) => t.streamMs);
      return [r.label, `${v.length}/${r.turns.length}`, f0(percentile(v, 50)), f0(percentile(v, 90)), f0(Math.min(...v)), f0(Math.max(...v)), f0(percentile(s, 50)), f0(percentile(s, 90))];
    }),
  );
  const stages: [string, (t: Turn) => unknown][] = [
    ['end of speech → turn decided (client)', (t) => t.decidedMs],
    ['VAD end of turn (vadEndOfTurnMs)', (t) => t.timings?.vadEndOfTurnMs],
    ['STT final pass (sttFinalMs)', (t) => t.timings?.sttFinalMs],
    ['LM first token (lmFirstTokenMs)', (t) => t.timings?.lmFirstTokenMs],
    ['LM first sentence (firstSentenceMs)', (t) => t.timings?.firstSentenceMs],
    ['first TTS chunk (firstTtsChunkMs)', (t) => t.timings?.firstTtsChunkMs],
    ['turn decided → first audio out (responseMs)', (t) => t.timings?.responseMs],
    ['LM started before turn end (speculation)', (t) => t.timings?.lmStartedBeforeTurnEndMs],
  ];
  printTable(
    'Stage times per turn, p50 / p90 (ms; from the worker\'s {type:"timings"} events)',
    ['stage', ...runs.map((r) => r.label)],
    [
      ...stages.map(([name, pick]) => [name, ...runs.map((r) => `${f0(percentile(numbers(r.turns, pick), 50))} / ${f0(percentile(numbers(r.turns, pick), 90))}`)]),
      ['speculative replies used', ...runs.map((r) => `${r.turns.filter((t) => t.timings?.speculative === true).length}/${r.turns.length}`)],
      ['turns whose guess was redone on the final words', ...runs.map((r) => `${r.turns.filter((t) => ((t.timings?.redone as number | undefined) ?? 0) > 0).length}/${r.turns.length}`)],
    ],
  );
  printTable(
    'Real-time factor per stage over the conversation (busy time / audio time; from {type:"stats"})',
    ['stage', ...runs.map((r) => r.label)],
    [
      ['VAD (Silero + 24→16 kHz)', ...runs.map((r) => f2(r.stats?.vad?.rtf))],
      ['STT (PocketSphinx, streaming + final)', ...runs.map((r) => f2(r.stats?.stt?.rtf))],
      ['TTS (flite, per sentence)', ...runs.map((r) => f2(r.stats?.tts?.rtf))],
      ['LM ms per piece', ...runs.map((r) => (r.stats?.lm?.msPerPiece === undefined ? '—' : String(r.stats.lm.msPerPiece)))],
    ],
  );
  const withFalseStarts = runs.filter((r) => r.falseStarts);
  if (withFalseStarts.length > 0) {
    printTable(
      `False starts: the bot took the turn inside a mid-sentence pause (${PAUSED.length} sentences, pauses of 300-700 ms)`,
      ['sentence (pause)', ...withFalseStarts.map((r) => r.label)],
      [
        ...PAUSED.map(([before, pause, after], i) => [
          `${before} (${pause}) ${after}`,
          ...withFalseStarts.map((r) => {
            const f = r.falseStarts![i];
            return f ? `${f.falseStart ? 'FALSE START' : 'ok'}: ${f.heard.join(' | ') || '(nothing)'}` : '—';
          }),
        ]),
        ['false-start rate', ...withFalseStarts.map((r) => `${r.falseStarts!.filter((f) => f.falseStart).length}/${r.falseStarts!.length}`)],
      ],
    );
  }
  printTable(
    'CPU of one conversation (worker process and its flite children, /proc/<pid>/stat)',
    ['language model', 'session (s)', 'CPU (share of one core)', 'worker event-loop delay p99 / max (ms)'],
    runs.map((r) => [r.label, r.sessionS.toFixed(0), r.cpuShare === undefined ? '—' : `${(r.cpuShare * 100).toFixed(0)} %`, r.loopDelay ? `${r.loopDelay.p99Ms} / ${r.loopDelay.maxMs}` : '—']),
  );
}

/** Time to the first piece (the prompt: the default persona and a question) and per piece after it. */
async function llamaSpeed(modelPath: string, threads: number): Promise<{ firstMs: number; msPerPiece: number }> {
  const lm = await loadLlamaLm({ modelPath, contextSize: 1024, threads });
  const first: number[] = [];
  const per: number[] = [];
  try {
    for (let rep = 0; rep < 3; rep++) {
      const session = await lm.createSession();
      const t0 = performance.now();
      let n = 0;
      let firstAt = 0;
      const messages = [
        { role: 'system' as const, content: DEFAULT_PERSONA },
        { role: 'user' as const, content: QUESTIONS[rep % QUESTIONS.length] },
      ];
      for await (const _ of session.generate(messages, { signal: new AbortController().signal, maxTokens: 32, seed: rep, temperature: 0.8 })) {
        if (n++ === 0) firstAt = performance.now() - t0;
      }
      first.push(firstAt);
      if (n > 1) per.push((performance.now() - t0 - firstAt) / (n - 1));
      await session.dispose();
    }
  } finally {
    await lm.dispose?.();
  }
  return { firstMs: percentile(first, 50), msPerPiece: percentile(per, 50) };
}

async function threadsProbe(dir: string): Promise<void> {
  const path = join(dir, 'qwen-sized-stand-in.gguf');
  writeTinyLlamaGguf(path, { embd: 896, layers: 6, heads: 14, ff: 4864, context: 1024 });
  const rows: string[][] = [];
  for (const busy of [false, true]) {
    // A process spinning on one core: the rest of a busy server, or this conversation's own audio work at its worst.
    const hog = busy ? spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }) : undefined;
    try {
      for (let threads = 1; threads <= Math.max(2, availableParallelism()); threads++) {
        const r = await llamaSpeed(path, threads);
        rows.push([busy ? 'one core busy' : 'idle', String(threads), f0(r.firstMs), r.msPerPiece.toFixed(1)]);
      }
    } finally {
      hog?.kill('SIGKILL');
    }
  }
  printTable(
    'llama.cpp on a random stand-in as heavy as Qwen2.5-0.5B Q4_K_M (896 wide, 6 F32 layers, 390 MB; p50 of 3, 32 pieces each)',
    ['machine', 'threads', 'first piece (ms)', 'ms per piece after'],
    rows,
  );
}

const startLoad = loadavg()
  .map((l) => l.toFixed(2))
  .join(' / ');

function pausedClips(): Promise<PausedClip[]> {
  return Promise.all(
    PAUSED.map(async ([before, pauseMs, after]) => ({
      text: `${before} … ${after}`,
      before: trimSilence(await speak(before)),
      pauseMs,
      after: trimSilence(await speak(after)),
    })),
  );
}

/** One server per setting: the questions (p50, p90), then the paused sentences (false starts). */
async function tradeoff(lmUrl: string, turns: number, clips: Float32Array[], paused: PausedClip[], dir: string): Promise<string[][]> {
  const rows: string[][] = [];
  // --settings 0,3: only those rows of TRADEOFF (to compare a few settings in one sitting).
  const only = arg('--settings')?.split(',').map(Number);
  for (const { label, settings } of TRADEOFF.filter((_, i) => only === undefined || only.includes(i))) {
    process.stderr.write(`trade-off, ${label}: ${turns} turns and ${paused.length} paused sentences…\n`);
    const server = await serve(['--lm-url', lmUrl], settings, dir);
    try {
      const run = await converseTurns(server, label, turns, clips);
      const fs = await falseStarts(server, paused);
      const v = numbers(run.turns, (t) => t.v2vMs);
      const flagged = fs.filter((f) => f.falseStart);
      rows.push([label, `${v.length}/${run.turns.length}`, f0(percentile(v, 50)), f0(percentile(v, 90)), `${flagged.length}/${fs.length}`, flagged.map((f) => f.utterance.split(' … ')[0]).join('; ') || '—']);
    } finally {
      await server.stop();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const turns = Number(arg('--turns') ?? 20);
  const wordMs = Number(arg('--word-ms') ?? 30);
  const threads = arg('--threads');
  // Engine settings to try (any key of the cascade config), as the config file would give them.
  const overrides = JSON.parse(arg('--cascade') ?? '{}') as Record<string, unknown>;
  const clips = await Promise.all(QUESTIONS.map(async (q) => trimSilence(await speak(q))));
  const paused = await pausedClips();
  const runs: RunResult[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'quillman-bench-'));
  const lm: FakeCloudLm = await startFakeCloudLm({ reply: () => REPLY, wordDelayMs: wordMs });
  let tradeoffRows: string[][] | undefined;

  const configs: { label: string; flags: string[]; config: Record<string, unknown> }[] = [{ label: `fake cloud LM ${wordMs} ms/word`, flags: ['--lm-url', lm.url], config: overrides }];
  if (!process.argv.includes('--no-llama')) {
    const gguf = join(dir, 'tiny.gguf');
    writeTinyLlamaGguf(gguf);
    // The random model rarely ends a sentence: a token limit keeps its replies short.
    configs.push({ label: 'llama.cpp, tiny test GGUF', flags: ['--gguf', gguf, ...(threads ? ['--llama-threads', threads] : [])], config: { maxReplyTokens: 48, ...overrides } });
  }
  try {
    for (const config of process.argv.includes('--tradeoff-only') ? [] : configs) {
      process.stderr.write(`${config.label}: ${turns} turns, then ${paused.length} paused sentences…\n`);
      const server = await serve(config.flags, config.config, dir);
      const asked = lm.requests.length;
      try {
        const run = await converseTurns(server, config.label, turns, clips);
        run.falseStarts = await falseStarts(server, paused);
        runs.push(run);
      } finally {
        await server.stop();
      }
      if (process.argv.includes('--verbose')) {
        const r = runs.at(-1)!;
        printTable(`${config.label}: each turn`, ['turn', 'v2v', 'stream', 'decided', 'speculative', 'redone', 'responseMs'], r.turns.map((t) => [String(t.index + 1), f0(t.v2vMs), f0(t.streamMs), f0(t.decidedMs), String(t.timings?.speculative), String(t.timings?.redone ?? ''), f0(t.timings?.responseMs as number)]));
        for (const q of lm.requests.slice(asked)) process.stdout.write(`  model asked: "${q.messages.at(-1)?.content}"${q.abortedByClient ? ' (cancelled)' : ''}\n`);
      }
    }
    if (!process.argv.includes('--no-tradeoff')) tradeoffRows = await tradeoff(lm.url, Number(arg('--tradeoff-turns') ?? 10), clips, paused, dir);
  } finally {
    await lm.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (runs.length > 0) report(runs, wordMs);
  if (tradeoffRows) {
    printTable(
      `End-of-turn settings against latency and false starts (fake cloud LM ${wordMs} ms/word; waits in ms after a word a sentence can end on / after a function word, 600 below the word count judged; silence at which the model starts and the recogniser closes)`,
      ['setting', 'turns ok', 'p50', 'p90', 'false starts', 'cut off'],
      tradeoffRows,
    );
  }
  if (process.argv.includes('--threads-probe')) {
    const probeDir = mkdtempSync(join(tmpdir(), 'quillman-bench-'));
    try {
      await threadsProbe(probeDir);
    } finally {
      rmSync(probeDir, { recursive: true, force: true });
    }
  }
}

await main();
