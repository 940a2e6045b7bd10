/**
 * Turn-taking for one cascade conversation.
 *
 * Clocking: every input frame produces exactly one 80 ms output frame — reply
 * audio when there is some, silence otherwise — the way Moshi runs. The output
 * is therefore paced to real time by the microphone itself (no timers), the
 * engine is never more than one frame ahead of playback, the client's playout
 * buffer sees a steady stream whose fill level means something, and a
 * barge-in only has to discard what the client already buffered.
 */
import type { Logger } from 'pino';
import { ENGINE_FRAME_SAMPLES, ENGINE_SAMPLE_RATE, type Conversation, type ConversationOptions, type EngineSink } from '../engine.js';
import { dbToGain, rms } from './audio/level.js';
import { StreamResampler } from './audio/resample.js';
import type { CascadeConfig } from './config.js';
import { ConversationMemory } from './lm/memory.js';
import type { LmSession, LmStage } from './lm/types.js';
import { Reply } from './reply.js';
import { normaliseTranscript, type RecognizerSession, type SttStage } from './stt/types.js';
import type { TtsStage } from './tts/types.js';
import type { VadStage, VoiceActivityDetector } from './vad/types.js';

export interface CascadeStages {
  vad: VadStage;
  stt: SttStage;
  lm: LmStage;
  tts: TtsStage;
}

const FRAME_MS = (ENGINE_FRAME_SAMPLES / ENGINE_SAMPLE_RATE) * 1000;
/** Frames waiting to be processed before the oldest are dropped (processing fell behind). */
const MAX_BACKLOG_FRAMES = 64;
/** Interval between partial transcripts sent to the client. */
const PARTIAL_EVERY_MS = 160;

type ReplyKind = 'answer' | 'idle-prompt' | 'farewell' | 'apology';

interface ActiveReply {
  reply: Reply;
  kind: ReplyKind;
  /** The user text it answers (speculative replies compare it with the final transcript). */
  userText?: string;
  turn: number;
  turnEndAt?: number;
  speculative: boolean;
  firstAudioAt?: number;
  sttFinalMs?: number;
  vadEndOfTurnMs?: number;
}

export class CascadeConversation implements Conversation {
  private readonly queue: Float32Array[] = [];
  private processing = false;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private ended = false;
  private readonly detector: VoiceActivityDetector;
  readonly memory: ConversationMemory;

  /** Stream time: ms of input processed. */
  streamMs = 0;
  private lastProb = 0;

  // User speech state.
  private inUtterance = false;
  private speechRunMs = 0;
  private silenceMs = 0;
  private utteranceMs = 0;
  private lastSpeechEndStreamMs = 0;
  private lastPartial = '';
  private lastPartialSentMs = 0;
  /** The utterance began while the bot was talking: it must earn a barge-in or it is dropped as echo. */
  private utteranceOverBot = false;
  private readonly preRoll: Float32Array[] = [];
  private readonly preRollFrames: number;

  // Bot state.
  private active: ActiveReply | undefined;
  private speculative: ActiveReply | undefined;
  /** RMS of the last output frames, newest last: the echo reference. */
  private readonly outLevels: number[] = [];
  private readonly echoFrames: number;
  private readonly echoGain: number;
  private lastActivityMs = 0;
  private idlePrompted = false;
  private turn = 0;
  private textSent = false;
  /** Counts down to the 'end' event after the farewell. */
  private endInFrames: number | undefined;
  /** Stream time of the latest barge-in, for tests and metrics. */
  lastBargeInMs: number | undefined;

  private constructor(
    private readonly stages: CascadeStages,
    private readonly config: CascadeConfig,
    private readonly options: ConversationOptions,
    private readonly sink: EngineSink,
    private readonly log: Logger,
    private readonly stt: RecognizerSession,
    private readonly lmSession: LmSession,
    private readonly toVad: StreamResampler,
  ) {
    this.detector = stages.vad.create();
    const persona = options.persona?.trim() || options.sampling.persona?.trim() || config.persona;
    this.memory = new ConversationMemory(persona, config.tokenBudget, (t) => stages.lm.countTokens(t));
    this.preRollFrames = Math.ceil(config.preRollMs / FRAME_MS);
    this.echoFrames = Math.max(1, Math.ceil(config.echoWindowMs / FRAME_MS));
    this.echoGain = dbToGain(-config.echoMarginDb);
    options.signal.addEventListener('abort', () => void this.close(), { once: true });
  }

