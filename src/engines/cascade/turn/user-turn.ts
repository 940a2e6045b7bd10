/**
 * The user's side of the conversation, frame by frame: is the user talking
 * (voice activity, with the bot's own echo gated out), and what are they
 * saying (the recogniser's utterances). It decides nothing about turns: it
 * reports onsets, speech, pauses and words to its listener (the turn
 * manager), which ends the utterance when it judges the turn over.
 *
 * The recogniser's utterance can be closed early, when a pause may be the
 * end of the turn (`closeEarly`): its final pass then runs in the background
 * while frames keep coming, so the words are final before the turn ends and
 * the turn's end waits for no recogniser. Should the user go on, a new
 * recogniser utterance takes the rest, from the audio just before; the
 * turn's text is the parts joined.
 */
import type { Logger } from 'pino';
import { ENGINE_FRAME_MS as FRAME_MS, ENGINE_FRAME_SAMPLES, ENGINE_SAMPLE_RATE } from '../../engine.js';
import type { StreamResampler } from '../audio/resample.js';
import type { RecognizerSession } from '../stt/types.js';
import type { VoiceActivityDetector } from '../vad/types.js';
import type { EchoGate } from './echo-gate.js';


export interface UserTurnSettings {
  /** Speech probability that starts an utterance; it continues above this less 0.15. */
  vadThreshold: number;
  /** Audio handed to the recogniser from before the onset. */
  preRollMs: number;
}

/** The state of the utterance after a frame inside it. */
export interface UtteranceState {
  /**
   * Silence since the speech ended, counted from the end of the last speech Silero heard as such: in a frame of speech,
   * its quiet last windows (0 when it ends in speech), so that the speech's end is seen in the frame it falls in.
   */
  silenceMs: number;
  /** Length of the utterance so far. */
  utteranceMs: number;
}

export interface UserTurnEvents {
  /** The user started talking: a new utterance. */
  onset(runMs: number): void;
  /** Another frame of speech in the utterance; `afterPause`: the first after quiet frames. */
  speech(runMs: number, afterPause: boolean): void;
  /** After every frame of an utterance (speech or quiet). The listener may end the utterance here. */
  afterFrame(state: UtteranceState): Promise<void> | void;
}

export interface FinalText {
  text: string;
  /** How long the last final pass took (ms, wall time); undefined when there was none. */
  finalPassMs: number | undefined;
  /** The last final pass ran at the turn's end rather than early, at a pause. */
  passAtEnd: boolean;
}

type Utterance = { state: 'quiet' } | { state: 'speaking'; recogniser: 'open' | 'closed' };

export class UserTurnTracker {
  private utterance: Utterance = { state: 'quiet' };
  private lastProb = 0;
  private speechRunMs = 0;
  private silenceMs = 0;
  /** The end of the last speech frame that Silero already heard as quiet (its last windows): silence is counted from there. */
  private quietTailMs = 0;
  private utteranceMs = 0;
  /**
   * The last preRoll + 1 frames the recogniser has not heard: before an onset
   * (the moments before the first word) or since an early close (the moments
   * before the user went on). Emptied whenever an utterance opens, closes or ends.
   */
  private readonly unheard: Float32Array[] = [];
  private readonly preRollFrames: number;
  /** Final text of the recogniser utterances already closed in this turn. */
  private closedText = '';
  /** The last partial hypothesis of each closed utterance whose final pass is still running, oldest first: the words meanwhile. */
  private unsettled: string[] = [];
  /** The final passes still running; closedText is complete once it settles. */
  private pendingFinal: Promise<void> | undefined;
  private lastPassMs: number | undefined;

  constructor(
    private readonly settings: UserTurnSettings,
    private readonly toVad: StreamResampler,
    private readonly detector: VoiceActivityDetector,
    private readonly recogniser: RecognizerSession,
    private readonly echo: EchoGate,
    private readonly events: UserTurnEvents,
    private readonly log: Logger,
  ) {
    this.preRollFrames = Math.ceil(settings.preRollMs / FRAME_MS);
  }

  get inUtterance(): boolean {
    return this.utterance.state === 'speaking';
  }

  /** The recogniser is taking the utterance's audio (not closed early). */
  get recognising(): boolean {
    return this.utterance.state === 'speaking' && this.utterance.recogniser === 'open';
  }

  /** The turn's words as final as they are now: undefined while a final pass runs, else the closed parts and the open utterance's partial hypothesis. */
  settledWords(): string | undefined {
    if (this.unsettled.length > 0) return undefined;
    return this.recognising ? joinWords(this.closedText, this.recogniser.partial().trim()) : this.closedText;
  }

  /** The turn's words so far: closed parts (their partial words until their final pass is in), then the open utterance's partial hypothesis. */
  wordsSoFar(): string {
    const closed = [this.closedText, ...this.unsettled].reduce(joinWords, '');
    return this.recognising ? joinWords(closed, this.recogniser.partial().trim()) : closed;
  }

