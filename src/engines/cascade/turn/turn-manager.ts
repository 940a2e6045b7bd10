/**
 * Whose turn it is. Listens to the user's side (UserTurnTracker) and
 * decides: when a pause ends the turn (EndOfTurnPolicy), when to start a
 * reply speculatively on the words so far, when the user talking over the
 * bot is a barge-in and when it is only echo, and what the bot says
 * (answers, the farewell, the idle prompt, an apology). Replies it commits
 * to are handed to the output clock (ReplyOutput), which tells it when each
 * is done.
 */
import type { Logger } from 'pino';
import { ENGINE_FRAME_MS as FRAME_MS, ENGINE_SAMPLE_RATE, type ConversationOptions, type EngineSink } from '../../engine.js';
import type { CascadeConfig } from '../config.js';
import { ConversationMemory } from '../lm/memory.js';
import type { LmSession } from '../lm/types.js';
import { Reply } from '../reply.js';
import type { ActiveReply, ReplyKind, ReplyOutput } from '../reply-output.js';
import type { CascadeStages, StageUsage } from '../stage-meter.js';
import { normaliseTranscript } from '../stt/types.js';
import { statsEvent } from '../telemetry.js';
import { EndOfTurnPolicy } from './end-of-turn.js';
import type { UserTurnEvents, UserTurnTracker, UtteranceState } from './user-turn.js';

/** Interval between partial transcripts sent to the client (stream time). */
const PARTIAL_EVERY_MS = 160;

export interface TurnManagerDeps {
  stages: CascadeStages;
  config: CascadeConfig;
  options: ConversationOptions;
  sink: EngineSink;
  log: Logger;
  lmSession: LmSession;
  output: ReplyOutput;
  /** Stream time: ms of input processed. */
  streamMs: () => number;
  /** What the stages have cost so far (for `stats` events). */
  usage: () => StageUsage;
}

export class TurnManager implements UserTurnEvents {
  readonly memory: ConversationMemory;
  private readonly policy: EndOfTurnPolicy;
  private readonly goodbyes: RegExp[];
  private user!: UserTurnTracker;
  private speculative: ActiveReply | undefined;
  /** The utterance began while the bot was talking: it must earn a barge-in or it is dropped as echo. */
  private overBot = false;
  private lastPartial = '';
  private lastPartialSentMs = 0;
  private lastActivityMs = 0;
  /** Silence at the latest frame of the utterance (for a final pass that lands between frames). */
  private silenceMs = 0;
  private idlePrompted = false;
  /** Speculative replies dropped in this turn because the final words differed. */
  private redone = 0;
  private turn = 0;
  private closed = false;

  constructor(private readonly d: TurnManagerDeps) {
    const { config, options, stages } = d;
    // The worker passes the client's sampling.persona as options.persona.
    const persona = options.persona?.trim() || config.persona;
    this.memory = new ConversationMemory(persona, config.tokenBudget, (t) => stages.lm.countTokens(t));
    this.policy = new EndOfTurnPolicy(config);
    this.goodbyes = config.goodbyePhrases.map((p) => new RegExp(`(^| )${normaliseTranscript(p)}( |$)`));
  }

  /** The user's side this manager listens to (it is built with this manager as its listener). */
  listenTo(user: UserTurnTracker): void {
    this.user = user;
  }

  /** What the bot is doing. */
  get state(): 'listening' | 'thinking' | 'speaking' {
    const a = this.d.output.current;
    if (!a) return 'listening';
    return a.reply.emitted > 0 ? 'speaking' : 'thinking';
  }

  private get now(): number {
    return this.d.streamMs();
  }

  private botSpeaking(): boolean {
    const a = this.d.output.current;
    return a !== undefined && a.reply.emitted > 0;
  }

  // --- the user's side -------------------------------------------------------

  onset(runMs: number): void {
    this.overBot = this.botSpeaking();
    this.redone = 0;
    this.lastPartial = '';
    this.idlePrompted = false;
    this.lastActivityMs = this.now;
    this.checkBargeIn(runMs);
  }

  speech(runMs: number, afterPause: boolean): void {
    if (afterPause) this.cancelSpeculative('user kept talking');
    this.lastActivityMs = this.now;
    this.checkBargeIn(runMs);
  }

