/**
 * The mechanics of a playout buffer: a FIFO drained one render quantum at a
 * time, fades at every edge, and the accounting a listener cares about. When
 * to start, when to give up and when to trim is left to a PlayoutPolicy, so
 * that two policies can be compared on exactly the same mechanics.
 *
 * Pure TypeScript with no audio APIs: it runs in the playout AudioWorklet, in
 * Node tests and in the benchmark's trace replays alike. Time is counted in
 * output samples (the sample clock), advanced only by pull().
 */
import { ChunkFifo } from './chunk-fifo.js';

export interface PlayoutPolicy {
  readonly name: string;
  /** A chunk of `samples` arrived at `clock`. */
  onArrival(clock: number, samples: number): void;
  /** While silent: is there enough to (re)start playing? */
  shouldStart(clock: number, depth: number): boolean;
  /** Playback ran dry at `clock`. */
  onUnderrun(clock: number): void;
  /**
   * While playing, before each quantum: how many of the oldest samples to
   * drop now (0 for none). `quiet` says the audio about to play is near
   * silence, where a cut is least audible.
   */
  trimAmount(clock: number, depth: number, quiet: boolean): number;
  /**
   * While playing, before a quiet quantum: should playback pause for this
   * quantum to grow the delay? Without it the delay only grows through an
   * underrun, so a jitter estimate that rose after playback started would
   * be learnt by failing. Optional: Kyutai's policy does not do this.
   */
  shouldHold?(clock: number, depth: number): boolean;
  onFlush(clock: number): void;
  /** The depth the policy aims for right now, for display. */
  targetDepth(clock: number, depth: number): number;
}

export interface PlayoutStats {
  /** Output samples elapsed. */
  clock: number;
  /** Samples of real audio played. */
  played: number;
  /** Silence played where audio was due: after an underrun, until playback resumed. */
  missed: number;
  /** Silence while the sender itself paused (a gap longer than `idleAfter`) or after a flush. */
  idle: number;
  /** Samples trimmed to cut latency. */
  trimmed: number;
  /** Samples dropped by flush(). */
  flushed: number;
  /** Silence inserted in quiet moments to grow the delay (see PlayoutPolicy.shouldHold). */
  held: number;
  underruns: number;
  trims: number;
  /** Samples buffered now. */
  depth: number;
  target: number;
  /** Sum over played samples of (play clock − arrival clock): mean delay = delaySum / played. */
  delaySum: number;
  maxDelay: number;
  playing: boolean;
  started: boolean;
}

export interface PlayoutBufferOptions {
  sampleRate: number;
  /** Length of fade-ins, fade-outs and cross-fades, in samples. */
  fadeSamples?: number;
  /**
   * A starvation during which no audio at all arrived for this long is the
   * sender pausing (a cascaded engine between replies), not audio missed.
   */
  idleAfterSamples?: number;
  /** RMS below which the next quantum counts as quiet. */
  quietRms?: number;
}

/** Raised-cosine gain rising from 0 to 1 over `length` samples. */
function riseGain(index: number, length: number): number {
  return 0.5 - 0.5 * Math.cos((Math.PI * Math.min(index, length)) / length);
}

export class PlayoutBuffer {
  private readonly fifo = new ChunkFifo();
  private readonly fade: number;
  private readonly idleAfter: number;
  private readonly quietRms: number;
  private readonly scratchA: Float32Array;
  private readonly scratchB: Float32Array;
  private probe = new Float32Array(0);
  /** Bound once: the audio thread must not allocate a closure per quantum. */
  private readonly onRun = (arrival: number, index: number, length: number): void => this.account(arrival, index, length);
  private clock = 0;
  private playing = false;
  private started = false;
  /** Samples of fade-in still to apply. */
  private fadeInLeft = 0;
  private lastOutput = 0;
  /** The decaying tail after audio stopped: its starting value and the samples it has left. */
  private tailStart = 0;
  private tailLeft = 0;
  private flushPending = false;
  private afterFlush = false;
  /** Silence output since playback stopped, and the longest run of it with nothing buffered. */
  private silentRun = 0;
  private emptyRun = 0;
  private longestEmptyRun = 0;
  private readonly counters = { played: 0, missed: 0, idle: 0, trimmed: 0, flushed: 0, held: 0, underruns: 0, trims: 0, delaySum: 0, maxDelay: 0 };
  /** Mean delay of the samples played by the last pull(), in samples. */
  lastPullDelay = 0;

