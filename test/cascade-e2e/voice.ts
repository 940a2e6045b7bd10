/**
 * A spoken conversation with a QuiLLMan server, as a microphone would have
 * it: 20 ms of audio every 20 ms of wall time, produced one chunk at a time
 * (so a test can speak again once the bot answered, or feed the bot's own
 * voice back as echo), over the project's terminal client library.
 *
 * Everything received is placed on the stream clock: reply audio by sample
 * index (the worker's output clock starts with the input and runs at the same
 * pace, so output sample i leaves about when input sample i came in, half a
 * frame later), events and text by how much reply audio had
 * arrived when they came (metadata travels in order with the audio).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encodeWav } from '../../src/audio/wav.js';
import { runChat, type ChatResult } from '../../src/client/chat.js';
import { resampleClip } from '../../src/engines/cascade/audio/resample.js';
import type { SamplingParams } from '../../src/protocol/sampling.js';
import { rms } from '../../src/audio/pcm.js';

export const RATE = 24_000;
export const CHUNK = 480; // 20 ms
export const ms = (samples: number) => (samples / RATE) * 1000;
export const samplesOf = (milliseconds: number) => Math.round((milliseconds / 1000) * RATE);

/** Reply audio quieter than this (RMS over 10 ms) counts as silence; flite's speech is around 0.05–0.2. */
export const SILENCE_RMS = 0.003;

export interface Stamped<T> {
  value: T;
  /** Reply samples received before it: its place on the stream clock. */
  atSample: number;
  /** performance.now() when it arrived. */
  wallMs: number;
}

/** What came back, growing while the conversation runs. */
export class Heard {
  private buf = new Float32Array(RATE * 30);
  length = 0;
  readonly events: Stamped<Record<string, unknown>>[] = [];
  readonly texts: Stamped<string>[] = [];
  readonly errors: Stamped<string>[] = [];
  /** performance.now() when each received chunk arrived, with its first sample index. */
  readonly arrivals: { atSample: number; wallMs: number; length: number }[] = [];

  push(pcm: Float32Array): void {
    if (this.length + pcm.length > this.buf.length) {
      const bigger = new Float32Array(Math.max(this.buf.length * 2, this.length + pcm.length));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
    }
    this.buf.set(pcm, this.length);
    this.arrivals.push({ atSample: this.length, wallMs: performance.now(), length: pcm.length });
    this.length += pcm.length;
  }

  audio(from = 0, to = this.length): Float32Array {
    return this.buf.subarray(Math.max(0, from), Math.min(this.length, to));
  }

  event(type: string, after = 0): Stamped<Record<string, unknown>> | undefined {
    return this.events.find((e) => e.value.type === type && e.atSample >= after);
  }

  eventsOf(type: string): Stamped<Record<string, unknown>>[] {
    return this.events.filter((e) => e.value.type === type);
  }

  text(): string {
    return this.texts.map((t) => t.value).join('');
  }

  /** First sample at or after `from` that starts 10 ms of sound (RMS above SILENCE_RMS); -1 if none. */
  firstSound(from = 0, to = this.length): number {
    const win = 240;
    for (let i = Math.max(0, from); i + win <= Math.min(to, this.length); i += win) {
      if (rms(this.buf.subarray(i, i + win)) > SILENCE_RMS) return i;
    }
    return -1;
  }

  /** End of the last 10 ms of sound in [from, to); -1 if none. */
  lastSound(from = 0, to = this.length): number {
    const win = 240;
    let last = -1;
    for (let i = Math.max(0, from); i + win <= Math.min(to, this.length); i += win) {
      if (rms(this.buf.subarray(i, i + win)) > SILENCE_RMS) last = i + win;
    }
    return last;
  }

  /** When (performance.now()) sample `index` would start playing if the client played each chunk the moment it arrived. */
  playTime(index: number): number | undefined {
    const a = this.arrivals.find((c) => index >= c.atSample && index < c.atSample + c.length);
    return a ? a.wallMs + ms(index - a.atSample) : undefined;
  }
}

export interface Microphone {
  /**
   * The next 20 ms of microphone (CHUNK samples) starting at stream sample
   * `at`, given what was heard so far; undefined ends the conversation.
   */
  (at: number, heard: Heard): Float32Array | undefined;
}

export interface ConverseOptions {
  url: string;
  params?: SamplingParams;
  mic: Microphone;
  /** Hard limit on the conversation's stream length. */
  maxMs: number;
}