  /** One 80 ms frame of the microphone, in stream order. */
  async process(frame: Float32Array): Promise<void> {
    const pcm16 = this.toVad.process(frame);
    const probs = await this.detector.process(pcm16);
    if (probs.length > 0) this.lastProb = Math.max(...probs);
    const threshold = this.inUtterance ? this.settings.vadThreshold - 0.15 : this.settings.vadThreshold;
    const speech = this.lastProb >= threshold && this.echo.userDominant(frame);
    let quietTailMs = 0;
    if (speech) for (let i = probs.length - 1; i >= 0 && probs[i] < threshold; i--) quietTailMs += FRAME_MS / probs.length;
    await this.track(pcm16, speech, Math.round(quietTailMs));
  }

  private async track(pcm16: Float32Array, speech: boolean, quietTailMs: number): Promise<void> {
    const u = this.utterance;
    if (u.state === 'quiet') {
      this.keepUnheard(pcm16);
      if (!speech) return;
      // Onset: a new utterance, and the recogniser gets the audio just before it.
      this.utterance = { state: 'speaking', recogniser: 'closed' };
      this.speechRunMs = FRAME_MS;
      this.silenceMs = 0;
      this.quietTailMs = quietTailMs;
      this.utteranceMs = FRAME_MS;
      this.closedText = '';
      this.unsettled = [];
      this.pendingFinal = undefined;
      this.lastPassMs = undefined;
      this.events.onset(this.speechRunMs);
      await this.openRecogniser();
      return;
    }

    if (u.recogniser === 'open') await this.recogniser.accept(pcm16);
    else this.keepUnheard(pcm16);
    this.utteranceMs += FRAME_MS;
    if (speech) {
      // After quiet frames, or after a frame whose last windows were quiet (the recogniser may have closed there).
      const afterPause = this.silenceMs + this.quietTailMs > 0;
      this.speechRunMs += FRAME_MS;
      this.silenceMs = 0;
      this.quietTailMs = quietTailMs;
      this.events.speech(this.speechRunMs, afterPause);
      // Going on after an early close: a new recogniser utterance, from just before this frame.
      if (!this.recognising && this.inUtterance) await this.openRecogniser();
    } else {
      this.silenceMs += FRAME_MS;
      if (this.silenceMs >= 2 * FRAME_MS) this.speechRunMs = 0;
    }
    await this.events.afterFrame({ silenceMs: this.silenceMs + this.quietTailMs, utteranceMs: this.utteranceMs });
  }

  private keepUnheard(pcm16: Float32Array): void {
    this.unheard.push(pcm16);
    if (this.unheard.length > this.preRollFrames + 1) this.unheard.shift();
  }

  private async openRecogniser(): Promise<void> {
    const lead = this.unheard.splice(0);
    await this.recogniser.begin();
    for (const chunk of lead) await this.recogniser.accept(chunk);
    if (this.utterance.state === 'speaking') this.utterance = { state: 'speaking', recogniser: 'open' };
  }

  /**
   * Closes the recogniser's utterance now (the pause may end the turn). Its
   * final pass runs in the background; the promise settles with the turn's
   * words once every pass of the turn has.
   */
  closeEarly(): Promise<FinalText> {
    this.closeRecogniser();
    return this.settled(false);
  }

  private closeRecogniser(): void {
    if (!this.recognising) return;
    this.utterance = { state: 'speaking', recogniser: 'closed' };
    this.unheard.length = 0;
    this.unsettled.push(this.recogniser.partial().trim());
    const before = this.pendingFinal ?? Promise.resolve();
    const start = performance.now();
    const pass = this.recogniser.finish().then(
      (text) => text.trim(),
      (err: unknown) => {
        // A failed pass loses its words, not the turn.
        this.log.error({ err }, 'speech recogniser final pass failed');
        return '';
      },
    );
    this.pendingFinal = Promise.all([before, pass]).then(([, text]) => {
      this.lastPassMs = performance.now() - start;
      this.unsettled.shift();
      this.closedText = joinWords(this.closedText, text);
    });
  }

  private async settled(passAtEnd: boolean): Promise<FinalText> {
    await this.pendingFinal;
    return { text: this.closedText, finalPassMs: this.lastPassMs, passAtEnd };
  }

  /** The turn is over: what is still open is recognised to its end, and the turn's words come back. */
  async endUtterance(): Promise<FinalText> {
    const passAtEnd = this.recognising;
    this.closeRecogniser();
    this.toQuiet();
    const final = await this.settled(passAtEnd);
    this.closedText = '';
    this.unsettled = [];
    this.pendingFinal = undefined;
    return final;
  }

  /** The utterance was not the user's turn (echo, a back-channel "mm-hm"): forget it. */
  async dropUtterance(): Promise<void> {
    const open = this.recognising;
    this.toQuiet();
    if (open) await this.recogniser.cancel();
    await this.pendingFinal;
    this.closedText = '';
    this.unsettled = [];
    this.pendingFinal = undefined;
  }

  private toQuiet(): void {
    this.utterance = { state: 'quiet' };
    // What an early close left unheard is no pre-roll for the next onset.
    this.unheard.length = 0;
    this.speechRunMs = 0;
  }
}

function joinWords(a: string, b: string): string {
  return a && b ? `${a} ${b}` : a || b;
}
