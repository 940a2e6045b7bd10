/**
 * One cascade conversation, put together from three parts:
 *
 *   input frames ─► UserTurnTracker ─► TurnManager ─► replies ─► ReplyOutput ◄─ the worker's output clock
 *                  (VAD, echo gate,    (turn ends,              (one 80 ms frame
 *                   recogniser)         speculation, barge-in)    per tick)
 *
 * Input frames are processed in order, one at a time, whatever they await
 * (the detector, the recogniser); the output clock pulls its frames
 * independently, so nothing the input side waits for can hold up the audio
 * that is due. The stages are wrapped once (StageMeter) so each stage's
 * cost is booked in one place.
 */
import type { Logger } from 'pino';
import { ENGINE_FRAME_MS as FRAME_MS, ENGINE_FRAME_SAMPLES, ENGINE_SAMPLE_RATE, type Conversation, type ConversationOptions, type EngineSink } from '../engine.js';
import { StreamResampler } from './audio/resample.js';
import type { CascadeConfig } from './config.js';
import type { ConversationMemory } from './lm/memory.js';
import type { LmSession } from './lm/types.js';
import { ReplyOutput } from './reply-output.js';
import { StageMeter, type CascadeStages, type StageUsage } from './stage-meter.js';
import type { RecognizerSession } from './stt/types.js';
import { EchoGate } from './turn/echo-gate.js';
import { TurnManager } from './turn/turn-manager.js';
import { UserTurnTracker } from './turn/user-turn.js';
import type { VoiceActivityDetector } from './vad/types.js';

export type { CascadeStages } from './stage-meter.js';

/** Frames waiting to be processed before the oldest are dropped (processing fell behind). */
const MAX_BACKLOG_FRAMES = 64;

export class CascadeConversation implements Conversation {
  private readonly queue: Float32Array[] = [];
  private processing = false;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private lastError: string | undefined;
  /** Stream time: ms of input processed. */
  streamMs = 0;
  private readonly output: ReplyOutput;
  private readonly turns: TurnManager;
  private readonly user: UserTurnTracker;

  private constructor(
    stages: CascadeStages,
    config: CascadeConfig,
    options: ConversationOptions,
    private readonly sink: EngineSink,
    private readonly log: Logger,
    private readonly meter: StageMeter,
    private readonly detector: VoiceActivityDetector,
    private readonly stt: RecognizerSession,
    private readonly lmSession: LmSession,
    private readonly toVad: StreamResampler,
  ) {
    const echo = new EchoGate(Math.max(1, Math.ceil(config.echoWindowMs / FRAME_MS)), config.echoMarginDb);
    this.output = new ReplyOutput(sink, echo, (a) => this.turns.replyFinished(a));
    this.turns = new TurnManager({ stages, config, options, sink, log, lmSession, output: this.output, streamMs: () => this.streamMs, usage: () => this.meter.usage });
    this.user = new UserTurnTracker(config, toVad, detector, stt, echo, this.turns, log);
    this.turns.listenTo(this.user);
    options.signal.addEventListener('abort', () => void this.close(), { once: true });
  }

  static async open(given: CascadeStages, config: CascadeConfig, options: ConversationOptions, sink: EngineSink, log: Logger): Promise<CascadeConversation> {
    const meter = new StageMeter();
    const stages = meter.wrap(given);
    const stt = await stages.stt.create();
    let lmSession: LmSession;
    try {
      lmSession = await stages.lm.createSession();
    } catch (err) {
      stt.dispose();
      throw err;
    }
    const toVad = await StreamResampler.create(ENGINE_SAMPLE_RATE, 16_000);
    const conv = new CascadeConversation(stages, config, options, sink, log, meter, stages.vad.create(), stt, lmSession, toVad);
    sink.metadata({
      type: 'engine',
      name: 'cascade',
      stages: { vad: given.vad.name, stt: given.stt.name, lm: given.lm.name, tts: given.tts.name },
    });
    return conv;
  }

  get memory(): ConversationMemory {
    return this.turns.memory;
  }

  /** What each stage cost so far. */
  get usage(): StageUsage {
    return this.meter.usage;
  }

  /** What the bot is doing, for tests and debugging. */
  get state(): 'listening' | 'thinking' | 'speaking' | 'ended' {
    if (this.closed || this.output.hasEnded) return 'ended';
    return this.turns.state;
  }

  pushFrame(frame: Float32Array): void {
    if (this.closed || this.output.hasEnded) return;
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

  pullFrame(): Float32Array {
    if (this.closed) return new Float32Array(ENGINE_FRAME_SAMPLES);
    return this.output.pull();
  }

  /** Resolves once every frame pushed so far has been processed (tests drive the engine with it). */
  whenIdle(): Promise<void> {
    if (!this.processing && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.turns.close();
    this.detector.dispose();
    this.stt.dispose();
    this.toVad.release();
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
      while (this.queue.length > 0 && !this.closed && !this.output.hasEnded) {
        const frame = this.queue.shift()!;
        try {
          this.streamMs += FRAME_MS;
          await this.user.process(frame);
          if (!this.closed) this.turns.afterInput();
        } catch (err) {
          // One bad frame must not end the conversation; a failure that repeats on every frame is told once.
          const message = `Speech processing failed: ${err instanceof Error ? err.message : String(err)}`;
          if (message !== this.lastError) {
            this.lastError = message;
            this.log.error({ err }, 'cascade frame processing failed');
            this.sink.error(message);
          }
        }
      }
    } finally {
      this.processing = false;
      this.wakeIdle();
    }
  }
}
