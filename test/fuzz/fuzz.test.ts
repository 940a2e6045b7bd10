/**
 * A short run of every fuzz target (test/fuzz/targets.ts) on each test run,
 * with a fresh seed each time; fast-check prints the seed and the smallest
 * failing input when a property breaks. The long run (a million inputs each)
 * is `node --import tsx test/fuzz/long-run.ts`.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { samplingTarget, TARGETS } from './targets.js';

/** Inputs per target: enough to reach every branch the arbitraries aim at, small enough for a busy machine. */
const RUNS: Record<string, number> = { 'config loader': 1500 };
const DEFAULT_RUNS = 5000;

describe('fuzzing, short run', () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${target.covers}`, () => {
      fc.assert(
        fc.property(target.arbitrary, (input) => target.check(input)),
        { numRuns: RUNS[target.name] ?? DEFAULT_RUNS },
      );
    }, 120_000);
  }
});

describe('inputs the fuzzers found, kept as regressions', () => {
  it('query parameters named after Object.prototype properties pass through as unknown ones', () => {
    for (const name of ['valueOf', 'constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      samplingTarget.check([[name, '0']]);
      samplingTarget.check([[name, 'not a number']]);
    }
  });

  it('an empty persona means unset, and survives the round trip', () => {
    samplingTarget.check([['persona', '']]);
  });
});
