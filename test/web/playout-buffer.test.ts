import { describe, expect, it } from 'vitest';
import { PlayoutBuffer, type PlayoutPolicy } from '../../web/src/playout/playout-buffer.js';

const RATE = 24_000;
const Q = 128;
const FADE = 120;

/** A policy with fixed rules, so the tests exercise the buffer's mechanics alone. */
function fixedPolicy(startAt: number, trimAbove = Infinity, trimTo = 0): PlayoutPolicy & { underrunsSeen: number[] } {
  const seen: number[] = [];
  return {
    name: 'fixed',
    underrunsSeen: seen,
    onArrival() {},
    shouldStart: (_clock, depth) => depth >= startAt,
    onUnderrun: (clock) => void seen.push(clock),
    trimAmount: (_clock, depth) => (depth > trimAbove ? depth - trimTo : 0),
    onFlush() {},
    targetDepth: () => startAt,
  };
}

const constant = (n: number, v = 0.5) => new Float32Array(n).fill(v);

function pullMany(buffer: PlayoutBuffer, quanta: number): Float32Array {
  const all = new Float32Array(quanta * Q);
  const out = new Float32Array(Q);
  for (let i = 0; i < quanta; i++) {
    buffer.pull(out);
    all.set(out, i * Q);
  }
  return all;
}

