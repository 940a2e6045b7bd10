/**
 * STAND-INS for the cascade's models, driven by a script in stream time, so
 * that turn-taking, speculation and barge-in can be tested without models,
 * quickly and deterministically: events in, events out.
 *
 * - The user's speech is a timeline of segments (from, to, words). The
 *   scripted VAD hears speech exactly inside segments; the scripted
 *   recogniser hears each word once the stream has passed its end (its
 *   partial may show other words than its final pass, as a real one's does),
 *   and its final pass takes `finalPassMs` of stream time.
 * - The scripted language model and voice take their time in stream time too.
 * - A StreamClock stands in for time: the driver advances it frame by frame,
 *   and every delay above is a sleep on it. Nothing waits on a wall clock.
 *
 * Only the stages are stand-ins; the conversation (user-turn tracking, turn
 * manager, replies, output clock) is the real code.
 */
import { createCascadeEngine, type CascadeConfigInput, type CascadeConversation } from '../../src/engines/cascade/index.js';
import type { ChatMessage } from '../../src/engines/cascade/lm/types.js';
import type { RecognizerSession, SttStage } from '../../src/engines/cascade/stt/types.js';
import type { TtsStage } from '../../src/engines/cascade/tts/types.js';
import type { VadStage, VoiceActivityDetector } from '../../src/engines/cascade/vad/types.js';
import { ENGINE_FRAME_SAMPLES } from '../../src/engines/engine.js';
import { quietLogger, RecordingSink, scriptedLm, type ScriptedLm } from './helpers.js';

export const FRAME_MS = 80;

