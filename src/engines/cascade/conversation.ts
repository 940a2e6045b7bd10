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
import { rms } from '../../audio/pcm.js';
import { dbToGain } from './audio/level.js';
import { StreamResampler } from './audio/resample.js';
import type { CascadeConfig } from './config.js';
import { ConversationMemory } from './lm/memory.js';
import type { LmSession, LmStage } from './lm/types.js';
import { emptyUsage, Reply, type StageUsage } from './reply.js';
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
  /** The recogniser's final pass ran at the pause, before the turn ended (see CascadeConversation.sttOpen). */
  sttFinalEarly?: boolean;
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
  /**
   * The end of the last speech frame that Silero already heard as quiet (its
   * last 32 ms windows): silence is counted from there, so the turn ends
   * hangMs after the speech did, rather than up to a frame later.
   */
  private quietTailMs = 0;
  private utteranceMs = 0;
  private lastPartial = '';
  private lastPartialSentMs = 0;
  /** The utterance began while the bot was talking: it must earn a barge-in or it is dropped as echo. */
  private utteranceOverBot = false;
  /**
   * The last preRollFrames + 1 frames the recogniser has not heard: before an
   * onset (the moments before the first word) or since an early close (the
   * moments before the user went on). Emptied whenever an utterance opens, closes or the turn ends.
   */
  private readonly unheard: Float32Array[] = [];
  private readonly preRollFrames: number;
  /**
   * The recogniser's utterance is open. It is closed early, when a pause
   * reaches speculativeAfterMs: its final pass then runs in the background
   * while the turn may still go on, so that a final pass that changes the
   * words is known before the turn ends (the speculative reply is redone on
   * them) and the turn's end waits for no recogniser. Should the user go on,
   * a new recogniser utterance takes the rest; the turn's text is the parts
   * joined.
   */
  private sttOpen = false;
  /** Final text of the recogniser utterances already closed in this turn. */
  private closedText = '';
  /** The final passes still running; closedText is complete once it settles. */
  private pendingFinal: Promise<void> | undefined;
  /** How long the early final pass took (the turn's sttFinalMs when nothing followed). */
  private earlyFinalMs: number | undefined;

  // Bot state.
  private active: ActiveReply | undefined;
  private speculative: ActiveReply | undefined;
  /** RMS of the last output frames, newest last: the echo reference. */
  private readonly outLevels: number[] = [];
  private readonly echoFrames: number;
  private readonly echoGain: number;
  /** goodbyePhrases as whole-word patterns over normalised transcripts. */
  private readonly goodbyes: RegExp[];
  private lastActivityMs = 0;
  private idlePrompted = false;
  private turn = 0;
  private textSent = false;
  /** Counts down to the 'end' event after the farewell. */
  private endInFrames: number | undefined;
  /** What each stage cost so far (see `stats` events). */
  readonly usage: StageUsage = emptyUsage();

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
    // The worker passes the client's sampling.persona as options.persona.
    const persona = options.persona?.trim() || config.persona;
    this.memory = new ConversationMemory(persona, config.tokenBudget, (t) => stages.lm.countTokens(t));
    this.preRollFrames = Math.ceil(config.preRollMs / FRAME_MS);
    this.echoFrames = Math.max(1, Math.ceil(config.echoWindowMs / FRAME_MS));
    this.echoGain = dbToGain(-config.echoMarginDb);
    this.goodbyes = config.goodbyePhrases.map((p) => new RegExp(`(^| )${normaliseTranscript(p)}( |$)`));
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
    const vadStart = performance.now();
    const pcm16 = this.toVad.process(frame);
    const probs = await this.detector.process(pcm16);
    this.usage.vad.busyMs += performance.now() - vadStart;
    this.usage.vad.audioMs += FRAME_MS;
    if (probs.length > 0) this.lastProb = Math.max(...probs);
    const threshold = this.inUtterance ? this.config.vadThreshold - 0.15 : this.config.vadThreshold;
    // The microphone only counts as the user when it is clearly louder than the echo the bot's own voice could cause.
    const userDominant = rms(frame) >= this.echoReference() * this.echoGain;
    const speech = this.lastProb >= threshold && userDominant;
    let quietTailMs = 0;
    if (speech) for (let i = probs.length - 1; i >= 0 && probs[i] < threshold; i--) quietTailMs += FRAME_MS / probs.length;

    await this.trackUserSpeech(pcm16, speech, Math.round(quietTailMs));
    if (this.ended || this.closed) return;
    this.emitOutput();
    this.maybeIdlePrompt();
  }

  private async trackUserSpeech(pcm16: Float32Array, speech: boolean, quietTailMs: number): Promise<void> {
    if (!this.inUtterance) {
      this.keepUnheard(pcm16);
      if (!speech) return;
      // Onset: open an utterance and hand the recogniser the audio just before it.
      this.inUtterance = true;
      this.speechRunMs = FRAME_MS;
      this.silenceMs = 0;
      this.quietTailMs = quietTailMs;
      this.utteranceMs = FRAME_MS;
      this.lastPartial = '';
      this.utteranceOverBot = this.active !== undefined && this.active.reply.emitted > 0;
      this.closedText = '';
      this.pendingFinal = undefined;
      this.earlyFinalMs = undefined;
      await this.openStt(this.unheard);
      this.unheard.length = 0;
      this.idlePrompted = false;
      this.lastActivityMs = this.streamMs;
      this.checkBargeIn();
      return;
    }

    if (this.sttOpen) await this.timedStt(() => this.stt.accept(pcm16), FRAME_MS);
    else this.keepUnheard(pcm16);
    this.utteranceMs += FRAME_MS;
    if (speech) {
      if (this.silenceMs > 0 && this.speculative) this.cancelSpeculative('user kept talking');
      if (!this.sttOpen) {
        // Going on after the early close: a new recogniser utterance, from just before this frame.
        await this.openStt(this.unheard);
        this.unheard.length = 0;
      }
      this.speechRunMs += FRAME_MS;
      this.silenceMs = 0;
      this.quietTailMs = quietTailMs;
      this.lastActivityMs = this.streamMs;
      this.checkBargeIn();
    } else {
      this.silenceMs += FRAME_MS;
      if (this.silenceMs >= 2 * FRAME_MS) this.speechRunMs = 0;
    }
    this.publishPartial();

    const silence = this.silenceMs > 0 ? this.silenceMs + this.quietTailMs : 0;
    if (silence >= this.config.hangMs || this.utteranceMs >= this.config.maxUtteranceMs) {
      await this.endOfTurn(silence);
      return;
    }
    if (
      this.config.speculativeAfterMs > 0 &&
      silence >= this.config.speculativeAfterMs &&
      this.sttOpen &&
      !this.speculative &&
      !this.active &&
      !this.utteranceOverBot
    ) {
      this.startSpeculative();
    }
  }

  private keepUnheard(pcm16: Float32Array): void {
    this.unheard.push(pcm16);
    if (this.unheard.length > this.preRollFrames + 1) this.unheard.shift();
  }

  private async openStt(lead: Float32Array[]): Promise<void> {
    await this.timedStt(async () => {
      await this.stt.begin();
      for (const chunk of lead) await this.stt.accept(chunk);
    }, lead.length * FRAME_MS);
    this.sttOpen = true;
  }

  /**
   * Closes the recogniser's utterance. Its final pass runs in the background
   * (frames keep flowing meanwhile) and appends to closedText; the promise
   * settles once every pass of the turn has.
   */
  private closeStt(): Promise<void> {
    if (!this.sttOpen) return this.pendingFinal ?? Promise.resolve();
    this.sttOpen = false;
    this.unheard.length = 0;
    const before = this.pendingFinal ?? Promise.resolve();
    const pass = this.timedStt(() => this.stt.finish(), 0).then(
      (text) => text.trim(),
      (err: unknown) => {
        this.log.error({ err }, 'speech recogniser final pass failed');
        return '';
      },
    );
    this.pendingFinal = Promise.all([before, pass]).then(([, text]) => {
      this.closedText = joinWords(this.closedText, text);
    });
    return this.pendingFinal;
  }

  /** The turn's words so far: closed parts, then the open utterance's partial hypothesis. */
  private userTextSoFar(): string {
    return this.sttOpen ? joinWords(this.closedText, this.stt.partial().trim()) : this.closedText;
  }

  private async timedStt<T>(task: () => Promise<T>, audioMs: number): Promise<T> {
    const start = performance.now();
    try {
      return await task();
    } finally {
      this.usage.stt.busyMs += performance.now() - start;
      this.usage.stt.audioMs += audioMs;
    }
  }

  private publishPartial(): void {
    // While the bot talks, partials may be its own echo: hold them until the user has really taken the turn.
    if (this.utteranceOverBot) return;
    const partial = this.userTextSoFar();
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
    if (played) this.memory.add('assistant', played);
    if (heardSomething) {
      this.sink.metadata({ type: 'flush', reason: 'barge-in', streamMs: this.streamMs, played });
      this.sink.metadata({ type: 'transcript', role: 'assistant', text: played, final: true, interrupted: true });
    }
    this.sink.metadata({ type: 'turn', state: 'listening', reason: 'barge-in' });
    this.log.debug({ streamMs: this.streamMs, played }, 'barge-in');
  }

  /**
   * The pause may be the end of the turn: start the reply now, on the partial
   * hypothesis, and run the recogniser's final pass meanwhile (it takes
   * 60-150 ms with PocketSphinx). Only if the final pass changed the words is
   * the request replaced by one on the final text.
   */
  private startSpeculative(): void {
    const partial = this.userTextSoFar();
    const partialNormal = normaliseTranscript(partial);
    const guess = partialNormal && !this.isGoodbye(partialNormal) ? this.createAnswer(partial, true) : undefined;
    this.speculative = guess;
    const start = performance.now();
    this.closeStt()
      .then(() => {
        this.earlyFinalMs = performance.now() - start;
        // The user went on, or the turn already ended (endOfTurn compares for itself): nothing to redo here.
        if (this.closed || this.sttOpen || !this.inUtterance || this.speculative !== guess) return;
        const normal = normaliseTranscript(this.closedText);
        if (guess && normaliseTranscript(guess.userText ?? '') === normal) return;
        this.cancelSpeculative('the final pass changed the words');
        if (normal && !this.isGoodbye(normal)) this.speculative = this.createAnswer(this.closedText, true);
      })
      // Runs outside the frame loop's error handling: a failure here must not become an unhandled rejection (a dead worker).
      .catch((err: unknown) => this.log.error({ err }, 'speculative reply failed'));
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
      this.usage,
    );
    reply.start();
    return { reply, kind: 'answer', userText, turn: this.turn + 1, speculative };
  }

  private stageFailed(stage: 'lm' | 'tts', err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.log.error({ err, stage }, 'cascade stage failed');
    this.sink.error(`${stage === 'lm' ? 'Language model' : 'Speech synthesis'} failed: ${message}`);
  }

  private async endOfTurn(silenceMs: number): Promise<void> {
    const vadEndOfTurnMs = silenceMs;
    const turnEndAt = performance.now();
    this.inUtterance = false;
    // What an early close left unheard is no pre-roll for the next onset.
    this.unheard.length = 0;
    this.speechRunMs = 0;
    const overBot = this.utteranceOverBot;
    this.utteranceOverBot = false;
    this.lastActivityMs = this.streamMs;

    if (overBot && this.active) {
      // Never grew into a barge-in while the bot kept talking: echo or a back-channel "mm-hm".
      if (this.sttOpen) await this.stt.cancel();
      await this.pendingFinal;
      this.sttOpen = false;
      this.closedText = '';
      this.pendingFinal = undefined;
      this.cancelSpeculative('utterance was over the bot');
      return;
    }
    const sttStart = performance.now();
    // Nothing is left to recognise when the utterance was closed early and the user said no more.
    const finalPassNow = this.sttOpen;
    await this.closeStt();
    const final = this.closedText;
    const sttFinalMs = finalPassNow ? performance.now() - sttStart : (this.earlyFinalMs ?? 0);
    this.closedText = '';
    this.pendingFinal = undefined;
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
    answer.sttFinalEarly = !finalPassNow;
    answer.vadEndOfTurnMs = vadEndOfTurnMs;
    this.active = answer;
  }

  private isGoodbye(normal: string): boolean {
    const wordCount = normal.split(' ').length;
    if (wordCount > 6) return false;
    return this.goodbyes.some((re) => re.test(normal));
  }

  private startScripted(text: string, kind: ReplyKind, timing: Partial<ActiveReply> = {}): void {
    this.active?.reply.abort();
    const reply = new Reply(this.stages.tts, { script: text }, (stage, err) => this.stageFailed(stage, err), this.usage);
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
      sttFinalEarly: a.sttFinalEarly,
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
    this.emitStats(a.turn);
    if (a.kind === 'farewell') {
      // Let the client's playout buffer finish the farewell before the worker closes the socket.
      this.endInFrames = Math.max(1, Math.ceil(this.config.playoutLeadMs / FRAME_MS));
    }
  }

  /** What each stage has cost over the conversation so far, with real-time factors (busy time / audio time). */
  private emitStats(turn: number): void {
    const { vad, stt, lm, tts } = this.usage;
    const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;
    const rtf = (busy: number, audio: number) => (audio > 0 ? round(busy / audio, 3) : undefined);
    this.sink.metadata({
      type: 'stats',
      turn,
      streamMs: this.streamMs,
      vad: { busyMs: round(vad.busyMs), audioMs: vad.audioMs, rtf: rtf(vad.busyMs, vad.audioMs) },
      stt: { busyMs: round(stt.busyMs), audioMs: stt.audioMs, rtf: rtf(stt.busyMs, stt.audioMs) },
      lm: { busyMs: round(lm.busyMs), pieces: lm.pieces, requests: lm.requests, msPerPiece: lm.pieces > 0 ? round(lm.busyMs / lm.pieces, 2) : undefined },
      tts: { busyMs: round(tts.busyMs), audioMs: round(tts.audioMs), sentences: tts.sentences, rtf: rtf(tts.busyMs, tts.audioMs) },
    });
  }

  private maybeIdlePrompt(): void {
    const after = this.config.idlePromptAfterMs;
    if (after <= 0 || this.idlePrompted || this.active || this.inUtterance || this.ended) return;
    if (this.streamMs - this.lastActivityMs < after) return;
    this.idlePrompted = true;
    this.startScripted(this.config.idlePrompt, 'idle-prompt', { turn: this.turn });
  }
}

function joinWords(a: string, b: string): string {
  return a && b ? `${a} ${b}` : a || b;
}
