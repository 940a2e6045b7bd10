/** Shared test tools: generated speech, frame slicing, a recording sink, a scripted LM. */
import { ENGINE_FRAME_SAMPLES, type EngineEvent, type EngineSink } from '../../src/engines/engine.js';
import { concatFloat, rms } from '../../src/audio/pcm.js';
import { speak as speakShared, type Synth } from '../helpers/speech.js';
import { estimateTokens, type ChatMessage, type LmSession, type LmStage } from '../../src/engines/cascade/lm/types.js';
import { pino } from 'pino';

export const quietLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Speech from Debian's flite (or espeak-ng), at the engine's 24 kHz unless `rate` says otherwise. */
export function speak(text: string, opts: { tool?: Synth; rate?: number } = {}): Promise<Float32Array> {
  return speakShared(text, opts.tool ?? 'flite', opts.rate ?? 24_000);
}

export function silence(ms: number, rate = 24_000): Float32Array {
  return new Float32Array(Math.round((ms / 1000) * rate));
}

export const concat = (...parts: Float32Array[]): Float32Array => concatFloat(parts);

export function toFrames(pcm: Float32Array): Float32Array[] {
  const frames: Float32Array[] = [];
  for (let i = 0; i < pcm.length; i += ENGINE_FRAME_SAMPLES) {
    const f = new Float32Array(ENGINE_FRAME_SAMPLES);
    f.set(pcm.subarray(i, i + ENGINE_FRAME_SAMPLES));
    frames.push(f);
  }
  return frames;
}

/** Records everything the engine sends, tagged with the output frame index it came with; the driver records the frames it pulls with `audio`. */
export class RecordingSink implements EngineSink {
  readonly frames: Float32Array[] = [];
  readonly texts: { text: string; frame: number }[] = [];
  /** Each event with the output frame count when it came and the wall time (performance.now()). */
  readonly events: (EngineEvent & { frame: number; at: number })[] = [];
  readonly errors: { message: string; fatal?: boolean }[] = [];

  audio(pcm: Float32Array): void {
    this.frames.push(pcm);
  }
  text(piece: string): void {
    this.texts.push({ text: piece, frame: this.frames.length });
  }
  metadata(event: EngineEvent): void {
    this.events.push({ ...event, frame: this.frames.length, at: performance.now() });
  }
  error(message: string, fatal?: boolean): void {
    this.errors.push({ message, fatal });
  }
  eventsOf(type: string) {
    return this.events.filter((e) => e.type === type);
  }
  /** Indices of output frames that carry reply audio. */
  voicedFrames(threshold = 1e-4): number[] {
    return this.frames.flatMap((f, i) => (rms(f) > threshold ? [i] : []));
  }
  replyText(): string {
    return this.texts.map((t) => t.text).join('');
  }
}

export interface ScriptedLm extends LmStage {
  calls: ChatMessage[][];
  aborts: number;
  /** Wall time of each abort, for ordering against other events (never for durations). */
  abortedAt: number[];
  /** Wall time of each piece handed out, same use. */
  yieldedAt: number[];
}

/** Waits on the wall clock; like a real model, an abort cuts the wait for the next token short. */
function wallClockWait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * A deterministic language model for engine tests: answers with fixed text,
 * word by word, and records what it was asked and whether it was aborted.
 * `wait` is the clock it keeps time by (the wall clock, or a test's stream clock).
 */
export function scriptedLm(
  answer: (messages: ChatMessage[]) => string,
  tokenDelayMs: number | ((index: number) => number) = 5,
  wait: (ms: number, signal: AbortSignal) => Promise<void> = wallClockWait,
  name = 'scripted',
): ScriptedLm {
  const delay = typeof tokenDelayMs === 'number' ? () => tokenDelayMs : tokenDelayMs;
  const stage: ScriptedLm = {
    name,
    calls: [],
    aborts: 0,
    abortedAt: [],
    yieldedAt: [],
    countTokens: estimateTokens,
    async createSession(): Promise<LmSession> {
      return {
        async *generate(messages, opts) {
          stage.calls.push(messages);
          const pieces = answer(messages).split(/(?<= )/);
          for (const [index, piece] of pieces.entries()) {
            if (opts.signal.aborted) break;
            await wait(delay(index), opts.signal);
            if (opts.signal.aborted) break;
            stage.yieldedAt.push(performance.now());
            yield piece;
          }
          if (opts.signal.aborted) {
            stage.aborts++;
            stage.abortedAt.push(performance.now());
          }
        },
        async dispose() {},
      };
    },
  };
  return stage;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
