/**
 * What the pool needs from a provider of workers. The pool owns the queue,
 * the leases and the decisions (start one more? stop this idle one?); a
 * provider owns the mechanics: processes and ports (local), addresses and
 * health checks (remote). Providers keep each worker's `info` up to date and
 * report every change, so the pool never polls.
 */
import type { ReleaseOutcome, WorkerInfo } from '../types.js';

/** A lease of anything but an idle worker is a pool bug: fail loudly rather than share a worker. */
export function assertIdle(info: WorkerInfo): void {
  if (info.state !== 'idle') throw new Error(`worker ${info.id} is ${info.state}, not idle`);
}

export interface ManagedWorker {
  /** Live view, updated in place by the provider. */
  readonly info: WorkerInfo;
  /** Set, in state 'down', when the worker gave up for good (crash loop): what the user should read. */
  readonly failure?: string;
  /** Down, but coming back on its own: a restart is scheduled. */
  readonly recovering: boolean;
  /** idle → busy. */
  lease(): void;
  /** busy → resetting, idle or a restart, depending on the outcome and on what the worker can report. */
  release(outcome: ReleaseOutcome): void;
  /** Stops it for good (local: terminates the process) and forgets it. */
  stop(reason: string): Promise<void>;
}

export interface ProviderEvents {
  changed(worker: ManagedWorker): void;
  removed(worker: ManagedWorker): void;
}

export interface Launch {
  worker: ManagedWorker;
  /** Settles once the process runs; rejects when it cannot be started at all (command not found, no free port). */
  spawned: Promise<void>;
}

export interface WorkerProvider {
  readonly kind: 'local' | 'remote';
  /** In the order they were added: the pool prefers earlier ones, so later extras go idle and get stopped. */
  workers(): Iterable<ManagedWorker>;
  /** Starts one more worker; absent where the set of workers is fixed (remote). */
  launch?(): Launch;
  start(): Promise<void>;
  /** Stops everything the provider started; resolves when it is all gone. */
  close(): Promise<void>;
}
