/**
 * The contract between the gateway and the worker pool.
 *
 * A worker serves exactly one conversation at a time (a model instance holds
 * one conversation's state). The gateway leases one per conversation and
 * gives it back only once the worker's side of the session has closed, so the
 * next conversation always starts from fresh model state.
 */

/**
 * starting: process launched, not yet answering its health check.
 * idle: ready for a conversation. busy: leased. resetting: released, waiting
 * for the worker to report ready again. stopping: being shut down.
 * down: dead or unreachable (remote), waiting for a restart or a re-check.
 */
export type WorkerState = 'starting' | 'idle' | 'busy' | 'resetting' | 'stopping' | 'down';

export interface WorkerInfo {
  id: string;
  /** Base websocket URL of the worker's Moshi endpoint, e.g. ws://127.0.0.1:9001/api/chat */
  url: string;
  state: WorkerState;
  provider: 'local' | 'remote';
  /** GPU index the process is pinned to (local provider with a GPU list). */
  gpu?: string;
  pid?: number;
  restarts: number;
  /** ms since epoch of the last state change. */
  since: number;
  /** A note on the state for people reading /health: start-up progress, or why it is down. */
  detail?: string;
}

export interface PoolSnapshot {
  workers: WorkerInfo[];
  /** Conversations waiting for a worker. */
  queued: number;
  maxQueue: number;
  maxWorkers: number;
  /** True when a new conversation could be served or queued right now. */
  accepting: boolean;
}

export interface AcquireOptions {
  /** Aborting removes the caller from the queue (the client went away). */
  signal: AbortSignal;
  /** Called with the 1-based place in the queue whenever it changes, while waiting. */
  onQueued?: (position: number, queued: number) => void;
  /**
   * Called when no worker is idle and one is being started or readied for this
   * caller; called again whenever the worker reports new start-up progress.
   */
  onWarmingUp?: (message: string) => void;
  /**
   * Queue ahead of callers that have not waited yet, and never be turned away
   * for a full queue: for a caller retrying after a worker refused it
   * (ReleaseOutcome.refused), who already had its turn.
   */
  front?: boolean;
}

export interface ReleaseOutcome {
  healthy: boolean;
  /** The worker refused the conversation (HTTP 503 / busy): another gateway or client holds it. */
  refused?: boolean;
  /** Why, for logs. */
  reason?: string;
}

export interface Lease {
  readonly worker: WorkerInfo;
  /**
   * Gives the worker back. `healthy: false` means the session ended with the
   * worker misbehaving (stall, protocol error): the pool checks or replaces it
   * instead of handing it straight to the next caller.
   */
  release(outcome?: ReleaseOutcome): void;
  /** Fires if the worker dies or is stopped while leased. */
  readonly lost: AbortSignal;
}

/** Thrown by acquire() when the queue is full. */
export class QueueFullError extends Error {
  constructor(readonly queued: number, readonly maxQueue: number) {
    super(`All workers are busy and the queue is full (${queued}/${maxQueue} waiting). Try again in a minute.`);
    this.name = 'QueueFullError';
  }
}

/** Thrown by acquire() when no worker can ever be had (e.g. every worker failed to start). */
export class NoWorkersError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoWorkersError';
  }
}

export interface WorkerPool {
  start(): Promise<void>;
  acquire(options: AcquireOptions): Promise<Lease>;
  snapshot(): PoolSnapshot;
  /** Subscribe to state changes (metrics, health). Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  /** Stops every worker the pool started. */
  close(): Promise<void>;
}
