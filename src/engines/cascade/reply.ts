/**
 * One spoken reply: language model → sentences → synthesiser → a queue of
 * audio the output clock drains at real time, one 80 ms frame per tick.
 * Everything stops on abort (barge-in, cancelled speculation, close).
 *
 * A speculative reply (started while the user may only be pausing) writes
 * its text on but synthesises only its first sentences, about
 * SPECULATIVE_AUDIO_SAMPLES of audio, until `confirm()`: its first audio is
 * ready the moment the turn is confirmed, playback has enough in hand to
 * cover the next sentence's synthesis, and a guess that is dropped has cost
 * little. Nobody hears an unconfirmed reply: the output clock only plays
 * confirmed ones.
 */
import { ENGINE_SAMPLE_RATE } from '../engine.js';
import { firstSoundIndex } from './audio/level.js';
import type { LmSession, ChatMessage, GenerateOptions } from './lm/types.js';
import { SentenceSplitter, speakable, words } from './text/sentences.js';
import type { TtsStage } from './tts/types.js';

export interface ReplyTimings {
  lmStartAt?: number;
  lmFirstTokenAt?: number;
  firstSentenceAt?: number;
  ttsFirstRequestAt?: number;
  firstTtsChunkAt?: number;
}

interface SentenceAudio {
  text: string;
  chunks: Float32Array[];
  /** Samples synthesised so far. */
  length: number;
  /** All audio for the sentence is in. */
  complete: boolean;
  /** Reply sample index where this sentence's audio begins (once known). */
  startSample?: number;
}

export interface ReplySource {
  /** Generate with a language model... */
  lm?: { session: LmSession; messages: ChatMessage[]; options: Omit<GenerateOptions, 'signal'> };
  /** ...or say fixed text (idle prompt, farewell, apology). */
  script?: string;
}

export interface PullResult {
  pcm: Float32Array;
  /** Sentences whose first sample is in this frame: their text goes out now. */
  started: string[];
  /** Reply audio samples in this frame (the rest is silence). */
  audioSamples: number;
}

/**
 * Synthesisers open each clip with silence (flite: 220 ms). At the start of a
 * reply that silence is nothing but latency, so it is cut, down to
 * LEAD_KEEP_SAMPLES before the first sound (-54 dBFS over 5 ms) so the onset
 * is not clipped. Later sentences keep theirs: it is the pause between them.
 */
const LEAD_THRESHOLD = 0.002;
const LEAD_KEEP_SAMPLES = ENGINE_SAMPLE_RATE * 0.01;

/** Audio an unconfirmed reply synthesises before it waits for confirmation (whole sentences, at least one). */
const SPECULATIVE_AUDIO_SAMPLES = ENGINE_SAMPLE_RATE * 2;

/** Seconds of synthesised audio allowed ahead of playback; the synthesiser waits beyond it. */
const MAX_AHEAD_SAMPLES = ENGINE_SAMPLE_RATE * 30;

export class Reply {
  readonly timings: ReplyTimings = {};
  readonly controller = new AbortController();
  private readonly sentences: SentenceAudio[] = [];
  private readonly pendingText: string[] = [];
  private lmDone = false;
  private ttsDone = false;
  private wakeTts: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;
  /** Reply samples handed to the output so far. */
  emitted = 0;
  private readIndex = 0;
  private readOffset = 0;
  private readChunk = 0;
  /** Still before the reply's first sound: leading silence is dropped. */
  private leading = true;
  private confirmed: boolean;
  error: unknown;

  constructor(
    private readonly tts: TtsStage,
    readonly source: ReplySource,
    private readonly onError: (stage: 'lm' | 'tts', err: unknown) => void,
    options: { speculative?: boolean } = {},
  ) {
    this.confirmed = !options.speculative;
  }