  constructor(
    readonly policy: PlayoutPolicy,
    options: PlayoutBufferOptions,
  ) {
    this.fade = options.fadeSamples ?? Math.round(options.sampleRate * 0.005);
    this.idleAfter = options.idleAfterSamples ?? Math.round(options.sampleRate * 0.5);
    this.quietRms = options.quietRms ?? 0.01;
    this.scratchA = new Float32Array(this.fade);
    this.scratchB = new Float32Array(this.fade);
  }

  get now(): number {
    return this.clock;
  }

  push(samples: Float32Array): void {
    if (samples.length === 0) return;
    this.fifo.push(samples, this.clock);
    this.emptyRun = 0;
    this.policy.onArrival(this.clock, samples.length);
  }

  /** Drops everything buffered (barge-in). Takes effect at the next pull, with a short fade-out. */
  flush(): void {
    this.flushPending = true;
  }

  /** Fills `out` completely and advances the clock by its length. */
  pull(out: Float32Array): void {
    const n = out.length;
    // delaySum only ever holds integers far below 2^53, so the difference over this pull is exact.
    const delaySumBefore = this.counters.delaySum;
    const playedBefore = this.counters.played;
    if (this.flushPending) this.applyFlush(out);
    else {
      if (!this.playing && this.fifo.size > 0 && this.policy.shouldStart(this.clock, this.fifo.size)) this.resume();
      if (this.playing) this.play(out);
      else this.silence(out, 0);
    }
    this.lastOutput = out[n - 1];
    const played = this.counters.played - playedBefore;
    this.lastPullDelay = played > 0 ? (this.counters.delaySum - delaySumBefore) / played : 0;
    this.clock += n;
  }

  stats(): PlayoutStats {
    return {
      clock: this.clock,
      ...this.counters,
      // An ongoing starvation is reported as missed until it proves to be idle.
      missed: this.counters.missed + (this.pendingSilenceIsMissed() ? this.silentRun : 0),
      depth: this.fifo.size,
      target: this.policy.targetDepth(this.clock, this.fifo.size),
      playing: this.playing,
      started: this.started,
    };
  }

  private pendingSilenceIsMissed(): boolean {
    return this.started && !this.playing && !this.afterFlush && Math.max(this.longestEmptyRun, this.emptyRun) <= this.idleAfter;
  }

  /** Books the silence since playback stopped as missed or idle, now that it is over. */
  private settleSilence(): void {
    if (this.pendingSilenceIsMissed()) this.counters.missed += this.silentRun;
    else if (this.started && !this.afterFlush) this.counters.idle += this.silentRun;
    this.silentRun = 0;
    this.longestEmptyRun = 0;
    this.emptyRun = 0;
  }

  private resume(): void {
    this.settleSilence();
    this.afterFlush = false;
    this.playing = true;
    this.started = true;
    this.fadeInLeft = this.fade;
    this.tailLeft = 0;
  }

  private play(out: Float32Array): void {
    const n = out.length;
    let at = 0;
    const quiet = this.isQuiet(n);
    if (quiet && this.policy.shouldHold?.(this.clock, this.fifo.size)) {
      this.hold(out);
      return;
    }
    const trim = this.policy.trimAmount(this.clock, this.fifo.size, quiet);
    if (trim > 0) at = this.crossfadeTrim(out, trim);
    at += this.fifo.read(out, at, n - at, this.onRun);
    if (this.fadeInLeft > 0) {
      const start = this.fade - this.fadeInLeft;
      const len = Math.min(this.fadeInLeft, at);
      for (let i = 0; i < len; i++) out[i] *= riseGain(start + i, this.fade);
      this.fadeInLeft -= len;
    }
    if (at < n) {
      // Ran dry mid-quantum: fade what we have, then silence with a decaying tail.
      const len = Math.min(this.fade, at);
      for (let i = 0; i < len; i++) out[at - len + i] *= riseGain(len - i, len + 1);
      this.playing = false;
      this.counters.underruns++;
      this.policy.onUnderrun(this.clock + at);
      this.silence(out, at);
    }
  }