describe('PlayoutBuffer', () => {
  it('stays silent until the policy starts it, then fades in', () => {
    const buffer = new PlayoutBuffer(fixedPolicy(480), { sampleRate: RATE, fadeSamples: FADE });
    buffer.push(constant(256));
    expect(Array.from(pullMany(buffer, 1)).every((v) => v === 0)).toBe(true);
    buffer.push(constant(1024));
    const out = pullMany(buffer, 2);
    expect(out[0]).toBe(0);
    for (let i = 1; i < FADE; i++) expect(out[i]).toBeGreaterThanOrEqual(out[i - 1]);
    expect(out[FADE / 2]).toBeCloseTo(0.25, 2);
    expect(out[FADE + 10]).toBe(0.5);
    expect(buffer.stats()).toMatchObject({ started: true, playing: true, played: 256, missed: 0 });
  });

  it('fades out when it runs dry, counts the underrun and the missed audio', () => {
    const policy = fixedPolicy(1);
    const buffer = new PlayoutBuffer(policy, { sampleRate: RATE, fadeSamples: FADE });
    buffer.push(constant(3 * Q + 64));
    const out = pullMany(buffer, 6);
    const end = 3 * Q + 64;
    expect(out[end - FADE - 1]).toBe(0.5);
    expect(out[end - 1]).toBeLessThan(0.01);
    for (let i = end - FADE; i < end; i++) expect(out[i]).toBeLessThanOrEqual(out[i - 1]);
    expect(Array.from(out.subarray(end)).every((v) => Math.abs(v) < 0.01)).toBe(true);
    expect(Array.from(out.subarray(end + FADE)).every((v) => v === 0)).toBe(true);
    const s = buffer.stats();
    expect(s.underruns).toBe(1);
    expect(policy.underrunsSeen).toEqual([end]);
    expect(s.played).toBe(end);
    expect(s.missed).toBe(6 * Q - end);
    expect(s.playing).toBe(false);
  });

  it('ramps down from the last sample instead of stepping to zero when a quantum ends exactly dry', () => {
    const buffer = new PlayoutBuffer(fixedPolicy(1), { sampleRate: RATE, fadeSamples: FADE });
    buffer.push(constant(Q));
    const out = pullMany(buffer, 2);
    expect(out[Q - 1]).toBe(0.5);
    expect(out[Q]).toBeGreaterThan(0.49);
    expect(out[Q + FADE / 2]).toBeCloseTo(0.25, 2);
    expect(out[Q + FADE]).toBe(0);
  });

  it('books a short starvation as missed and a long sender pause as idle', () => {
    const buffer = new PlayoutBuffer(fixedPolicy(1), { sampleRate: RATE, fadeSamples: FADE, idleAfterSamples: 2400 });
    buffer.push(constant(Q));
    pullMany(buffer, 1);
    pullMany(buffer, 10); // 1280 samples starved: below the idle threshold
    buffer.push(constant(Q));
    pullMany(buffer, 1);
    expect(buffer.stats()).toMatchObject({ missed: 1280, idle: 0, underruns: 1 });
    pullMany(buffer, 40); // 5120 samples: the sender paused
    buffer.push(constant(Q));
    pullMany(buffer, 1);
    expect(buffer.stats()).toMatchObject({ missed: 1280, idle: 5120 + 0, underruns: 2 });
  });

  it('trims the oldest audio with a cross-fade and counts it', () => {
    const buffer = new PlayoutBuffer(fixedPolicy(1, 2400, 1200), { sampleRate: RATE, fadeSamples: FADE });
    buffer.push(constant(Q, 0.2));
    pullMany(buffer, 1); // started, fade-in done
    // Older audio 0.2, newer 0.8: after the trim the output must come from the newer audio.
    buffer.push(constant(2400, 0.2));
    buffer.push(constant(2400, 0.8));
    const out = pullMany(buffer, 1);
    const s = buffer.stats();
    expect(s.trims).toBe(1);
    expect(s.trimmed).toBe(4800 - 1200);
    expect(out[0]).toBeCloseTo(0.2, 2);
    expect(out[FADE - 1]).toBeCloseTo(0.8, 2);
    expect(out[Q - 1]).toBeCloseTo(0.8, 6);
    expect(s.depth).toBe(1200 - Q);
  });

  it('measures the delay of every played sample from its arrival', () => {
    const buffer = new PlayoutBuffer(fixedPolicy(1), { sampleRate: RATE, fadeSamples: FADE });
    buffer.push(constant(2 * Q));
    pullMany(buffer, 2);
    // Sample k arrived at clock 0 and played at clock k.
    const s = buffer.stats();
    expect(s.delaySum / s.played).toBeCloseTo((2 * Q - 1) / 2, 6);
    expect(s.maxDelay).toBe(2 * Q - 1);
    expect(buffer.lastPullDelay).toBeCloseTo(Q + (Q - 1) / 2, 6);
  });

  it('flush drops everything at once, with a fade, and what follows is idle rather than missed', () => {
    const buffer = new PlayoutBuffer(fixedPolicy(1), { sampleRate: RATE, fadeSamples: FADE });
    buffer.push(constant(24_000));
    pullMany(buffer, 4);
    buffer.flush();
    const out = pullMany(buffer, 3);
    expect(out[0]).toBeCloseTo(0.5, 2);
    expect(out[FADE - 1]).toBeLessThan(0.01);
    expect(Array.from(out.subarray(FADE)).every((v) => v === 0)).toBe(true);
    const s = buffer.stats();
    expect(s.flushed).toBe(24_000 - 4 * Q - FADE);
    expect(s.depth).toBe(0);
    expect(s.missed).toBe(0);
    expect(s.idle).toBe(3 * Q - FADE);
    expect(s.underruns).toBe(0);
    // A new reply after the flush plays again from a fade-in.
    buffer.push(constant(1000));
    const again = pullMany(buffer, 1);
    expect(again[0]).toBe(0);
    expect(again[FADE + 1]).toBe(0.5);
  });

  it('holds playback for a quantum when the policy asks, only where the audio due is quiet, and counts it', () => {
    let holds = 2;
    const policy: PlayoutPolicy = { ...fixedPolicy(1), shouldHold: () => holds-- > 0 };
    const buffer = new PlayoutBuffer(policy, { sampleRate: RATE, fadeSamples: FADE });
    buffer.push(constant(2 * Q, 0.5));
    buffer.push(constant(2 * Q, 0.001));
    pullMany(buffer, 2);
    // The policy would have held at once: loud audio is never held.
    expect(buffer.stats().held).toBe(0);
    expect(holds).toBe(2);
    const held = pullMany(buffer, 2);
    expect(held[0]).toBeCloseTo(0.5, 2); // ramps down from the last sample played
    expect(Array.from(held.subarray(FADE)).every((v) => v === 0)).toBe(true);
    let s = buffer.stats();
    expect(s.held).toBe(2 * Q);
    expect(s.depth).toBe(2 * Q);
    expect(s.underruns).toBe(0);
    const resumed = pullMany(buffer, 1);
    expect(resumed[0]).toBe(0); // fades back in
    expect(resumed[Q - 1]).toBeCloseTo(0.001, 6);
    s = buffer.stats();
    expect(s.played + s.held).toBe(s.clock);
  });

  it('accounts for every output sample', () => {
    const buffer = new PlayoutBuffer(fixedPolicy(600), { sampleRate: RATE, fadeSamples: FADE });
    buffer.push(constant(500));
    pullMany(buffer, 3); // not started: start-up silence is neither played nor missed
    buffer.push(constant(700));
    pullMany(buffer, 20);
    const s = buffer.stats();
    expect(s.played).toBe(1200);
    expect(s.played + s.missed + s.idle + 3 * Q).toBe(s.clock);
  });
});
