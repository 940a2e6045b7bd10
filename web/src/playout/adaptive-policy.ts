/**
 * QuiLLMan's playout policy: aim the playout delay at what the network has
 * actually shown, instead of at a fixed buffer depth.
 *
 * Every chunk's lateness is `arrival clock − stream position` (in samples). A
 * sender streaming in real time gives a constant lateness plus network
 * jitter, so the worst lateness in a recent window is exactly the playout
 * delay that would have avoided every underrun in it. We play at that delay
 * plus a small margin.
 *
 * - Start (and restart after an underrun) as soon as the delay reaches the
 *   target, however little is buffered: a bursty sender (Moshi sends 80 ms
 *   at once) does not force a deep buffer, its bursts are simply on time.
 * - An underrun widens the margin; the extra margin decays, more slowly after
 *   every underrun, so a link that keeps glitching keeps its cushion.
 * - When the target rises above the delay while playing (a new worst
 *   lateness), pause for a quantum at a time in quiet moments until the delay
 *   has caught up, instead of waiting for the underrun that would teach it.
 * - When the delay runs above the target (a jitter spike left the window,
 *   clock drift, a backlog after an outage), drop the excess, waiting a
 *   little for a quiet moment so the cut is not heard.
 * - A gap in arrivals longer than `idleGapMs` (the sender paused, or the link
 *   stalled) starts the measurements afresh, keeping only the jitter learnt
 *   so far: a pause is not mistaken for network delay. Lateness more than
 *   `maxJitterMs` above the fastest arrival is an outage, not jitter worth
 *   buffering for, so a stall's backlog is trimmed rather than kept.
 *
 * A fixed-depth policy (Kyutai's) has to guess one depth that covers both
 * the burst size and the jitter; this one measures both.
 */
import type { PlayoutPolicy } from './playout-buffer.js';
import { SlidingExtremum } from './sliding-extremum.js';

export interface AdaptivePolicyOptions {
  sampleRate: number;
  /** Margin above baseline + jitter, on top of one render quantum. */
  baseMarginMs?: number;
  /** Extra margin at the start, while the jitter is still being learnt. */
  startMarginMs?: number;
  /** Extra margin added after each underrun, and the ceiling of the extra. */
  marginStepMs?: number;
  maxMarginMs?: number;
  /** Half-life of the extra margin; every underrun doubles it. */
  marginHalfLifeS?: number;
  maxMarginHalfLifeS?: number;
  /** One render quantum: a chunk due mid-quantum must be there at the quantum's start. */
  quantum?: number;
  /** How long a lateness is remembered. */
  windowMs?: number;
  /** Lateness beyond this above the fastest arrival is an outage, not jitter worth buffering for. */
  maxJitterMs?: number;
  /**
   * Fraction of the measured jitter added on top of it: the worst lateness
   * seen so far underestimates the worst to come (see docs/web.md).
   */
  jitterHeadroom?: number;
  /** Delay above target tolerated before trimming. */
  trimThresholdMs?: number;
  /** How long a trim may wait for a quiet moment. */
  quietWaitMs?: number;
  /** An arrival gap this long is the sender pausing or the link stalling. */
  idleGapMs?: number;
}

export class AdaptivePolicy implements PlayoutPolicy {
  readonly name = 'adaptive';
  private readonly rate: number;
  private readonly baseMargin: number;
  private readonly marginStep: number;
  private readonly maxMargin: number;
  private readonly maxHalfLife: number;
  private readonly window: number;
  private readonly maxJitter: number;
  private readonly jitterHeadroom: number;
  private readonly trimThreshold: number;
  private readonly holdThreshold: number;
  private readonly quietWait: number;
  private readonly idleGap: number;
  private latenessMax: SlidingExtremum;
  /** Lateness of the first chunk of each burst: the fastest of them is the baseline. */
  private baselineMin: SlidingExtremum;
  /** Jitter learnt before the latest gap, assumed until the new measurements show more. */
  private priorJitter = 0;
  private halfLife: number;
  /** Margin on top of the base, decaying exponentially. */
  private extraMargin: number;
  private lastDecay = 0;
  /** Samples received: the stream position just past the newest chunk. */
  private received = 0;
  private lastArrival: number | undefined;
  private trimWaitingSince: number | undefined;