  static async open(stages: CascadeStages, config: CascadeConfig, options: ConversationOptions, sink: EngineSink, log: Logger): Promise<CascadeConversation> {
    const stt = await stages.stt.create();
    let lmSession: LmSession;
    try {
      lmSession = await stages.lm.createSession();
    } catch (err) {
      stt.dispose();
      throw err;
    }
    const toVad = await StreamResampler.create(ENGINE_SAMPLE_RATE, 16_000);
    const conv = new CascadeConversation(stages, config, options, sink, log, stt, lmSession, toVad);
    sink.metadata({
      type: 'engine',
      name: 'cascade',
      stages: { vad: stages.vad.name, stt: stages.stt.name, lm: stages.lm.name, tts: stages.tts.name },
    });
    return conv;
  }

  pushFrame(frame: Float32Array): void {
    if (this.closed || this.ended) return;
    if (!(frame instanceof Float32Array) || frame.length !== ENGINE_FRAME_SAMPLES) {
      this.log.warn({ length: (frame as { length?: number })?.length }, 'ignoring a malformed input frame');
      return;
    }
    if (this.queue.length >= MAX_BACKLOG_FRAMES) {
      this.queue.shift();
      this.log.warn('cascade fell behind real time; dropped an input frame');
    }
    this.queue.push(frame);
    if (!this.processing) void this.drain();
  }

