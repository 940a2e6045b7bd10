/** What the UI (and the test hook) can see of a conversation. */
import type { Problem } from './problems.js';
import type { TranscriptEntry } from './transcript.js';

export type Phase =
  | { name: 'idle' }
  | { name: 'connecting'; step: 'microphone' | 'server' }
  | { name: 'queued'; position: number; queued: number }
  | { name: 'warming-up'; message?: string; fraction?: number }
  | { name: 'live' }
  // Until when: SessionSnapshot.endsAt, the one place the deadline is kept.
  | { name: 'ending-soon' }
  | { name: 'ended'; reason: string }
  | { name: 'error'; problem: Problem };

export interface LiveStats {
  /** Mouth-to-ear estimate: reply lag + capture + playout delay + output latency. */
  latencyMs?: number;
  /** How long after we sent a stream position the server's reply at that position arrived. */
  replyLagMs?: number;
  bufferMs: number;
  targetMs: number;
  playoutDelayMs: number;
  outputLatencyMs: number;
  missedMs: number;
  playedMs: number;
  underruns: number;
  sentKbps: number;
  receivedKbps: number;
}

export interface SessionSnapshot {
  phase: Phase;
  muted: boolean;
  transcript: TranscriptEntry[];
  stats?: LiveStats;
  engine?: string;
  codecs: { encoder?: string; decoder?: string };
  /** When the session's time limit ends (performance.now() ms), if the server said. */
  endsAt?: number;
  hasRecording: boolean;
}