  async afterFrame(u: UtteranceState): Promise<void> {
    this.publishPartial();
    this.silenceMs = u.silenceMs;
    // The turn's end is judged on final words when a final pass is on its way: until it is in, the plain hang time.
    const settled = this.user.settledWords();
    if (u.silenceMs >= this.policy.waitMs(settled, this.replyReadyFor(settled)) || u.utteranceMs >= this.d.config.maxUtteranceMs) {
      await this.endOfTurn(u.silenceMs);
      return;
    }
    if (u.silenceMs <= 0 || this.overBot || this.d.output.current) return;
    // Speculate on the final words once they are in, on the partial ones before.
    const words = settled ?? this.user.wordsSoFar();
    if (!this.speculative && u.silenceMs >= this.policy.speculateAtMs(words)) this.startSpeculative(words);
    if (this.user.recognising && u.silenceMs >= this.policy.closeRecogniserAtMs()) this.closeRecogniserEarly();
  }

  /** The speculative reply answers exactly these final words and its first audio is ready: it can play the moment the turn ends. */
  private replyReadyFor(settled: string | undefined): boolean {
    const guess = this.speculative;
    return settled !== undefined && guess !== undefined && guess.reply.firstAudioReady && normaliseTranscript(guess.userText ?? '') === normaliseTranscript(settled);
  }

  /** After each input frame: the idle prompt, once per silence. */
  afterInput(): void {
    const after = this.d.config.idlePromptAfterMs;
    if (after <= 0 || this.idlePrompted || this.d.output.current || this.user.inUtterance || this.d.output.hasEnded || this.closed) return;
    if (this.now - this.lastActivityMs < after) return;
    this.idlePrompted = true;
    this.startScripted(this.d.config.idlePrompt, 'idle-prompt', { turn: this.turn });
  }

  private publishPartial(): void {
    // While the bot talks, partials may be its own echo: hold them until the user has really taken the turn.
    if (this.overBot) return;
    const partial = this.user.wordsSoFar();
    if (!partial || partial === this.lastPartial || this.now - this.lastPartialSentMs < PARTIAL_EVERY_MS) return;
    this.lastPartial = partial;
    this.lastPartialSentMs = this.now;
    this.d.sink.metadata({ type: 'transcript', role: 'user', text: partial, final: false });
  }

  private checkBargeIn(runMs: number): void {
    const active = this.d.output.current;
    if (!active || runMs < this.d.config.minBargeInMs) return;
    this.overBot = false;
    const heardSomething = active.reply.emitted > 0;
    const played = active.reply.playedText(Math.round((this.d.config.playoutLeadMs / 1000) * ENGINE_SAMPLE_RATE));
    active.reply.abort();
    this.d.output.play(undefined);
    if (played) this.memory.add('assistant', played);
    if (heardSomething) {
      this.d.sink.metadata({ type: 'flush', reason: 'barge-in', streamMs: this.now, played });
      this.d.sink.metadata({ type: 'transcript', role: 'assistant', text: played, final: true, interrupted: true });
    }
    this.d.sink.metadata({ type: 'turn', state: 'listening', reason: 'barge-in' });
    this.d.log.debug({ streamMs: this.now, played }, 'barge-in');
  }

  // --- speculation -----------------------------------------------------------

  /**
   * The pause may be the end of the turn: start the reply now, on the words
   * so far, with its audio held back (the output clock never plays an
   * unconfirmed reply). If the user goes on, it is dropped unheard.
   */
  private startSpeculative(words: string): void {
    const normal = normaliseTranscript(words);
    if (normal && !this.isGoodbye(normal)) this.speculative = this.createAnswer(words, true);
  }

  /**
   * Closes the recogniser's utterance so that its final pass (60-150 ms with
   * PocketSphinx) runs while the pause goes on. Only if the final words
   * differ from those the speculative reply answers is it redone on them.
   */
  private closeRecogniserEarly(): void {
    this.user
      .closeEarly()
      .then((final) => {
        // The user went on, or the turn already ended (endOfTurn compares for itself): nothing to redo here.
        if (this.closed || this.user.recognising || !this.user.inUtterance) return;
        // The guess may have started on the partial words while the pass ran: it stands only if they were right.
        const guess = this.speculative;
        if (guess && normaliseTranscript(guess.userText ?? '') === normaliseTranscript(final.text)) return;
        if (guess) this.redone++;
        this.cancelSpeculative('the final pass changed the words');
        // At once rather than at the next frame, if the pause is already long enough for these words.
        if (!this.overBot && !this.d.output.current && this.silenceMs >= this.policy.speculateAtMs(final.text)) this.startSpeculative(final.text);
      })
      // Runs outside the frame loop's error handling: a failure here must not become an unhandled rejection (a dead worker).
      .catch((err: unknown) => this.d.log.error({ err }, 'speculative reply failed'));
  }

  private cancelSpeculative(reason: string): void {
    if (!this.speculative) return;
    this.d.log.debug({ reason }, 'speculative reply cancelled');
    this.speculative.reply.abort();
    this.speculative = undefined;
  }