  constructor(options: AdaptivePolicyOptions) {
    const ms = (v: number) => Math.round((v * options.sampleRate) / 1000);
    this.rate = options.sampleRate;
    this.baseMargin = (options.quantum ?? 128) + ms(options.baseMarginMs ?? 2);
    this.extraMargin = ms(options.startMarginMs ?? 40);
    this.marginStep = ms(options.marginStepMs ?? 15);
    this.maxMargin = ms(options.maxMarginMs ?? 200);
    this.halfLife = (options.marginHalfLifeS ?? 1) * options.sampleRate;
    this.maxHalfLife = (options.maxMarginHalfLifeS ?? 64) * options.sampleRate;
    // 20 s: on recorded browser traces an 8 s memory forgot spikes that came back (docs/web.md).
    this.window = ms(options.windowMs ?? 20_000);
    this.maxJitter = ms(options.maxJitterMs ?? 150);
    this.jitterHeadroom = options.jitterHeadroom ?? 0.05;
    this.trimThreshold = ms(options.trimThresholdMs ?? 4);
    this.holdThreshold = options.quantum ?? 128;
    this.quietWait = ms(options.quietWaitMs ?? 400);
    this.idleGap = ms(options.idleGapMs ?? 400);
    this.latenessMax = new SlidingExtremum(this.window, 'max');
    this.baselineMin = new SlidingExtremum(this.window, 'min');
  }

  onArrival(clock: number, samples: number): void {
    const lateness = clock - this.received;
    const gap = this.lastArrival === undefined ? 0 : clock - this.lastArrival;
    if (gap > this.idleGap) this.restartMeasurements(clock);
    this.latenessMax.push(clock, lateness);
    // Only the first chunk of a burst tells how fast the path was: the rest of a burst
    // looks early merely because it starts further into the stream.
    if (gap > 0 || this.lastArrival === undefined) this.baselineMin.push(clock, lateness);
    this.received += samples;
    this.lastArrival = clock;
  }

  shouldStart(clock: number, depth: number): boolean {
    return this.delay(clock, depth) >= this.target(clock);
  }

  onUnderrun(): void {
    this.extraMargin = Math.min(this.maxMargin, this.extraMargin + this.marginStep);
    this.halfLife = Math.min(this.maxHalfLife, this.halfLife * 2);
  }

  trimAmount(clock: number, depth: number, quiet: boolean): number {
    const excess = this.delay(clock, depth) - this.target(clock);
    if (excess < this.trimThreshold) {
      this.trimWaitingSince = undefined;
      return 0;
    }
    this.trimWaitingSince ??= clock;
    const urgent = excess > 4 * this.trimThreshold || clock - this.trimWaitingSince >= this.quietWait;
    if (!quiet && !urgent) return 0;
    this.trimWaitingSince = undefined;
    return excess;
  }

  shouldHold(clock: number, depth: number): boolean {
    // A quantum or more short of the target: the jitter estimate rose after playback started.
    return this.target(clock) - this.delay(clock, depth) >= this.holdThreshold;
  }

  onFlush(): void {
    this.trimWaitingSince = undefined;
  }

  targetDepth(clock: number, depth: number): number {
    // Shown as a depth: what the buffer would hold at the target delay.
    return Math.max(0, depth + this.target(clock) - this.delay(clock, depth));
  }

  /** The margin in ms, for display and tests. */
  get marginMs(): number {
    return ((this.baseMargin + this.extraMargin) * 1000) / this.rate;
  }

  /** How far behind the clock the next sample to play is (its position's lateness). */
  private delay(clock: number, depth: number): number {
    return clock - (this.received - depth);
  }

  private target(clock: number): number {
    this.decayMargin(clock);
    const worst = this.latenessMax.get(clock);
    const baseline = this.baselineMin.get(clock);
    if (worst === undefined || baseline === undefined) return Infinity;
    const jitter = Math.min(this.maxJitter, Math.max(worst - baseline, this.priorJitter));
    return baseline + jitter * (1 + this.jitterHeadroom) + this.baseMargin + this.extraMargin;
  }

  private restartMeasurements(clock: number): void {
    const worst = this.latenessMax.get(clock);
    const baseline = this.baselineMin.get(clock);
    if (worst !== undefined && baseline !== undefined) this.priorJitter = Math.min(this.maxJitter, worst - baseline);
    this.latenessMax = new SlidingExtremum(this.window, 'max');
    this.baselineMin = new SlidingExtremum(this.window, 'min');
  }

  private decayMargin(clock: number): void {
    const elapsed = clock - this.lastDecay;
    this.lastDecay = clock;
    this.extraMargin *= Math.pow(0.5, elapsed / this.halfLife);
  }
}
