/**
 * The reply's side of the output clock: each tick of the worker's clock
 * takes the next 80 ms of the reply that is playing (silence when none is,
 * or when its synthesis is behind), sends each sentence's words with the
 * frame its audio starts in, and reports when a reply is first heard and
 * when it is done. Synchronous and quick by design: it only reads what the
 * reply has ready.
 */
import { ENGINE_FRAME_SAMPLES, type EngineSink } from '../engine.js';
import type { Reply } from './reply.js';
import { timingsEvent } from './telemetry.js';
import type { EchoGate } from './turn/echo-gate.js';

export type ReplyKind = 'answer' | 'idle-prompt' | 'farewell' | 'apology';

/** A reply with what the turn knows about it. */
export interface ActiveReply {
  reply: Reply;
  kind: ReplyKind;
  /** The user's words it answers (speculative replies are compared with the final transcript). */
  userText?: string;
  turn: number;
  speculative: boolean;
  /** performance.now() when the turn was decided. */
  turnEndAt?: number;
  /** performance.now() when its first audio went out. */
  firstAudioAt?: number;
  sttFinalMs?: number;
  /** The recogniser's final pass ran at a pause, before the turn ended. */
  sttFinalEarly?: boolean;
  /** Stream time from the end of speech to the turn decision. */
  vadEndOfTurnMs?: number;
  /** Speculative replies of this turn dropped because the final words differed from the ones they answered. */
  redone?: number;
}

export class ReplyOutput {
  private playing: ActiveReply | undefined;
  /** Some reply text has gone out: later pieces start with a space. */
  private textSent = false;
  /** Counts down to the 'end' event once the last words are out. */
  private endInFrames: number | undefined;
  private ended = false;

  constructor(
    private readonly sink: EngineSink,
    private readonly echo: EchoGate,
    private readonly onFinished: (a: ActiveReply) => void,
  ) {}

  /** What is playing now (or about to: a confirmed reply whose audio is not ready yet). */
  get current(): ActiveReply | undefined {
    return this.playing;
  }

  /** Plays `a` from the next tick on, instead of whatever was playing. */
  play(a: ActiveReply | undefined): void {
    this.playing = a;
  }

  /** After `frames` more ticks the conversation ends ({type:'end'}), once the farewell has reached the listener. */
  endAfter(frames: number): void {
    this.endInFrames = Math.max(1, frames);
  }

  get hasEnded(): boolean {
    return this.ended;
  }

  /** One tick: the next 80 ms of output. */
  pull(): Float32Array {
    if (this.ended) return new Float32Array(ENGINE_FRAME_SAMPLES);
    const a = this.playing;
    let frame: Float32Array;
    if (a) {
      const pulled = a.reply.pull(ENGINE_FRAME_SAMPLES);
      frame = pulled.pcm;
      if (pulled.audioSamples > 0 && a.firstAudioAt === undefined) {
        a.firstAudioAt = performance.now();
        this.sink.metadata({ type: 'turn', state: 'speaking', turn: a.turn });
        this.sink.metadata(timingsEvent(a));
      }
      for (const text of pulled.started) {
        // A sentence's words go out with the frame its audio starts in. Clients concatenate pieces: separate sentences (and replies) with a space.
        this.sink.text(this.textSent ? ` ${text}` : text);
        this.textSent = true;
      }
    } else {
      frame = new Float32Array(ENGINE_FRAME_SAMPLES);
    }
    this.echo.sent(frame);
    if (a && a.reply.finished && this.playing === a) {
      this.playing = undefined;
      this.onFinished(a);
    }
    if (this.endInFrames !== undefined && --this.endInFrames <= 0) {
      this.endInFrames = undefined;
      this.ended = true;
      this.sink.metadata({ type: 'end', reason: 'user-goodbye' });
    }
    return frame;
  }
}
