import { InvalidArgumentError } from 'commander';
import type { Logger } from '../util/logger.js';

export function intOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

export function numberOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
}

/** What supervisors and terminals send to stop a process: systemd, Docker and Kubernetes SIGTERM, a terminal SIGINT or SIGHUP. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const;

/** Signals closer together than this are one request to stop. */
const REPEAT_WINDOW_MS = 1000;

export interface ShutdownOptions {
  /** How long `stop` may take before the process exits anyway (its own grace period plus time to stop workers). */
  forceAfterMs?: number;
}

/**
 * Runs `stop` once on the first stop signal, then exits 0 (1 if it failed).
 * A second signal (a second or more later) aborts `hurry`, for a caller that waits out a grace period
 * to skip the wait (workers are still stopped); a third exits at once.
 */
export function onShutdown(log: Logger, stop: (hurry: AbortSignal) => Promise<void>, options: ShutdownOptions = {}): void {
  const hurry = new AbortController();
  let signals = 0;
  let lastAt = -Infinity;
  const handler = (signal: string) => {
    // A terminal's Ctrl-C reaches the whole process group, and `npm start` passes it on too: one press, two deliveries.
    const now = performance.now();
    if (now - lastAt < REPEAT_WINDOW_MS) return;
    lastAt = now;
    signals++;
    if (signals === 2) {
      log.warn({ signal }, 'stopping now, without waiting for conversations to finish (once more to exit at once)');
      return hurry.abort();
    }
    if (signals > 2) process.exit(1);
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, options.forceAfterMs ?? 10_000);
    force.unref();
    stop(hurry.signal).then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  for (const signal of STOP_SIGNALS) process.on(signal, () => handler(signal));
}