export interface Conversation {
  heard: Heard;
  result: ChatResult;
  /** performance.now() at which the chunk starting at each multiple of CHUNK was sent. */
  sentAt: number[];
}

/** Talks until the microphone ends, the server closes, or maxMs of stream time. */
export async function converse(options: ConverseOptions): Promise<Conversation> {
  const heard = new Heard();
  const sentAt: number[] = [];
  // runChat stops pulling once the socket closed; this stops a microphone it is still waiting on.
  let closed = false;
  async function* microphone(): AsyncIterable<Float32Array> {
    const start = performance.now();
    const chunks = Math.ceil(samplesOf(options.maxMs) / CHUNK);
    for (let n = 0; n < chunks && !closed; n++) {
      const due = start + n * 20 - performance.now();
      if (due > 1) await new Promise((r) => setTimeout(r, due));
      const chunk = options.mic(n * CHUNK, heard);
      if (!chunk) return;
      sentAt.push(performance.now());
      yield chunk.length === CHUNK ? chunk : fit(chunk);
    }
  }
  const stamp = <T>(value: T): Stamped<T> => ({ value, atSample: heard.length, wallMs: performance.now() });
  const result = await runChat({
    url: options.url,
    params: options.params,
    input: microphone(),
    lingerMs: 0,
    handshakeTimeoutMs: 60_000,
    onAudio: (pcm) => heard.push(pcm),
    onText: (piece) => heard.texts.push(stamp(piece)),
    onEvent: (event) => {
      if (event && typeof event === 'object') heard.events.push(stamp(event as Record<string, unknown>));
    },
    onError: (message) => heard.errors.push(stamp(message)),
  });
  closed = true;
  return { heard, result, sentAt };
}

function fit(chunk: Float32Array): Float32Array {
  const out = new Float32Array(CHUNK);
  out.set(chunk.subarray(0, CHUNK));
  return out;
}


/**
 * A clip cut to its speech: leading and trailing silence removed, so the
 * clip's end is the end of the user's speech on the stream clock.
 */
export function trimSilence(pcm: Float32Array, threshold = SILENCE_RMS): Float32Array {
  const win = 240;
  let first = -1;
  let last = -1;
  for (let i = 0; i + win <= pcm.length; i += win) {
    if (rms(pcm.subarray(i, i + win)) > threshold) {
      if (first < 0) first = i;
      last = i + win;
    }
  }
  return first < 0 ? new Float32Array(0) : pcm.slice(first, last);
}

/** A script of clips placed at stream positions: the microphone plays whichever covers the chunk. */
export class Script {
  private readonly parts: { at: number; pcm: Float32Array; gain: number }[] = [];

  /** Places `pcm` at sample `at`; returns the sample after its end. */
  put(at: number, pcm: Float32Array, gain = 1): number {
    this.parts.push({ at, pcm, gain });
    return at + pcm.length;
  }

  /** The chunk at `at`: the sum of every clip that overlaps it. */
  chunk(at: number): Float32Array {
    const out = new Float32Array(CHUNK);
    for (const p of this.parts) {
      const from = Math.max(at, p.at);
      const to = Math.min(at + CHUNK, p.at + p.pcm.length);
      for (let i = from; i < to; i++) out[i - at] += p.pcm[i - p.at] * p.gain;
    }
    return out;
  }
}

const run = promisify(execFile);

/** What Debian's PocketSphinx (a recogniser independent of the engine's streaming use of it) hears in 24 kHz audio. */
export async function recognise(pcm24k: Float32Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'quillman-asr-'));
  try {
    const file = join(dir, 'reply.wav');
    await writeFile(file, encodeWav(await resampleClip(pcm24k, RATE, 16_000), 16_000));
    const { stdout } = await run('pocketsphinx_continuous', ['-infile', file, '-logfn', '/dev/null'], { timeout: 30_000 });
    return stdout.replace(/\s+/g, ' ').trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z' ]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** Share of `expected`'s distinct words of 3+ letters that `heard` contains: robust to a recogniser's slips. */
export function wordOverlap(expected: string, heard: string): number {
  const want = new Set(words(expected).filter((w) => w.length >= 3));
  const got = new Set(words(heard));
  if (want.size === 0) return 0;
  let hit = 0;
  for (const w of want) if (got.has(w)) hit++;
  return hit / want.size;
}