  /**
   * Plays a quantum of silence instead of the quiet audio due, which waits for
   * the next one: the delay grows by a quantum where nobody hears the pause.
   */
  private hold(out: Float32Array): void {
    // Ramp down from the last sample played rather than step to zero; playing fades back in afterwards.
    const len = Math.min(this.fade, out.length);
    for (let i = 0; i < out.length; i++) out[i] = i < len ? (this.lastOutput * (len - i)) / len : 0;
    this.fadeInLeft = this.fade;
    this.counters.held += out.length;
  }

  /** Drops `count` samples, cross-fading across the cut; writes `fade` samples to `out`. */
  private crossfadeTrim(out: Float32Array, count: number): number {
    const f = this.fade;
    // Keep a quantum beyond the cross-fade, or the trim itself would cause an underrun.
    const drop = Math.min(Math.max(count, f), this.fifo.size - f - out.length);
    if (drop < f) return 0;
    this.fifo.peek(this.scratchA, f);
    this.fifo.drop(drop);
    this.fifo.read(this.scratchB, 0, f, this.onRun);
    for (let i = 0; i < f; i++) {
      const g = riseGain(i, f);
      out[i] = this.scratchA[i] * (1 - g) + this.scratchB[i] * g;
    }
    this.counters.trimmed += drop;
    this.counters.trims++;
    return f;
  }

  private applyFlush(out: Float32Array): void {
    this.flushPending = false;
    const len = this.playing ? this.fifo.read(out, 0, Math.min(this.fade, out.length), this.onRun) : 0;
    for (let i = 0; i < len; i++) out[i] *= 1 - riseGain(i, len);
    out.fill(0, len);
    this.counters.flushed += this.fifo.clear();
    this.settleSilence();
    if (this.started) this.counters.idle += out.length - len;
    this.playing = false;
    this.afterFlush = true;
    this.policy.onFlush(this.clock);
  }

  private silence(out: Float32Array, from: number): void {
    // A step to zero clicks; a short ramp from the last value played does not.
    if (from > 0 || this.tailLeft === 0) {
      this.tailStart = from > 0 ? out[from - 1] : this.lastOutput;
      this.tailLeft = this.tailStart === 0 ? 0 : this.fade;
    }
    for (let i = from; i < out.length; i++) {
      out[i] = this.tailLeft > 0 ? (this.tailStart * --this.tailLeft) / this.fade : 0;
    }
    const silent = out.length - from;
    if (!this.started) return;
    if (this.afterFlush) {
      this.counters.idle += silent;
      return;
    }
    this.silentRun += silent;
    if (this.fifo.size === 0) {
      this.emptyRun += silent;
      this.longestEmptyRun = Math.max(this.longestEmptyRun, this.emptyRun);
    }
  }

  private account(arrival: number, index: number, length: number): void {
    // Delay of sample k = (clock + index + k) − arrival; sum over the run in closed form.
    const first = this.clock + index - arrival;
    this.counters.delaySum += length * first + (length * (length - 1)) / 2;
    this.counters.maxDelay = Math.max(this.counters.maxDelay, first + length - 1);
    this.counters.played += length;
  }

  private isQuiet(count: number): boolean {
    if (this.probe.length < count) this.probe = new Float32Array(count);
    const probe = this.probe;
    const got = this.fifo.peek(probe, count);
    let sum = 0;
    for (let i = 0; i < got; i++) sum += probe[i] * probe[i];
    return got > 0 && Math.sqrt(sum / got) < this.quietRms;
  }
}
