/** Messages between the main thread, the workers and the worklets. */
import type { PlayoutStats } from '../playout/playout-buffer.js';
import type { PolicyName } from '../playout/create-policy.js';

/** One encoder frame of microphone PCM, capture worklet → encoder worker. */
export interface MicFrame {
  pcm: Float32Array;
  /** AudioContext frame of the first sample. */
  frame: number;
}

/** Audio for the conversation recorder, sent to the main thread in batches of a quarter second. */
export interface RecordedBatch {
  type: 'recorded';
  pcm: Float32Array;
  /** AudioContext frame of the first sample. */
  frame: number;
}

export type CaptureCommand = { type: 'connect'; encoder: MessagePort } | { type: 'mute'; muted: boolean };
export type CaptureReport = RecordedBatch;

export interface PlayoutOptions {
  policy: PolicyName;
  /** Send each arrival (clock, samples) back, for replaying policies offline. */
  reportArrivals: boolean;
}

export type PlayoutCommand = { type: 'audio'; pcm: Float32Array } | { type: 'flush' } | { type: 'reset' } | { type: 'connect'; port: MessagePort };

export type PlayoutReport =
  | { type: 'stats'; stats: PlayoutStats; meanDelay: number }
  | RecordedBatch
  | { type: 'arrivals'; arrivals: [number, number][] };

/** Main thread → encoder worker, once: where the microphone comes from and where pages go. */
export type EncoderCommand = { type: 'init'; forceWasm: boolean; capture: MessagePort; connection: MessagePort };
/** Connection worker → encoder worker: a conversation begins (fresh stream, header pages first) or ends. */
export type EncoderControl = { type: 'start' } | { type: 'stop' };
/** Encoder worker → connection worker: one Ogg page; `granule` is its end in 48 kHz samples. */
export interface EncodedPage {
  page: Uint8Array;
  granule: number;
}
/** Encoder worker → main thread. */
export type EncoderReport = { type: 'ready'; backend: string } | { type: 'error'; message: string };

/** Opus works in 20 ms frames here: Kyutai's choice, and a good latency/overhead balance. */
export const SAMPLE_RATE = 24_000;
export const FRAME_SAMPLES = 480;
/** Recorder batches: a few messages a second instead of one per frame or quantum. */
export const RECORDED_BATCH_SAMPLES = SAMPLE_RATE / 4;