  /** Resolves once every frame pushed so far has been processed (tests drive the engine with it). */
  whenIdle(): Promise<void> {
    if (!this.processing && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** What the bot is doing, for tests and debugging. */
  get state(): 'listening' | 'thinking' | 'speaking' | 'ended' {
    if (this.ended || this.closed) return 'ended';
    if (!this.active) return 'listening';
    return this.active.reply.emitted > 0 ? 'speaking' : 'thinking';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.active?.reply.abort();
    this.speculative?.reply.abort();
    this.active = this.speculative = undefined;
    this.detector.dispose();
    this.stt.dispose();
    this.toVad.destroy();
    await this.lmSession.dispose().catch((err: unknown) => this.log.warn({ err }, 'language model session did not close cleanly'));
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async drain(): Promise<void> {
    this.processing = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frame = this.queue.shift()!;
        try {
          await this.processFrame(frame);
        } catch (err) {
          // One bad frame must not end the conversation.
          this.log.error({ err }, 'cascade frame processing failed');
          this.sink.error(`Speech processing failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    } finally {
      this.processing = false;
      this.wakeIdle();
    }
  }

  private echoReference(): number {
    let max = 0;
    for (const l of this.outLevels) if (l > max) max = l;
    return max;
  }

  private async processFrame(frame: Float32Array): Promise<void> {
    this.streamMs += FRAME_MS;
    const pcm16 = this.toVad.process(frame);
    const probs = await this.detector.process(pcm16);
    if (probs.length > 0) this.lastProb = Math.max(...probs);
    const threshold = this.inUtterance ? this.config.vadThreshold - 0.15 : this.config.vadThreshold;
    // The microphone only counts as the user when it is clearly louder than the echo the bot's own voice could cause.
    const userDominant = rms(frame) >= this.echoReference() * this.echoGain;
    const speech = this.lastProb >= threshold && userDominant;

    await this.trackUserSpeech(pcm16, speech);
    if (this.ended || this.closed) return;
    this.emitOutput();
    this.maybeIdlePrompt();
  }

  private async trackUserSpeech(pcm16: Float32Array, speech: boolean): Promise<void> {
    if (!this.inUtterance) {
      this.preRoll.push(pcm16);
      if (this.preRoll.length > this.preRollFrames + 1) this.preRoll.shift();
      if (!speech) return;
      // Onset: open an utterance and hand the recogniser the audio just before it.
      this.inUtterance = true;
      this.speechRunMs = FRAME_MS;
      this.silenceMs = 0;
      this.utteranceMs = FRAME_MS;
      this.lastPartial = '';
      this.utteranceOverBot = this.active !== undefined && this.active.reply.emitted > 0;
      await this.stt.begin();
      for (const chunk of this.preRoll) await this.stt.accept(chunk);
      this.preRoll.length = 0;
      this.idlePrompted = false;
      this.lastActivityMs = this.streamMs;
      this.checkBargeIn();
      return;
    }

    await this.stt.accept(pcm16);
    this.utteranceMs += FRAME_MS;
    if (speech) {
      if (this.silenceMs > 0 && this.speculative) this.cancelSpeculative('user kept talking');
      this.speechRunMs += FRAME_MS;
      this.silenceMs = 0;
      this.lastActivityMs = this.streamMs;
      this.checkBargeIn();
    } else {
      this.silenceMs += FRAME_MS;
      if (this.silenceMs >= 2 * FRAME_MS) this.speechRunMs = 0;
      if (this.silenceMs === FRAME_MS) this.lastSpeechEndStreamMs = this.streamMs - FRAME_MS;
    }
    this.publishPartial();

    if (this.silenceMs >= this.config.hangMs || this.utteranceMs >= this.config.maxUtteranceMs) {
      await this.endOfTurn();
      return;
    }
    if (
      this.config.speculativeAfterMs > 0 &&
      this.silenceMs >= this.config.speculativeAfterMs &&
      !this.speculative &&
      !this.active &&
      !this.utteranceOverBot
    ) {
      this.startSpeculative();
    }
  }

  private publishPartial(): void {
    // While the bot talks, partials may be its own echo: hold them until the user has really taken the turn.
    if (this.utteranceOverBot) return;
    const partial = this.stt.partial().trim();
    if (!partial || partial === this.lastPartial || this.streamMs - this.lastPartialSentMs < PARTIAL_EVERY_MS) return;
    this.lastPartial = partial;
    this.lastPartialSentMs = this.streamMs;
    this.sink.metadata({ type: 'transcript', role: 'user', text: partial, final: false });
  }

  private checkBargeIn(): void {
    const active = this.active;
    if (!active || this.speechRunMs < this.config.minBargeInMs) return;
    this.utteranceOverBot = false;
    const heardSomething = active.reply.emitted > 0;
    const played = active.reply.playedText(Math.round((this.config.playoutLeadMs / 1000) * ENGINE_SAMPLE_RATE));
    active.reply.abort();
    this.active = undefined;
    this.lastBargeInMs = this.streamMs;
    if (played) this.memory.add('assistant', played);
    if (heardSomething) {
      this.sink.metadata({ type: 'flush', reason: 'barge-in', streamMs: this.streamMs, played });
      this.sink.metadata({ type: 'transcript', role: 'assistant', text: played, final: true, interrupted: true });
    }
    this.sink.metadata({ type: 'turn', state: 'listening', reason: 'barge-in' });
    this.log.debug({ streamMs: this.streamMs, played }, 'barge-in');
  }

  private startSpeculative(): void {
    const text = this.stt.partial().trim();
    const normal = normaliseTranscript(text);
    if (!normal || this.isGoodbye(normal)) return;
    this.speculative = this.createAnswer(text, true);
  }

  private cancelSpeculative(reason: string): void {
    if (!this.speculative) return;
    this.log.debug({ reason }, 'speculative reply cancelled');
    this.speculative.reply.abort();
    this.speculative = undefined;
  }

  private createAnswer(userText: string, speculative: boolean): ActiveReply {
    const reply = new Reply(
      this.stages.tts,
      {
        lm: {
          session: this.lmSession,
          messages: this.memory.messages(userText),
          options: {
            temperature: this.options.sampling.text_temperature,
            topK: this.options.sampling.text_topk,
            seed: this.options.sampling.text_seed,
            maxTokens: this.config.maxReplyTokens,
          },
        },
      },
      (stage, err) => this.stageFailed(stage, err),
    );
    reply.start();
    return { reply, kind: 'answer', userText, turn: this.turn + 1, speculative };
  }

  private stageFailed(stage: 'lm' | 'tts', err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.log.error({ err, stage }, 'cascade stage failed');
    this.sink.error(`${stage === 'lm' ? 'Language model' : 'Speech synthesis'} failed: ${message}`);
  }

  private async endOfTurn(): Promise<void> {
    const vadEndOfTurnMs = this.silenceMs;
    const turnEndAt = performance.now();
    this.inUtterance = false;
    this.speechRunMs = 0;
    const overBot = this.utteranceOverBot;
    this.utteranceOverBot = false;
    this.lastActivityMs = this.streamMs;

    if (overBot && this.active) {
      // Never grew into a barge-in while the bot kept talking: echo or a back-channel "mm-hm".
      await this.stt.cancel();
      this.cancelSpeculative('utterance was over the bot');
      return;
    }
    const sttStart = performance.now();
    const final = (await this.stt.finish()).trim();
    const sttFinalMs = performance.now() - sttStart;
    if (this.closed) return;
    const normal = normaliseTranscript(final);
    if (!normal) {
      this.cancelSpeculative('empty transcript');
      return;
    }
    this.sink.metadata({ type: 'transcript', role: 'user', text: final, final: true });
    this.turn++;
    this.sink.metadata({ type: 'turn', state: 'thinking', turn: this.turn });

    if (this.isGoodbye(normal)) {
      this.cancelSpeculative('goodbye');
      this.memory.add('user', final);
      this.startScripted(this.config.farewell, 'farewell', { turnEndAt, sttFinalMs, vadEndOfTurnMs });
      return;
    }

    let answer: ActiveReply;
    if (this.speculative && normaliseTranscript(this.speculative.userText ?? '') === normal) {
      answer = this.speculative;
    } else {
      this.cancelSpeculative('final transcript differs from the partial');
      answer = this.createAnswer(final, false);
    }
    this.speculative = undefined;
    this.memory.add('user', final);
    // A reply still talking (the user spoke over its last words without a barge-in) gives way.
    this.active?.reply.abort();
    answer.turn = this.turn;
    answer.turnEndAt = turnEndAt;
    answer.sttFinalMs = sttFinalMs;
    answer.vadEndOfTurnMs = vadEndOfTurnMs;
    answer.reply.committed = true;
    this.active = answer;
  }

  private isGoodbye(normal: string): boolean {
    const wordCount = normal.split(' ').length;
    if (wordCount > 6) return false;
    return this.config.goodbyePhrases.some((p) => new RegExp(`(^| )${normaliseTranscript(p).replace(/ /g, ' ')}( |$)`).test(normal));
  }

  private startScripted(text: string, kind: ReplyKind, timing: Partial<ActiveReply> = {}): void {
    this.active?.reply.abort();
    const reply = new Reply(this.stages.tts, { script: text }, (stage, err) => this.stageFailed(stage, err));
    reply.committed = true;
    reply.start();
    this.active = { reply, kind, turn: this.turn, speculative: false, ...timing };
  }

  private emitOutput(): void {
    const active = this.active;
    let frame: Float32Array;
    const started: string[] = [];
    if (active) {
      const pulled = active.reply.pull(ENGINE_FRAME_SAMPLES);
      frame = pulled.pcm;
      started.push(...pulled.started);
      if (pulled.audioSamples > 0 && active.firstAudioAt === undefined) {
        active.firstAudioAt = performance.now();
        this.sink.metadata({ type: 'turn', state: 'speaking', turn: active.turn });
        this.emitTimings(active);
      }
    } else {
      frame = new Float32Array(ENGINE_FRAME_SAMPLES);
    }
    for (const text of started) {
      // A sentence's words go out with the frame its audio starts in. Clients concatenate pieces: separate sentences (and replies) with a space.
      this.sink.text(this.textSent ? ` ${text}` : text);
      this.textSent = true;
    }
    this.outLevels.push(rms(frame));
    if (this.outLevels.length > this.echoFrames) this.outLevels.shift();
    this.sink.audio(frame);
    if (active?.reply.finished) this.finishReply(active);
    if (this.endInFrames !== undefined && --this.endInFrames <= 0) {
      this.ended = true;
      this.sink.metadata({ type: 'end', reason: 'user-goodbye' });
    }
  }

  private emitTimings(a: ActiveReply): void {
    const t = a.reply.timings;
    const since = (from: number | undefined, to: number | undefined) => (from !== undefined && to !== undefined ? Math.round(to - from) : undefined);
    this.sink.metadata({
      type: 'timings',
      turn: a.turn,
      kind: a.kind,
      speculative: a.speculative,
      vadEndOfTurnMs: a.vadEndOfTurnMs,
      sttFinalMs: a.sttFinalMs !== undefined ? Math.round(a.sttFinalMs) : undefined,
      lmFirstTokenMs: since(t.lmStartAt, t.lmFirstTokenAt),
      firstSentenceMs: since(t.lmStartAt ?? t.ttsFirstRequestAt, t.firstSentenceAt),
      firstTtsChunkMs: since(t.ttsFirstRequestAt, t.firstTtsChunkAt),
      /** Turn decided → first reply audio out; negative parts were hidden by speculation. */
      responseMs: since(a.turnEndAt, a.firstAudioAt),
      lmStartedBeforeTurnEndMs: t.lmStartAt !== undefined && a.turnEndAt !== undefined ? Math.max(0, Math.round(a.turnEndAt - t.lmStartAt)) : undefined,
    });
  }

  private finishReply(a: ActiveReply): void {
    this.active = undefined;
    this.lastActivityMs = this.streamMs;
    const spoken = a.reply.spokenText();
    if (a.kind === 'answer' && a.reply.error && !spoken) {
      // The model failed before saying anything: say so rather than stay mute.
      this.startScripted('Sorry, I could not come up with an answer just now.', 'apology', { turn: a.turn });
      return;
    }
    if (spoken) {
      if (a.kind !== 'apology') this.memory.add('assistant', spoken);
      this.sink.metadata({ type: 'transcript', role: 'assistant', text: spoken, final: true });
    }
    this.sink.metadata({ type: 'turn', state: 'listening', turn: a.turn });
    if (a.kind === 'farewell') {
      // Let the client's playout buffer finish the farewell before the worker closes the socket.
      this.endInFrames = Math.max(1, Math.ceil(this.config.playoutLeadMs / FRAME_MS));
    }
  }

  private maybeIdlePrompt(): void {
    const after = this.config.idlePromptAfterMs;
    if (after <= 0 || this.idlePrompted || this.active || this.inUtterance || this.ended) return;
    if (this.streamMs - this.lastActivityMs < after) return;
    this.idlePrompted = true;
    this.startScripted(this.config.idlePrompt, 'idle-prompt', { turn: this.turn });
  }
}
