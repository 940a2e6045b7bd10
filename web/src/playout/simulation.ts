/**
 * Offline replay of a playout policy against an arrival trace, on the same
 * PlayoutBuffer the AudioWorklet runs. The tests and the benchmark use it to
 * compare policies on identical network conditions; the app does not.
 */
import { PlayoutBuffer, type PlayoutPolicy, type PlayoutStats } from './playout-buffer.js';

/** `samples` of audio reaching the playout buffer at sample clock `at`. */
export interface Arrival {
  at: number;
  samples: number;
}

/** Deterministic PRNG (mulberry32), so traces are reproducible from a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SenderTraceOptions {
  sampleRate: number;
  durationS: number;
  /** The sender produces this much audio at a time (Moshi: one 80 ms step)... */
  frameMs?: number;
  /** ...sent as this many websocket messages at once (our worker: 4 pages of 20 ms). */
  messagesPerFrame?: number;
  /** Each message is delayed by a uniform random amount in this range, order preserved. */
  jitterMs?: [number, number];
  /**
   * A lockstep engine (Moshi, the loopback) sends each frame when the last of
   * its input's messages has arrived, so the uplink's jitter (per message,
   * order preserved) delays the reply as well. Off by default: a sender
   * with a clock of its own.
   */
  uplinkJitterMs?: [number, number];
  /** Sender time of the first frame. */
  startMs?: number;
  seed?: number;
}

/** Arrivals from a real-time sender through a jittery, order-preserving link (a websocket over TCP). */
export function senderTrace(options: SenderTraceOptions): Arrival[] {
  const { sampleRate, durationS } = options;
  const frameMs = options.frameMs ?? 80;
  const perFrame = options.messagesPerFrame ?? 4;
  const [lo, hi] = options.jitterMs ?? [0, 40];
  const random = seededRandom(options.seed ?? 1);
  // A stream of its own, so adding an uplink leaves the downlink's delays as they were.
  const uplinkRandom = seededRandom((options.seed ?? 1) + 0x9e3779b9);
  const [upLo, upHi] = options.uplinkJitterMs ?? [0, 0];
  let uplinkArrival = -Infinity;
  const frameSamples = Math.round((frameMs * sampleRate) / 1000);
  const messageSamples = frameSamples / perFrame;
  const arrivals: Arrival[] = [];
  let previous = 0;
  const frames = Math.floor((durationS * 1000) / frameMs);
  for (let f = 0; f < frames; f++) {
    let sentMs = (options.startMs ?? 100) + f * frameMs;
    if (options.uplinkJitterMs) {
      // The frame's input, message by message in sending order: the reply leaves when the last is in.
      for (let m = perFrame - 1; m >= 0; m--) {
        const inputSentMs = sentMs - (m * frameMs) / perFrame;
        uplinkArrival = Math.max(uplinkArrival, inputSentMs + upLo + (upHi - upLo) * uplinkRandom());
      }
      sentMs = uplinkArrival;
    }
    const sent = (sentMs * sampleRate) / 1000;
    for (let m = 0; m < perFrame; m++) {
      const delay = ((lo + (hi - lo) * random()) * sampleRate) / 1000;
      previous = Math.max(previous, Math.round(sent + delay));
      arrivals.push({ at: previous, samples: messageSamples });
    }
  }
  return arrivals;
}

export interface SimulationResult {
  policy: string;
  stats: PlayoutStats;
  /** Clocks of underruns. */
  underrunsAt: number[];
  /** Mean delay of each quantum's played samples, in samples. */
  quantumDelays: number[];
}

/** A speech-like test signal: 1.2 s of tone, 0.4 s of near silence. */
function signalFor(position: number, count: number, sampleRate: number): Float32Array {
  const out = new Float32Array(count);
  const talk = 1.2 * sampleRate;
  const cycle = 1.6 * sampleRate;
  for (let i = 0; i < count; i++) {
    const p = position + i;
    out[i] = (p % cycle < talk ? 0.3 : 0.001) * Math.sin((2 * Math.PI * 220 * p) / sampleRate);
  }
  return out;
}

/** Plays `arrivals` through `policy` for `durationS`, a quantum at a time, as the AudioWorklet would. */
export function simulate(policy: PlayoutPolicy, arrivals: Arrival[], options: { sampleRate: number; durationS: number; quantum?: number }): SimulationResult {
  const { sampleRate } = options;
  const quantum = options.quantum ?? 128;
  const buffer = new PlayoutBuffer(policy, { sampleRate });
  const out = new Float32Array(quantum);
  const end = options.durationS * sampleRate;
  const underrunsAt: number[] = [];
  const quantumDelays: number[] = [];
  let next = 0;
  let position = 0;
  let underruns = 0;
  while (buffer.now < end) {
    // Messages reach the worklet between render quanta.
    while (next < arrivals.length && arrivals[next].at <= buffer.now) {
      buffer.push(signalFor(position, arrivals[next].samples, sampleRate));
      position += arrivals[next].samples;
      next++;
    }
    const clock = buffer.now;
    buffer.pull(out);
    const s = buffer.stats();
    if (s.underruns > underruns) {
      underruns = s.underruns;
      underrunsAt.push(clock);
    }
    if (s.playing) quantumDelays.push(buffer.lastPullDelay);
  }
  return { policy: policy.name, stats: buffer.stats(), underrunsAt, quantumDelays };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
