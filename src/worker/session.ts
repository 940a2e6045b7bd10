/**
 * One conversation on a worker: Moshi frames in and out over one websocket,
 * Opus decoded to 80 ms PCM frames for the engine, engine output encoded back
 * to Ogg Opus. Every way a session can end funnels through `end()`.
 *
 * Output runs on its own clock (OutputClock), started by the first input
 * frame: one 80 ms frame pulled from the engine per 80 ms of wall time,
 * whatever the input side is doing. Input frames only feed the engine; no
 * wait of the engine's (recognition, a model, synthesis) sits between an
 * input frame and the output frame that is due.
 */
import type { WebSocket } from 'ws';
import { OggOpusDecoder, OggOpusEncoder } from '../audio/opus-stream.js';
import { FrameChunker } from '../audio/pcm.js';
import { ENGINE_FRAME_MS as FRAME_MS, ENGINE_FRAME_SAMPLES, ENGINE_SAMPLE_RATE, type Conversation, type Engine, type EngineEvent, type EngineSink } from '../engines/engine.js';
import { CloseCode, closeReason } from '../protocol/close-codes.js';
import { decodeFrame, encodeAudio, encodeError, encodeHandshake, encodeMetadata, encodeText } from '../protocol/frames.js';
import type { SamplingParams } from '../protocol/sampling.js';
import type { Logger } from '../util/logger.js';
import { OutputClock } from './output-clock.js';

/**
 * The first output frame leaves this long after the first input frame is
 * complete, and every later one on that grid. Half a frame: input frames
 * that arrive up to this late (network jitter) are still in time for an
 * engine that answers input with input (loopback), and an engine that
 * answers from its own queue (cascade) has time to take in the frame that
 * just came, decide on it and have the first audio of a reply ready for the
 * tick (measured: a 16 ms phase missed it in half the turns, by one frame).
 */
export const OUTPUT_PHASE_MS = FRAME_MS / 2;
/** A clock further behind than this (a stalled event loop) starts afresh rather than burst out the backlog. */
const MAX_CATCH_UP_MS = 1000;

export interface WorkerSessionOptions {
  engine: Engine;
  sampling: SamplingParams;
  log: Logger;
  /** A client that stops reading is dropped once this much is queued for it. */
  maxBufferedBytes: number;
  /** The conversation ends if no audio arrives for this long. */
  idleTimeoutMs: number;
  /** 20 ms Opus packets per Ogg page sent: 1 for the lowest latency, 4 for one page per 80 ms frame. */
  packetsPerPage: number;
  /**
   * Benchmarks only: return each audio frame as received, without Opus or an
   * engine, so that relay benchmarks can run more conversations than the
   * machine could decode and encode.
   */
  echoPages?: boolean;
}

export class WorkerSession {
  private readonly decoder = new OggOpusDecoder();
  private readonly encoder: OggOpusEncoder;
  private readonly chunker = new FrameChunker(ENGINE_FRAME_SAMPLES);
  private readonly abort = new AbortController();
  readonly clock = new OutputClock(() => this.onTick(), { periodMs: FRAME_MS, maxCatchUpMs: MAX_CATCH_UP_MS });
  private conversation?: Conversation;
  private idleTimer?: NodeJS.Timeout;
  private ended = false;
  /** Resolves once the engine's conversation state is freed: the worker is reusable. */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;
  framesIn = 0;
  framesOut = 0;

