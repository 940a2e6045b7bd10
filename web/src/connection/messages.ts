/** Messages between the main thread and the connection worker. */
import type { Frame } from '../../../src/protocol/index.js';

export type ConnectionCommand =
  /** Once, before `open`: the ports to the playout worklet and to the encoder worker. */
  | { type: 'init'; forceWasm: boolean; playout: MessagePort; encoder: MessagePort }
  | { type: 'open'; url: string; protocols?: string[] }
  | { type: 'close'; code: number; reason: string };

/** The frames the main thread shows; audio never leaves the worker. */
export type ShownFrame = Extract<Frame, { kind: 'text' | 'metadata' | 'error' }>;

export interface ConnectionStats {
  sentKbps: number;
  receivedKbps: number;
  /** Smoothed reply lag, once the server's audio can be matched with ours. */
  replyLagMs?: number;
}

export type ConnectionReport =
  /** The decoder is loaded. */
  | { type: 'ready'; backend: string }
  | { type: 'error'; message: string }
  | { type: 'handshake' }
  | { type: 'frame'; frame: ShownFrame }
  | ({ type: 'stats' } & ConnectionStats)
  /** `opened` tells a server that could not be reached from a conversation that ended. */
  | { type: 'closed'; code: number; reason: string; opened: boolean };
