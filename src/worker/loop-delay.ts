/**
 * How long the worker's event loop was held up, from Node's own sampler
 * (perf_hooks.monitorEventLoopDelay): the output clock can only be as steady
 * as the loop that runs it, so a stall shows here first.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface LoopDelay {
  /** Percentiles and maximum of the delay beyond the sampler's own 10 ms timer (ms). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** ms of wall time the figures cover. */
  windowMs: number;
}

/** The sampler's timer; Node records the whole interval between its callbacks, so this much is no delay. */
const RESOLUTION_MS = 10;

/**
 * Samples only while a conversation runs (start/stop): an idle worker, of
 * which a gateway may keep dozens warm, should not wake 100 times a second.
 * Between conversations the figures are the last one's.
 */
export class LoopDelayMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private since = performance.now();
  private until: number | undefined;

  /** Starts a new window (a new conversation). */
  start(): void {
    this.histogram.reset();
    this.histogram.enable();
    this.since = performance.now();
    this.until = undefined;
  }

  /** Ends the window; its figures stay readable. */
  stop(): void {
    this.histogram.disable();
    this.until ??= performance.now();
  }

  snapshot(): LoopDelay {
    const h = this.histogram;
    const ms = (ns: number) => Math.max(0, Math.round((Number.isFinite(ns) ? ns : 0) / 1e4 - RESOLUTION_MS * 100) / 100);
    const count = h.count;
    return {
      p50Ms: count > 0 ? ms(h.percentile(50)) : 0,
      p99Ms: count > 0 ? ms(h.percentile(99)) : 0,
      maxMs: count > 0 ? ms(h.max) : 0,
      meanMs: count > 0 ? ms(h.mean) : 0,
      windowMs: Math.round((this.until ?? performance.now()) - this.since),
    };
  }

  dispose(): void {
    this.stop();
  }
}
