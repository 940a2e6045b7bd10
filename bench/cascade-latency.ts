/**
 * Voice-to-voice latency of the cascade engine through the gateway, turn by
 * turn, with what each stage took and what one conversation costs in CPU.
 *
 *   npm run bench -- cascade [--turns 20] [--word-ms 30] [--no-llama] [--threads N] [--threads-probe]
 *                            [--cascade '{"speculativeAfterMs":240}'] [--verbose]
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
 * (output sample i answers input sample i), without transport delays.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PERSONA } from '../src/engines/cascade/config.js';
import { loadLlamaLm } from '../src/engines/cascade/lm/llama.js';
import { writeTinyLlamaGguf } from '../test/cascade/gguf-writer.js';
import { startFakeCloudLm, type FakeCloudLm } from '../test/cascade-e2e/fake-cloud-lm.js';
import { cpuSeconds } from '../test/cascade-e2e/harness.js';
import { CHUNK, converse, ms, samplesOf, Script, trimSilence } from '../test/cascade-e2e/voice.js';
import { CLI_ARGS, REPO } from '../test/helpers/gateway.js';
import { freePort } from '../test/helpers/net.js';
import { stopProcessGroup } from '../test/helpers/processes.js';
import { speak } from '../test/helpers/speech.js';
import { machineLine, printTable } from './lib/report.js';

const QUESTIONS = [
  'What is the capital of France?',
  'How far away is the moon?',
  'Can you recommend a good book?',
  'What should I cook for dinner tonight?',
  'Why is the sky blue?',
];
const REPLY = 'That is a good question. The short answer is yes, and I can tell you more about it if you like.';
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
  /** End of speech → final transcript received (turn decided), stream clock. */
  decidedMs?: number;
  timings?: Record<string, unknown>;
}

interface RunResult {
  label: string;
  turns: Turn[];
  stats?: Record<string, Record<string, number | undefined>>;
  cpuShare?: number;
  sessionS: number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Served {
  chatUrl: string;
  workerPid: number;
  stop(): Promise<void>;
}

/** `quillman serve` with one cascade worker, in a process group of its own; resolves once a worker is ready. */
async function serve(flags: string[], config: Record<string, unknown>, dir: string): Promise<Served> {
  const port = await freePort();
  const configFile = join(dir, `config-${port}.json`);
  writeFileSync(configFile, JSON.stringify({ engine: { cascade: config } }));
  const args = [...CLI_ARGS, 'serve', '--config', configFile, '--port', String(port), '--host', '127.0.0.1', '--engine', 'cascade'];
  args.push('--warm', '1', '--max-workers', '1', '--worker-base-port', String(port + 1), '--stt', 'pocketsphinx', '--tts', 'flite', ...flags);
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, QUILLMAN_LOG_FORMAT: 'json' } });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const stop = () => stopProcessGroup(child, 10_000);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { pool?: { workers?: { state: string; pid?: number }[] } };
      const worker = health.pool?.workers?.find((w) => w.state === 'idle' && w.pid !== undefined);
      if (worker) return { chatUrl: `ws://127.0.0.1:${port}/api/chat`, workerPid: worker.pid!, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`quillman serve did not get a ready worker within 60 s:\n${output}`);
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
    const final = heard.events.find((e) => e.value.type === 'transcript' && e.value.role === 'user' && e.value.final === true && e.atSample >= end && e.atSample < until);
    if (final) turn.decidedMs = ms(final.atSample - end);
    turn.timings = heard.events.find((e) => e.value.type === 'timings' && e.value.turn === index + 1)?.value;
    if (first < 0) return turn;
    turn.streamMs = ms(first - end);
    const endWall = speechEndWall(end, sentAt);
    const arrival = heard.playTime(first);
    if (endWall !== undefined && arrival !== undefined) turn.v2vMs = arrival - endWall;
    return turn;
  });
  const stats = heard.eventsOf('stats').at(-1)?.value as RunResult['stats'];
  return { label, turns: results, stats, cpuShare, sessionS: ms(heard.length) / 1000 };
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
  process.stdout.write(`\ncascade latency — ${machineLine()}\n`);
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
  printTable(
    'CPU of one conversation (worker process and its flite children, /proc/<pid>/stat)',
    ['language model', 'session (s)', 'CPU (share of one core)'],
    runs.map((r) => [r.label, r.sessionS.toFixed(0), r.cpuShare === undefined ? '—' : `${(r.cpuShare * 100).toFixed(0)} %`]),
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

async function main(): Promise<void> {
  const turns = Number(arg('--turns') ?? 20);
  const wordMs = Number(arg('--word-ms') ?? 30);
  const threads = arg('--threads');
  // Engine settings to try (any key of the cascade config), as the config file would give them.
  const overrides = JSON.parse(arg('--cascade') ?? '{}') as Record<string, unknown>;
  const clips = await Promise.all(QUESTIONS.map(async (q) => trimSilence(await speak(q))));
  const runs: RunResult[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'quillman-bench-'));
  const lm: FakeCloudLm = await startFakeCloudLm({ reply: () => REPLY, wordDelayMs: wordMs });

  const configs: { label: string; flags: string[]; config: Record<string, unknown> }[] = [{ label: `fake cloud LM ${wordMs} ms/word`, flags: ['--lm-url', lm.url], config: overrides }];
  if (!process.argv.includes('--no-llama')) {
    const gguf = join(dir, 'tiny.gguf');
    writeTinyLlamaGguf(gguf);
    // The random model rarely ends a sentence: a token limit keeps its replies short.
    configs.push({ label: 'llama.cpp, tiny test GGUF', flags: ['--gguf', gguf, ...(threads ? ['--llama-threads', threads] : [])], config: { maxReplyTokens: 48, ...overrides } });
  }
  try {
    for (const config of configs) {
      process.stderr.write(`${config.label}: ${turns} turns…\n`);
      const server = await serve(config.flags, config.config, dir);
      const asked = lm.requests.length;
      try {
        runs.push(await converseTurns(server, config.label, turns, clips));
      } finally {
        await server.stop();
      }
      if (process.argv.includes('--verbose')) {
        const r = runs.at(-1)!;
        printTable(`${config.label}: each turn`, ['turn', 'v2v', 'stream', 'decided', 'speculative', 'responseMs'], r.turns.map((t) => [String(t.index + 1), f0(t.v2vMs), f0(t.streamMs), f0(t.decidedMs), String(t.timings?.speculative), f0(t.timings?.responseMs as number)]));
        for (const q of lm.requests.slice(asked)) process.stdout.write(`  model asked: "${q.messages.at(-1)?.content}"${q.abortedByClient ? ' (cancelled)' : ''}\n`);
      }
    }
  } finally {
    await lm.close();
    rmSync(dir, { recursive: true, force: true });
  }
  report(runs, wordMs);
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