  /** The turn is the user's no more: synthesise the rest. */
  confirm(): void {
    this.confirmed = true;
    this.wakeTts?.();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  start(): void {
    void this.produceText();
    void this.synthesise();
  }

  abort(): void {
    this.controller.abort();
    this.wakeTts?.();
    this.wakeProducer?.();
  }

  private queueSentence(text: string): void {
    const clean = speakable(text);
    if (!clean) return;
    this.timings.firstSentenceAt ??= performance.now();
    this.pendingText.push(clean);
    this.wakeTts?.();
  }

  private async produceText(): Promise<void> {
    try {
      if (this.source.script !== undefined) {
        for (const s of new SentenceSplitter().push(`${this.source.script}\n`)) this.queueSentence(s);
        return;
      }
      const lm = this.source.lm!;
      const splitter = new SentenceSplitter();
      this.timings.lmStartAt = performance.now();
      for await (const piece of lm.session.generate(lm.messages, { ...lm.options, signal: this.signal })) {
        if (this.signal.aborted) break;
        this.timings.lmFirstTokenAt ??= performance.now();
        for (const s of splitter.push(piece)) this.queueSentence(s);
        // Do not let the model run far ahead of what can be spoken.
        while (!this.signal.aborted && this.bufferedAhead() > MAX_AHEAD_SAMPLES) await new Promise<void>((r) => (this.wakeProducer = r));
      }
      if (!this.signal.aborted) for (const s of splitter.flush()) this.queueSentence(s);
    } catch (err) {
      if (!this.signal.aborted) {
        this.error = err;
        this.onError('lm', err);
      }
    } finally {
      this.lmDone = true;
      this.wakeTts?.();
    }
  }

  private bufferedAhead(): number {
    let total = 0;
    for (const s of this.sentences) total += s.length;
    return total - this.emitted;
  }

  private async synthesise(): Promise<void> {
    try {
      while (!this.signal.aborted) {
        // Unconfirmed, a reply stops after its first sentences: the rest may never be needed.
        const held = !this.confirmed && this.sentences.length > 0 && this.bufferedAhead() >= SPECULATIVE_AUDIO_SAMPLES;
        const text = held ? undefined : this.pendingText.shift();
        if (text === undefined) {
          if (this.lmDone && !held && this.pendingText.length === 0) break;
          await new Promise<void>((r) => (this.wakeTts = r));
          this.wakeTts = undefined;
          continue;
        }
        const sentence: SentenceAudio = { text, chunks: [], length: 0, complete: false };
        this.sentences.push(sentence);
        const requestedAt = performance.now();
        this.timings.ttsFirstRequestAt ??= requestedAt;
        try {
          for await (let chunk of this.tts.synthesize(text, this.signal)) {
            if (this.signal.aborted) break;
            this.timings.firstTtsChunkAt ??= performance.now();
            if (this.leading) {
              const sound = firstSoundIndex(chunk, LEAD_THRESHOLD);
              if (sound < 0) continue;
              chunk = chunk.subarray(Math.max(0, sound - LEAD_KEEP_SAMPLES));
              this.leading = false;
            }
            sentence.chunks.push(chunk);
            sentence.length += chunk.length;
          }
        } catch (err) {
          if (!this.signal.aborted) this.onError('tts', err);
        }
        sentence.complete = true;
        while (!this.signal.aborted && this.bufferedAhead() > MAX_AHEAD_SAMPLES) await new Promise<void>((r) => (this.wakeTts = r));
      }
    } finally {
      this.ttsDone = true;
    }
  }

  /** Some of its audio is synthesised and waiting: played now, it would be heard at once. */
  get firstAudioReady(): boolean {
    return this.sentences.some((s) => s.length > 0);
  }

  /** Nothing more will ever come out. */
  get finished(): boolean {
    if (this.signal.aborted) return true;
    return this.lmDone && this.ttsDone && this.readIndex >= this.sentences.length;
  }

  /** Takes the next `n` samples of reply audio, padding with silence on underrun. */
  pull(n: number): PullResult {
    const pcm = new Float32Array(n);
    const started: string[] = [];
    let filled = 0;
    while (filled < n && this.readIndex < this.sentences.length) {
      const s = this.sentences[this.readIndex];
      if (this.readChunk >= s.chunks.length) {
        if (s.complete) {
          this.readIndex++;
          this.readChunk = 0;
          this.readOffset = 0;
          continue;
        }
        break; // underrun: the synthesiser is still working on this sentence
      }
      if (s.startSample === undefined) {
        s.startSample = this.emitted + filled;
        started.push(s.text);
      }
      const chunk = s.chunks[this.readChunk];
      const take = Math.min(n - filled, chunk.length - this.readOffset);
      pcm.set(chunk.subarray(this.readOffset, this.readOffset + take), filled);
      filled += take;
      this.readOffset += take;
      if (this.readOffset >= chunk.length) {
        // Drop played chunks so a long reply does not keep its whole audio.
        s.chunks[this.readChunk] = new Float32Array(0);
        this.readChunk++;
        this.readOffset = 0;
      }
    }
    this.emitted += filled;
    if (filled > 0) {
      this.wakeTts?.();
      this.wakeProducer?.();
    }
    return { pcm, started, audioSamples: filled };
  }

  /**
   * The words the user has heard when the reply stops now: every sentence
   * whose audio had played out, and the share of the current sentence that
   * had, minus `leadSamples` still sitting in the client's playout buffer.
   */
  playedText(leadSamples: number): string {
    const heard = Math.max(0, this.emitted - leadSamples);
    const out: string[] = [];
    for (const s of this.sentences) {
      if (s.startSample === undefined || s.startSample >= heard) break;
      const end = s.startSample + s.length;
      if (s.complete && end <= heard) {
        out.push(s.text);
        continue;
      }
      const w = words(s.text);
      const share = s.length > 0 ? (heard - s.startSample) / s.length : 0;
      const n = Math.floor(w.length * Math.min(1, share));
      if (n > 0) out.push(`${w.slice(0, n).join(' ')}…`);
      break;
    }
    return out.join(' ');
  }

  /** Sentences that were voiced (the reply ran to its end). */
  spokenText(): string {
    return this.sentences
      .filter((s) => s.startSample !== undefined)
      .map((s) => s.text)
      .join(' ');
  }
}
