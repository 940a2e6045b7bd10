/**
 * The output clock's arithmetic, on a simulated event loop (a clock and one
 * timer queue the test runs by hand): targets come from the start, so
 * neither slow ticks nor late timers make it drift; a stall is caught up at
 * once, and a stall beyond maxCatchUpMs starts it afresh instead of bursting.
 */
import { describe, expect, it } from 'vitest';
import { OutputClock, type Timers } from '../../src/worker/output-clock.js';

/** A stand-in event loop: time only moves when the test runs it, or when a callback "takes" time. */
class SimulatedLoop implements Timers {
  now = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;

  set(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.now + ms, fn, id });
    return id;
  }

  clear(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Fires timers in order until `until`; a callback that spends time moves `now` on. */
  runUntil(until: number): void {
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.now = Math.max(this.now, next.at);
      next.fn();
    }
    this.now = Math.max(this.now, until);
  }
}

function clockWith(onTick: (n: number, loop: SimulatedLoop) => void) {
  const loop = new SimulatedLoop();
  const ticks: number[] = [];
  let n = 0;
  const clock = new OutputClock(
    () => {
      ticks.push(loop.now);
      onTick(n++, loop);
    },
    { periodMs: 80, maxCatchUpMs: 1000, now: () => loop.now, timers: loop },
  );
  clock.start(0);
  return { clock, ticks, loop };
}

describe('output clock', () => {
  it('ticks once per period from its start, on the start-based grid', () => {
    const { clock, ticks, loop } = clockWith(() => {});
    loop.runUntil(800);
    expect(ticks).toEqual([0, 80, 160, 240, 320, 400, 480, 560, 640, 720, 800]);
    expect(clock.stats).toMatchObject({ ticks: 11, lateTicks: 0, restarts: 0, worstLateMs: 0 });
  });

  it('does not drift when every tick takes time', () => {
    // Each tick spends 30 ms: a chained setTimeout(80) would slip by 30 ms a tick, 3 s over these 100 ticks.
    const { ticks, loop } = clockWith((_, l) => (l.now += 30));
    loop.runUntil(8000);
    expect(ticks).toHaveLength(101);
    expect(ticks.every((t, i) => t === i * 80)).toBe(true);
  });

  it('catches up at once after a stall, then keeps the grid', () => {
    // The fifth tick blocks the loop for 250 ms (a slow synchronous call).
    const { clock, ticks, loop } = clockWith((n, l) => n === 4 && (l.now += 250));
    loop.runUntil(800);
    // Ticks 5-7 fell due during the stall and go out together right after it.
    expect(ticks).toEqual([0, 80, 160, 240, 320, 570, 570, 570, 640, 720, 800]);
    expect(clock.stats.worstLateMs).toBe(170);
    expect(clock.stats.lateTicks).toBe(1);
    expect(clock.stats.restarts).toBe(0);
  });

  it('starts afresh after a stall beyond maxCatchUpMs instead of bursting out the backlog', () => {
    const { clock, ticks, loop } = clockWith((n, l) => n === 2 && (l.now += 2000));
    loop.runUntil(2400);
    expect(clock.stats.restarts).toBe(1);
    // One tick when the loop came back, then a new grid from there: not 25 frames at once.
    expect(ticks).toEqual([0, 80, 160, 2160, 2240, 2320, 2400]);
  });

  it('stops ticking when stopped', () => {
    const { clock, ticks, loop } = clockWith(() => {});
    loop.runUntil(160);
    clock.stop();
    loop.runUntil(1000);
    expect(ticks).toEqual([0, 80, 160]);
  });
});