/** Stream time for the stand-ins: sleeps end when the driver advances past them, in order. */
export class StreamClock {
  now = 0;
  private readonly sleepers: { until: number; wake: () => void }[] = [];

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      // One signal serves a whole reply: its listener goes when the sleep ends, or they pile up on it.
      const onAbort = () => resolve();
      const entry = {
        until: this.now + ms,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.sleepers.push(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Wakes every sleeper due by `ms`. */
  advanceTo(ms: number): void {
    this.now = ms;
    const due = this.sleepers.filter((s) => s.until <= ms).sort((a, b) => a.until - b.until);
    for (const s of due) {
      this.sleepers.splice(this.sleepers.indexOf(s), 1);
      s.wake();
    }
  }
}

export interface Segment {
  /** Stream ms where the speech starts and ends. */
  from: number;
  to: number;
  /** What the recogniser's final pass gives for it, one word after another, evenly spread. */
  words: string;
  /** What its partial hypothesis shows meanwhile (the same words by default). */
  partial?: string;
}

interface Word {
  final: string;
  partial: string;
  /** Stream ms where the word ends. */
  end: number;
}

/** The user's speech: when it is heard (VAD) and what it says (recogniser). */
export class SpeechTimeline {
  /** End of the latest frame the VAD has been given: how far the recogniser can have heard. */
  heardUntil = 0;
  private readonly words: Word[] = [];

  constructor(readonly segments: Segment[]) {
    for (const s of segments) {
      const finals = s.words.split(/\s+/).filter(Boolean);
      const partials = (s.partial ?? s.words).split(/\s+/).filter(Boolean);
      finals.forEach((w, i) => this.words.push({ final: w, partial: partials[i] ?? w, end: s.from + ((i + 1) * (s.to - s.from)) / finals.length }));
    }
  }

  speaking(ms: number): boolean {
    return this.segments.some((s) => ms >= s.from && ms < s.to);
  }

  /** The words ending in (after, until]. */
  wordsBetween(after: number, until: number, which: 'final' | 'partial'): string {
    return this.words
      .filter((w) => w.end > after && w.end <= until)
      .map((w) => w[which])
      .join(' ');
  }
}

/** Hears speech exactly where the timeline has it, in the 32 ms windows Silero uses. */
export function scriptedVad(timeline: SpeechTimeline): VadStage {
  return {
    name: 'scripted-vad',
    create(): VoiceActivityDetector {
      let samples = 0;
      let pending = 0;
      return {
        name: 'scripted-vad',
        windowSamples: 512,
        async process(pcm16k) {
          samples += pcm16k.length;
          timeline.heardUntil = (samples / 16_000) * 1000;
          pending += pcm16k.length;
          const probs: number[] = [];
          for (; pending >= 512; pending -= 512) {
            const mid = ((samples - pending + 256) / 16_000) * 1000;
            probs.push(timeline.speaking(mid) ? 0.95 : 0.02);
          }
          return probs;
        },
        reset() {
          samples = pending = 0;
        },
        dispose() {},
      };
    },
  };
}

export interface RecogniserScript {
  /** Stream time a final pass takes. */
  finalPassMs?: number;
  /** Stream time cancelling an utterance takes. */
  cancelMs?: number;
}

export interface ScriptedRecogniser extends SttStage {
  /** The text of each final pass, in order. */
  readonly finals: string[];
  /** Stream time each final pass began (the utterance was closed), in order. */
  readonly closedAt: number[];
}

/** Recognises the timeline's words once the stream has passed them; each utterance takes the words since the previous one ended. */
export function scriptedRecogniser(timeline: SpeechTimeline, clock: StreamClock, script: RecogniserScript = {}): ScriptedRecogniser {
  const finals: string[] = [];
  const closedAt: number[] = [];
  return {
    name: 'scripted-stt',
    finals,
    closedAt,
    async create(): Promise<RecognizerSession> {
      /** Words up to here belong to utterances already finished. */
      let consumed = 0;
      let open = false;
      return {
        async begin() {
          open = true;
        },
        async accept() {},
        partial: () => (open ? timeline.wordsBetween(consumed, timeline.heardUntil, 'partial') : ''),
        async finish() {
          const until = timeline.heardUntil;
          closedAt.push(clock.now);
          open = false;
          await clock.sleep(script.finalPassMs ?? 0);
          const text = timeline.wordsBetween(consumed, until, 'final');
          consumed = until;
          finals.push(text);
          return text;
        },
        async cancel() {
          open = false;
          consumed = timeline.heardUntil;
          await clock.sleep(script.cancelMs ?? 0);
        },
        dispose() {},
      };
    },
  };
}

export type ScriptedModel = ScriptedLm;

/** Answers word by word: the first after `firstMs`, each next after `perWordMs`, of stream time. */
export function scriptedModel(clock: StreamClock, answer: (messages: ChatMessage[]) => string, timing: { firstMs: number; perWordMs: number } = { firstMs: 40, perWordMs: 30 }): ScriptedModel {
  return scriptedLm(answer, (i) => (i === 0 ? timing.firstMs : timing.perWordMs), (ms, signal) => clock.sleep(ms, signal), 'scripted-lm');
}

export interface ScriptedVoice extends TtsStage {
  /** Every sentence asked for, and whether it was cut short. */
  requests: { text: string; aborted: boolean }[];
}

/** Speaks a tone, `msPerWord` per word, after `delayMs` of stream time, in 80 ms chunks. */
export function scriptedVoice(clock: StreamClock, timing: { delayMs: number; msPerWord: number } = { delayMs: 60, msPerWord: 250 }): ScriptedVoice {
  const requests: { text: string; aborted: boolean }[] = [];
  return {
    name: 'scripted-tts',
    requests,
    async *synthesize(text, signal) {
      const request = { text, aborted: false };
      requests.push(request);
      try {
        await clock.sleep(timing.delayMs, signal);
        const samples = Math.round((text.split(/\s+/).length * timing.msPerWord * 24_000) / 1000);
        for (let at = 0; at < samples && !signal.aborted; at += ENGINE_FRAME_SAMPLES) {
          const chunk = new Float32Array(Math.min(ENGINE_FRAME_SAMPLES, samples - at));
          for (let i = 0; i < chunk.length; i++) chunk[i] = 0.2 * Math.sin(((at + i) * 2 * Math.PI * 220) / 24_000);
          yield chunk;
        }
      } finally {
        request.aborted = signal.aborted;
      }
    },
  };
}

export interface Scene {
  clock: StreamClock;
  timeline: SpeechTimeline;
  stt: ScriptedRecogniser;
  lm: ScriptedModel;
  tts: ScriptedVoice;
  conv: CascadeConversation;
  sink: RecordingSink;
  /** Plays `ms` of stream (or until `until` holds after a frame): input frame, then the output frame the clock pulls. */
  play(ms: number, until?: () => boolean): Promise<void>;
  /** Stream ms of output frame `index` (its end). */
  frameEnd(index: number): number;
  close(): Promise<void>;
}

/** The microphone: a quiet tone where the timeline has the user speak (loud enough to pass the echo gate), silence elsewhere. */
function micFrame(timeline: SpeechTimeline, endMs: number): Float32Array {
  const frame = new Float32Array(ENGINE_FRAME_SAMPLES);
  if (!timeline.speaking(endMs - FRAME_MS / 2)) return frame;
  for (let i = 0; i < frame.length; i++) frame[i] = 0.1 * Math.sin((i * 2 * Math.PI * 150) / 24_000);
  return frame;
}

/** Lets every promise chain that can move on do so (the stand-ins never wait on a timer). */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
}

export interface SceneOptions {
  segments: Segment[];
  config?: CascadeConfigInput;
  recogniser?: RecogniserScript;
  answer?: (messages: ChatMessage[]) => string;
  model?: { firstMs: number; perWordMs: number };
  voice?: { delayMs: number; msPerWord: number };
}

export async function openScene(options: SceneOptions): Promise<Scene> {
  const clock = new StreamClock();
  const timeline = new SpeechTimeline(options.segments);
  const stt = scriptedRecogniser(timeline, clock, options.recogniser);
  const lm = scriptedModel(clock, options.answer ?? (() => 'Sure. Here is my answer to that.'), options.model);
  const tts = scriptedVoice(clock, options.voice);
  const engine = await createCascadeEngine({ idlePromptAfterMs: 0, autoDownload: false, ...options.config }, { logger: quietLogger, stages: { vad: scriptedVad(timeline), stt, lm, tts } });
  const sink = new RecordingSink();
  const controller = new AbortController();
  const conv = (await engine.openConversation({ sampling: {}, signal: controller.signal }, sink)) as CascadeConversation;
  let frames = 0;
  return {
    clock,
    timeline,
    stt,
    lm,
    tts,
    conv,
    sink,
    async play(ms, until) {
      const end = clock.now + ms;
      while (clock.now < end) {
        const frameEnd = (frames + 1) * FRAME_MS;
        clock.advanceTo(frameEnd);
        await settle();
        conv.pushFrame(micFrame(timeline, frameEnd));
        await settle();
        sink.audio(conv.pullFrame());
        frames++;
        if (until?.()) return;
      }
    },
    frameEnd: (index) => (index + 1) * FRAME_MS,
    async close() {
      controller.abort();
      await conv.close();
      await engine.dispose?.();
    },
  };
}