  private createAnswer(userText: string, speculative: boolean): ActiveReply {
    const { sampling } = this.d.options;
    const reply = new Reply(
      this.d.stages.tts,
      {
        lm: {
          session: this.d.lmSession,
          messages: this.memory.messages(userText),
          options: { temperature: sampling.text_temperature, topK: sampling.text_topk, seed: sampling.text_seed, maxTokens: this.d.config.maxReplyTokens },
        },
      },
      (stage, err) => this.stageFailed(stage, err),
      { speculative },
    );
    reply.start();
    return { reply, kind: 'answer', userText, turn: this.turn + 1, speculative };
  }

  private stageFailed(stage: 'lm' | 'tts', err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.d.log.error({ err, stage }, 'cascade stage failed');
    this.d.sink.error(`${stage === 'lm' ? 'Language model' : 'Speech synthesis'} failed: ${message}`);
  }

  // --- the turn's end --------------------------------------------------------

  private async endOfTurn(silenceMs: number): Promise<void> {
    const vadEndOfTurnMs = silenceMs;
    const turnEndAt = performance.now();
    const overBot = this.overBot;
    this.overBot = false;
    this.lastActivityMs = this.now;

    if (overBot && this.d.output.current) {
      // Never grew into a barge-in while the bot kept talking: echo or a back-channel "mm-hm".
      await this.user.dropUtterance();
      this.cancelSpeculative('utterance was over the bot');
      return;
    }
    const final = await this.user.endUtterance();
    if (this.closed) return;
    const normal = normaliseTranscript(final.text);
    if (!normal) {
      this.cancelSpeculative('empty transcript');
      return;
    }
    this.d.sink.metadata({ type: 'transcript', role: 'user', text: final.text, final: true });
    this.turn++;
    this.d.sink.metadata({ type: 'turn', state: 'thinking', turn: this.turn });
    const timing = { turnEndAt, sttFinalMs: final.finalPassMs ?? 0, sttFinalEarly: !final.passAtEnd, vadEndOfTurnMs, redone: this.redone };

    if (this.isGoodbye(normal)) {
      this.cancelSpeculative('goodbye');
      this.memory.add('user', final.text);
      this.startScripted(this.d.config.farewell, 'farewell', timing);
      return;
    }

    let answer: ActiveReply;
    if (this.speculative && normaliseTranscript(this.speculative.userText ?? '') === normal) {
      answer = this.speculative;
      answer.reply.confirm();
    } else {
      if (this.speculative) this.redone++;
      this.cancelSpeculative('final transcript differs from the partial');
      answer = this.createAnswer(final.text, false);
    }
    this.speculative = undefined;
    this.memory.add('user', final.text);
    Object.assign(answer, { turn: this.turn }, timing);
    this.play(answer);
  }

  private isGoodbye(normal: string): boolean {
    if (normal.split(' ').length > 6) return false;
    return this.goodbyes.some((re) => re.test(normal));
  }

  private startScripted(text: string, kind: ReplyKind, timing: Partial<ActiveReply> = {}): void {
    const reply = new Reply(this.d.stages.tts, { script: text }, (stage, err) => this.stageFailed(stage, err));
    reply.start();
    this.play({ reply, kind, turn: this.turn, speculative: false, ...timing });
  }

  /** `a` is what the bot says next; a reply still talking (the user spoke over its last words without a barge-in) gives way. */
  private play(a: ActiveReply): void {
    const previous = this.d.output.current;
    if (previous && previous !== a) previous.reply.abort();
    this.d.output.play(a);
  }

  /** The output clock played `a` to its end (or it was cut by an error). */
  replyFinished(a: ActiveReply): void {
    this.lastActivityMs = this.now;
    const spoken = a.reply.spokenText();
    if (a.kind === 'answer' && a.reply.error && !spoken) {
      // The model failed before saying anything: say so rather than stay mute.
      this.startScripted('Sorry, I could not come up with an answer just now.', 'apology', { turn: a.turn });
      return;
    }
    if (spoken) {
      if (a.kind !== 'apology') this.memory.add('assistant', spoken);
      this.d.sink.metadata({ type: 'transcript', role: 'assistant', text: spoken, final: true });
    }
    this.d.sink.metadata({ type: 'turn', state: 'listening', turn: a.turn });
    this.d.sink.metadata(statsEvent(a.turn, this.now, this.d.usage()));
    if (a.kind === 'farewell') {
      // Let the client's playout buffer finish the farewell before the worker closes the socket.
      this.d.output.endAfter(Math.ceil(this.d.config.playoutLeadMs / FRAME_MS));
    }
  }

  close(): void {
    this.closed = true;
    this.d.output.current?.reply.abort();
    this.speculative?.reply.abort();
    this.d.output.play(undefined);
    this.speculative = undefined;
  }
}
