/** Waiting with exponential backoff: health polls, restarts. */
import { setTimeout as wait } from 'node:timers/promises';

/** A delay that starts at `firstMs` and doubles up to `maxMs`. */
export interface Backoff {
  firstMs: number;
  maxMs: number;
}

/** The delays of a backoff, forever. */
export function* delays({ firstMs, maxMs }: Backoff): Generator<number, never> {
  for (let delay = firstMs; ; delay = Math.min(delay * 2, maxMs)) yield delay;
}

/** The delay after `failures` failures in a row (the first delay after none): doubling, capped. */
export function delayAfter({ firstMs, maxMs }: Backoff, failures: number): number {
  return Math.min(maxMs, firstMs * 2 ** Math.max(0, failures));
}

/** The delay before restart number `failures` (1 after the first failure): doubling, capped. */
export function restartDelaySeconds(restart: { initialDelaySeconds: number; maxDelaySeconds: number }, failures: number): number {
  return delayAfter({ firstMs: restart.initialDelaySeconds, maxMs: restart.maxDelaySeconds }, failures - 1);
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  // The only rejection is the abort; callers branch on the boolean rather than catch.
  return wait(ms, true, { signal }).catch(() => false);
}
