/**
 * Measures whether reply audio leaves a server on a steady clock: a raw
 * Moshi-protocol client that streams a microphone script in real time and
 * stamps every audio message it receives with its arrival time and the
 * granule position of its last Ogg page (the stream position the audio ends
 * at). No vitest import: the clock benchmark uses it too.
 *
 * Lag against a steady clock: each message's arrival minus its place in the
 * stream, less the smallest such offset of the session (the earliest any
 * message came relative to the schedule). A server that keeps time has every
 * lag near the network's jitter; one that stalls and then bursts shows the
 * stall as a lag of the stall's length.
 */
import WebSocket from 'ws';
import { OggOpusDecoder, OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { decodeFrame, encodeAudio } from '../../src/protocol/frames.js';
import { pageGranule } from '../../src/protocol/ogg.js';

const RATE = 24_000;
/** 20 ms: the microphone's step, as browsers and the terminal client send it. */
export const MIC_CHUNK = 480;

export interface AudioArrival {
  /** performance.now() when the message came. */
  wallMs: number;
  /** Where the message's audio ends in the stream (ms), from its last page's granule position (48 kHz). */
  streamMs: number;
}

export interface ProbeResult {
  arrivals: AudioArrival[];
  /** Kind-4 events with their arrival time. */
  events: { wallMs: number; event: Record<string, unknown> }[];
  /** Reply PCM, in stream order (for checks that something was said). */
  audio: Float32Array[];
  errors: string[];
  closeCode?: number;
}

export interface ProbeOptions {
  url: string;
  /** The next 20 ms of microphone starting at stream sample `at`; an empty array sends nothing this time (a stalled sender); undefined ends the session. */
  mic: (at: number, heard: ProbeResult) => Float32Array | undefined;
  maxMs: number;
  handshakeTimeoutMs?: number;
}

/** Streams the microphone in real time (drift-free 20 ms steps) until it ends, the server closes, or maxMs. */
export async function probeOutputClock(options: ProbeOptions): Promise<ProbeResult> {
  const result: ProbeResult = { arrivals: [], events: [], audio: [], errors: [] };
  const ws = new WebSocket(options.url, { perMessageDeflate: false });
  ws.binaryType = 'nodebuffer';
  const decoder = new OggOpusDecoder();
  let handshake!: () => void;
  const shook = new Promise<void>((r) => (handshake = r));
  const closed = new Promise<void>((resolve) => {
    ws.on('close', (code) => {
      result.closeCode = code;
      handshake();
      resolve();
    });
  });
  ws.on('error', (err) => result.errors.push(err.message));
  ws.on('message', (data: Buffer) => {
    const wallMs = performance.now();
    const decoded = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (!decoded.ok) return void result.errors.push(decoded.error);
    const frame = decoded.frame;
    if (frame.kind === 'handshake') handshake();
    else if (frame.kind === 'metadata' && frame.data && typeof frame.data === 'object') result.events.push({ wallMs, event: frame.data as Record<string, unknown> });
    else if (frame.kind === 'error') result.errors.push(frame.message);
    else if (frame.kind === 'audio') {
      const granule = pageGranule(frame.data);
      for (const pcm of decoder.decode(frame.data)) result.audio.push(pcm);
      // Header pages carry granule 0: they are no audio.
      if (granule > 0) result.arrivals.push({ wallMs, streamMs: granule / 48 });
    }
  });
  const timeout = setTimeout(() => ws.terminate(), options.handshakeTimeoutMs ?? 60_000);
  await shook;
  clearTimeout(timeout);
  if (ws.readyState === WebSocket.OPEN) {
    const encoder = new OggOpusEncoder({ frameMs: 20, packetsPerPage: 1 });
    const start = performance.now();
    const steps = Math.ceil((options.maxMs / 1000) * RATE / MIC_CHUNK);
    for (let n = 0; n < steps && ws.readyState === WebSocket.OPEN; n++) {
      const due = start + n * 20 - performance.now();
      if (due > 1) await new Promise((r) => setTimeout(r, due));
      const chunk = options.mic(n * MIC_CHUNK, result);
      if (!chunk) break;
      for (const page of encoder.encode(chunk)) ws.send(encodeAudio(page));
    }
    if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'done');
  }
  const forced = setTimeout(() => ws.terminate(), 3000);
  await closed;
  clearTimeout(forced);
  return result;
}

export interface ClockFigures {
  messages: number;
  /** Largest lag of any audio message behind a steady clock (ms). */
  worstLagMs: number;
  /** Lag percentiles (ms). */
  lagP99Ms: number;
  /** Gaps between consecutive audio messages (ms). */
  gapP99Ms: number;
  gapMaxMs: number;
  /** Stream time of the message with the worst lag (ms), to find it in logs. */
  worstAtStreamMs: number;
}

/** Lag and gap figures of a session's audio arrivals, skipping the first `skipMs` of stream (the start-up). */
export function clockFigures(arrivals: AudioArrival[], skipMs = 0): ClockFigures {
  const kept = arrivals.filter((a) => a.streamMs >= skipMs);
  if (kept.length < 2) return { messages: kept.length, worstLagMs: NaN, lagP99Ms: NaN, gapP99Ms: NaN, gapMaxMs: NaN, worstAtStreamMs: NaN };
  const offsets = kept.map((a) => a.wallMs - a.streamMs);
  const base = Math.min(...offsets);
  const lags = offsets.map((o) => o - base);
  let worst = 0;
  for (let i = 1; i < lags.length; i++) if (lags[i] > lags[worst]) worst = i;
  const gaps = kept.slice(1).map((a, i) => a.wallMs - kept[i].wallMs);
  return {
    messages: kept.length,
    worstLagMs: lags[worst],
    lagP99Ms: percentile(lags, 99),
    gapP99Ms: percentile(gaps, 99),
    gapMaxMs: Math.max(...gaps),
    worstAtStreamMs: kept[worst].streamMs,
  };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  return sorted[lo] + (sorted[Math.min(sorted.length - 1, lo + 1)] - sorted[lo]) * (rank - lo);
}
