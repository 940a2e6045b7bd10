/**
 * The one place every speech engine plugs in.
 *
 * A worker owns the wire (Ogg Opus, frames, sockets) and the output clock; an
 * engine only ever sees 24 kHz mono PCM in fixed 80 ms frames, which is the
 * cadence Moshi itself runs at. Keeping codecs out of engines means a new
 * engine never touches Opus; keeping the clock out of them means no engine's
 * work (recognition, a model, synthesis) can hold up the audio that is due.
 */
import type { SamplingParams } from '../protocol/sampling.js';

/** Moshi's (and Mimi's) sample rate. Every engine frame is at this rate. */
export const ENGINE_SAMPLE_RATE = 24_000;
/** 80 ms at 24 kHz: one Moshi step. */
export const ENGINE_FRAME_SAMPLES = 1920;
/** One frame's length in ms (80). */
export const ENGINE_FRAME_MS = (ENGINE_FRAME_SAMPLES / ENGINE_SAMPLE_RATE) * 1000;

/** Progress of long start-up work (model downloads, warm-up), shown to users. */
export interface ProgressReport {
  stage: string;
  message: string;
  /** 0..1 when known. */
  fraction?: number;
}

/**
 * What a conversation hands back to the worker, besides its audio (which the
 * worker pulls, see Conversation.pullFrame). Messages go out in call order;
 * those made inside pullFrame go out just before that frame's audio.
 */
export interface EngineSink {
  /** A piece of the reply's words, sent as a kind-2 frame. */
  text(piece: string): void;
  /** A structured event (transcripts, barge-in flush, stage timings), sent as kind-4 JSON. */
  metadata(event: EngineEvent): void;
  /**
   * A failure the client should see (kind-5). When `fatal` the worker ends the
   * conversation after sending it.
   */
  error(message: string, fatal?: boolean): void;
}

/**
 * Events engines emit as metadata. `type` is always present so clients can
 * tell our events apart from the free-form JSON Kyutai's servers send.
 */
export type EngineEvent =
  | { type: 'engine'; name: string; stages?: Record<string, string>; [k: string]: unknown }
  | { type: 'transcript'; role: 'user' | 'assistant'; text: string; final: boolean; [k: string]: unknown }
  /** Barge-in: the client must drop whatever reply audio it still has queued. */
  | { type: 'flush'; reason: string; [k: string]: unknown }
  | { type: 'turn'; [k: string]: unknown }
  | { type: 'timings'; [k: string]: unknown }
  | { type: 'end'; reason: string; [k: string]: unknown }
  | { type: string; [k: string]: unknown };

export interface ConversationOptions {
  /** Validated sampling parameters from the websocket URL. */
  sampling: SamplingParams;
  /** Persona / system prompt for engines with a language model. */
  persona?: string;
  /** Aborted when the conversation ends for any reason. */
  signal: AbortSignal;
}

/** One conversation's state. A fresh one per connection: nothing leaks between users. */
export interface Conversation {
  /** Exactly ENGINE_FRAME_SAMPLES samples, in stream order, as they arrive. */
  pushFrame(frame: Float32Array): void;
  /**
   * The next 80 ms of reply audio (ENGINE_FRAME_SAMPLES samples, 24 kHz,
   * [-1, 1]): silence when there is nothing to say. The worker's output clock
   * calls it once per 80 ms of wall time from the first input frame on,
   * whatever the input side is doing, so it must answer at once from what is
   * ready: it never waits for a model.
   */
  pullFrame(): Float32Array;
  /** Ends the conversation and frees its state. Idempotent. */
  close(): Promise<void>;
}

export interface EngineInfo {
  name: string;
  /** Which implementation serves each stage, e.g. { stt: 'pocketsphinx' }. */
  stages?: Record<string, string>;
}

export interface Engine {
  readonly info: EngineInfo;
  /** Loads models once per process, reporting progress. Optional. */
  warmUp?(onProgress?: (p: ProgressReport) => void): Promise<void>;
  openConversation(options: ConversationOptions, sink: EngineSink): Conversation | Promise<Conversation>;
  /** Frees process-wide resources (models). */
  dispose?(): Promise<void>;
}
