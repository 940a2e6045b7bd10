/**
 * The clock a session's reply audio leaves by: tick n is due at
 * start + n × period, each target computed from the start rather than
 * chained from the previous tick, so timer lateness never adds up. A tick
 * that comes late is followed by the ones it held up at once, which keeps
 * the stream on time; after a stall longer than `maxCatchUpMs` (the event
 * loop was blocked) the clock starts afresh instead of bursting out a long
 * backlog the client could no longer play in time.
 */
export interface OutputClockOptions {
  periodMs: number;
  maxCatchUpMs: number;
  /** The clock read (performance.now by default) and the timer it waits on (setTimeout): replaceable for tests. */
  now?: () => number;
  timers?: Timers;
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const NODE_TIMERS: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface OutputClockStats {
  ticks: number;
  /** The latest any tick ran behind its target (ms): what a blocked event loop cost the audio. */
  worstLateMs: number;
  /** Ticks that ran more than a quarter period late. */
  lateTicks: number;
  /** Fresh starts after a stall beyond maxCatchUpMs. */
  restarts: number;
}

/** Timers may fire a little early on performance.now()'s clock (Node schedules them on a cached millisecond clock). */
const EARLY_TOLERANCE_MS = 1;

export class OutputClock {
  private readonly now: () => number;
  private readonly timers: Timers;
  private startAt = 0;
  private n = 0;
  private timer: unknown;
  private running = false;
  readonly stats: OutputClockStats = { ticks: 0, worstLateMs: 0, lateTicks: 0, restarts: 0 };

  constructor(
    private readonly tick: () => void,
    private readonly options: OutputClockOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? NODE_TIMERS;
  }

  get started(): boolean {
    return this.running;
  }

  /** The first tick is due at `at`. */
  start(at = this.now()): void {
    if (this.running) return;
    this.running = true;
    this.startAt = at;
    this.n = 0;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
  }

  private due(n: number): number {
    return this.startAt + n * this.options.periodMs;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.timers.set(() => this.fire(), Math.max(0, this.due(this.n) - this.now()));
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.now();
    const late = now - this.due(this.n);
    if (late > this.options.maxCatchUpMs) {
      this.stats.restarts++;
      this.startAt = now;
      this.n = 0;
    }
    if (late > -EARLY_TOLERANCE_MS) this.record(Math.max(0, late));
    while (this.running && this.due(this.n) <= now + EARLY_TOLERANCE_MS) {
      this.n++;
      this.stats.ticks++;
      this.tick();
    }
    this.schedule();
  }

  private record(lateMs: number): void {
    if (lateMs > this.stats.worstLateMs) this.stats.worstLateMs = lateMs;
    if (lateMs > this.options.periodMs / 4) this.stats.lateTicks++;
  }
}