  constructor(private readonly ws: WebSocket, private readonly options: WorkerSessionOptions) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    this.encoder = new OggOpusEncoder({ frameMs: 20, packetsPerPage: options.packetsPerPage });
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', () => void this.end());
    ws.on('error', (err) => options.log.warn({ err: err.message }, 'client socket error'));
  }

  async start(): Promise<void> {
    if (this.options.echoPages) {
      this.send(encodeHandshake());
      return this.armIdleTimer();
    }
    const sink: EngineSink = {
      text: (piece) => this.send(encodeText(piece)),
      metadata: (event) => this.onEngineEvent(event),
      error: (message, fatal) => {
        this.send(encodeError(message));
        if (fatal) void this.end(CloseCode.InternalError, message);
      },
    };
    try {
      this.conversation = await this.options.engine.openConversation(
        { sampling: this.options.sampling, persona: this.options.sampling.persona, signal: this.abort.signal },
        sink,
      );
    } catch (err) {
      const message = `The engine could not start a conversation: ${(err as Error).message}`;
      this.options.log.error({ err }, 'openConversation failed');
      this.send(encodeError(message));
      return this.end(CloseCode.InternalError, message);
    }
    if (this.ended) return void this.conversation.close();
    this.send(encodeHandshake());
    // Header pages go out right after the handshake, so the client's decoder is primed before any audio.
    this.sendPages(this.encoder.headers());
    this.armIdleTimer();
  }

  private onEngineEvent(event: EngineEvent): void {
    this.send(encodeMetadata(event));
    if (event.type === 'end') {
      // The engine has said its last words (already paced out); let them drain, then close.
      setTimeout(() => void this.end(CloseCode.EndedByEngine, String(event.reason ?? 'conversation ended')), 250).unref();
    }
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.ended) return;
    if (!isBinary) return void this.fail(CloseCode.UnsupportedData, 'text websocket messages are not part of the protocol: send binary frames');
    const decoded = decodeFrame(data);
    if (!decoded.ok) return void this.fail(CloseCode.InvalidPayload, `malformed frame: ${decoded.error}`);
    const frame = decoded.frame;
    if (frame.kind !== 'audio') return; // control, ping and unknown kinds carry nothing a streaming engine needs
    if (this.options.echoPages) {
      this.armIdleTimer();
      return this.send(data);
    }
    let pcm: Float32Array[];
    try {
      pcm = this.decoder.decode(frame.data);
    } catch (err) {
      return void this.fail(CloseCode.InvalidPayload, `bad audio: ${(err as Error).message}`);
    }
    this.armIdleTimer();
    for (const chunk of pcm) {
      for (const engineFrame of this.chunker.push(chunk)) {
        this.framesIn++;
        try {
          this.conversation?.pushFrame(engineFrame);
        } catch (err) {
          this.options.log.error({ err }, 'engine failed on a frame');
          return void this.fail(CloseCode.InternalError, `the engine failed: ${(err as Error).message}`);
        }
        if (!this.clock.started && this.conversation) this.clock.start(performance.now() + OUTPUT_PHASE_MS);
      }
    }
  }

  /** One output frame, due now on the output clock. */
  private onTick(): void {
    if (this.ended || !this.conversation) return;
    let pcm: Float32Array;
    try {
      pcm = this.conversation.pullFrame();
    } catch (err) {
      this.options.log.error({ err }, 'engine failed to give an output frame');
      return void this.fail(CloseCode.InternalError, `the engine failed: ${(err as Error).message}`);
    }
    this.framesOut++;
    this.sendPages(this.encoder.encode(pcm));
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(
      () => void this.fail(CloseCode.ClientIdle, `no audio for ${Math.round(this.options.idleTimeoutMs / 1000)} s: the microphone stream stopped`),
      this.options.idleTimeoutMs,
    );
    this.idleTimer.unref();
  }

  private sendPages(pages: Uint8Array[]): void {
    for (const page of pages) this.send(encodeAudio(page));
  }

  private send(bytes: Uint8Array): void {
    if (this.ended || this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount > this.options.maxBufferedBytes) {
      return void this.end(CloseCode.SlowConsumer, 'the client stopped reading audio; the session was dropped');
    }
    this.ws.send(bytes);
  }

  private fail(code: number, message: string): Promise<void> {
    this.options.log.warn({ code, message }, 'ending session');
    this.send(encodeError(message));
    return this.end(code, message);
  }

  /** Idempotent: closes the socket (if open) and frees the engine's state. */
  async end(code: number = CloseCode.Normal, reason = 'conversation ended'): Promise<void> {
    if (this.ended) return this.finished;
    this.ended = true;
    this.clock.stop();
    clearTimeout(this.idleTimer);
    this.abort.abort();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      this.ws.close(code, closeReason(reason));
      // A peer that never completes the closing handshake must not hold the worker.
      setTimeout(() => this.ws.terminate(), 2000).unref();
    }
    try {
      await this.conversation?.close();
    } catch (err) {
      this.options.log.error({ err }, 'conversation close failed');
    }
    this.resolveFinished();
    return this.finished;
  }
}
