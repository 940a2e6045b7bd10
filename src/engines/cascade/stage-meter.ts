/**
 * What each stage costs a conversation, measured in one place: the stages
 * are wrapped once per conversation, so no caller keeps its own books.
 *
 * Busy time is wall time inside a stage's call: for a promise, until it
 * settles; for a stream (the model's pieces, the synthesiser's chunks), the
 * time spent waiting in `next()` only, so the time the consumer holds an
 * item (the reply waiting for playback) is never the stage's. The totals are
 * the `stats` events' real-time factors (busy time / audio time).
 */
import type { LmSession, LmStage } from './lm/types.js';
import type { RecognizerSession, SttStage } from './stt/types.js';
import type { TtsStage } from './tts/types.js';
import type { VadStage, VoiceActivityDetector } from './vad/types.js';

export interface CascadeStages {
  vad: VadStage;
  stt: SttStage;
  lm: LmStage;
  tts: TtsStage;
}

export interface StageUsage {
  /** The detector's calls; audioMs is the 16 kHz audio it was given. */
  vad: { busyMs: number; audioMs: number };
  /** The recogniser's calls (streaming and final passes). */
  stt: { busyMs: number; audioMs: number };
  /** Pieces are tokens for llama.cpp, SSE deltas for endpoints. */
  lm: { busyMs: number; pieces: number; requests: number };
  /** A sentence's synthesis, a flite child process included. */
  tts: { busyMs: number; audioMs: number; sentences: number };
}

export function emptyUsage(): StageUsage {
  return {
    vad: { busyMs: 0, audioMs: 0 },
    stt: { busyMs: 0, audioMs: 0 },
    lm: { busyMs: 0, pieces: 0, requests: 0 },
    tts: { busyMs: 0, audioMs: 0, sentences: 0 },
  };
}

const VAD_RATE = 16_000;
const TTS_RATE = 24_000;

export class StageMeter {
  readonly usage: StageUsage = emptyUsage();

  /** Times one call, adding `audioMs` of audio handled once it settles. */
  async call<T>(stage: 'vad' | 'stt', audioMs: number, task: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await task();
    } finally {
      this.usage[stage].busyMs += performance.now() - start;
      this.usage[stage].audioMs += audioMs;
    }
  }

  /** The stream with the time spent producing each item added to `stage`; `onItem` sees each item as it comes. */
  async *stream<T>(stage: 'lm' | 'tts', source: AsyncIterable<T>, onItem: (item: T) => void): AsyncGenerator<T> {
    const it = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        const start = performance.now();
        const next = await it.next();
        this.usage[stage].busyMs += performance.now() - start;
        if (next.done) return;
        onItem(next.value);
        yield next.value;
      }
    } finally {
      // A consumer that stops early (abort) closes the source too: a model request or a child process ends with it.
      await it.return?.();
    }
  }

  /** The stages, each wrapped to book its costs here. */
  wrap(stages: CascadeStages): CascadeStages {
    return {
      vad: { name: stages.vad.name, create: () => this.meteredDetector(stages.vad.create()) },
      stt: { name: stages.stt.name, create: async () => this.meteredRecognizer(await stages.stt.create()) },
      lm: {
        name: stages.lm.name,
        countTokens: (text) => stages.lm.countTokens(text),
        createSession: async () => this.meteredLm(await stages.lm.createSession()),
      },
      tts: {
        name: stages.tts.name,
        synthesize: (text, signal) => this.meteredSynthesis(stages.tts, text, signal),
      },
    };
  }

  private meteredDetector(detector: VoiceActivityDetector): VoiceActivityDetector {
    return {
      name: detector.name,
      windowSamples: detector.windowSamples,
      process: (pcm16k) => this.call('vad', (pcm16k.length / VAD_RATE) * 1000, () => detector.process(pcm16k)),
      reset: () => detector.reset(),
      dispose: () => detector.dispose(),
    };
  }

  private meteredRecognizer(session: RecognizerSession): RecognizerSession {
    return {
      begin: () => this.call('stt', 0, () => session.begin()),
      accept: (pcm16k) => this.call('stt', (pcm16k.length / VAD_RATE) * 1000, () => session.accept(pcm16k)),
      partial: () => session.partial(),
      finish: () => this.call('stt', 0, () => session.finish()),
      cancel: () => this.call('stt', 0, () => session.cancel()),
      dispose: () => session.dispose(),
    };
  }

  private meteredLm(session: LmSession): LmSession {
    return {
      generate: (messages, opts) => {
        this.usage.lm.requests++;
        return this.stream('lm', session.generate(messages, opts), () => this.usage.lm.pieces++);
      },
      dispose: () => session.dispose(),
    };
  }

  private async *meteredSynthesis(tts: TtsStage, text: string, signal: AbortSignal): AsyncGenerator<Float32Array> {
    try {
      yield* this.stream('tts', tts.synthesize(text, signal), (chunk) => (this.usage.tts.audioMs += (chunk.length / TTS_RATE) * 1000));
    } finally {
      this.usage.tts.sentences++;
    }
  }
}
