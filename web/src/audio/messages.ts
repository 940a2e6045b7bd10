/** Messages between the main thread, the workers and the worklets. */
import type { PlayoutStats } from '../playout/playout-buffer.js';
import type { PolicyName } from '../playout/create-policy.js';

/** The capture worklet's output: one encoder frame of microphone PCM. */
export interface MicFrame {
  pcm: Float32Array;
  /** AudioContext frame of the first sample. */
  frame: number;
}

export interface PlayoutOptions {
  policy: PolicyName;
  /** Send the samples played back to the main thread (recording, tests). */
  reportOutput: boolean;
  /** Send each arrival (clock, samples) back, for replaying policies offline. */
  reportArrivals: boolean;
}

export type PlayoutCommand = { type: 'audio'; pcm: Float32Array } | { type: 'flush' } | { type: 'reset' } | { type: 'connect'; port: MessagePort };

export type PlayoutReport =
  | { type: 'stats'; stats: PlayoutStats; frame: number; meanDelay: number }
  | { type: 'output'; pcm: Float32Array; frame: number }
  | { type: 'arrivals'; arrivals: [number, number][] };

export type EncoderCommand = { type: 'init'; forceWasm: boolean } | { type: 'start' } | { type: 'stop' } | { type: 'pcm'; pcm: Float32Array };
export type EncoderReport = { type: 'ready'; backend: string } | { type: 'page'; page: Uint8Array; granule: number } | { type: 'error'; message: string };

export type DecoderCommand = { type: 'init'; forceWasm: boolean } | { type: 'ogg'; bytes: Uint8Array } | { type: 'reset' } | { type: 'connect'; port: MessagePort };
export type DecoderReport = { type: 'ready'; backend: string } | { type: 'error'; message: string };

/** Opus works in 20 ms frames here: Kyutai's choice, and a good latency/overhead balance. */
export const SAMPLE_RATE = 24_000;
export const FRAME_SAMPLES = 480;
