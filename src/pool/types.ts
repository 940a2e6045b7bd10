/**
 * The contract between the gateway and the worker pool.
 *
 * A worker serves at most `slots` conversations at a time (our worker and
 * Kyutai's Python server: one, as a model instance holds one conversation's
 * state). The gateway leases a slot per conversation and gives it back only
 * once the worker's side of the session has closed, so the next conversation
 * always starts from fresh model state.
 */
import type { Registry } from 'prom-client';

/**
 * starting: launched (or not checked yet), not yet answering its health check.
 * idle: ready, no conversation. busy: holds at least one conversation.
 * resetting: released, waiting for the worker to report ready again.
 * stopping: being shut down. down: dead or unreachable, waiting for a restart or a re-check.
 */
export type WorkerState = 'starting' | 'idle' | 'busy' | 'resetting' | 'stopping' | 'down';

/** Provider-specific facts shown in /health: a GPU type, a sandbox id, a pod name. */
export type WorkerDetails = Record<string, string | number | boolean>;

export interface WorkerInfo {
  id: string;
  /** Websocket URL of the worker's Moshi endpoint, e.g. ws://127.0.0.1:9001/api/chat. The gateway dials Lease.dial(), not this. */
  url: string;
  state: WorkerState;
  /** Name of the provider that runs it (see src/pool/registry.ts). */
  provider: string;
  /** Conversations it can hold at once. */
  slots: number;
  /** Conversations it holds now (never more than `slots`). */
  conversations: number;
  /** GPU the worker is placed on (local: the CUDA_VISIBLE_DEVICES id). */
  gpu?: string;
  pid?: number;
  restarts: number;
  /** ms since epoch of the last state change. */
  since: number;
  /** A note on the state for people reading /health: start-up progress, or why it is down. */
  detail?: string;
  details?: WorkerDetails;
  /**
   * False for a worker without a health endpoint (Kyutai's servers). Such a
   * worker, busy with a client of its own, upgrades a second caller and then
   * says nothing: the gateway takes that silence as "busy" (docs/kyutai.md).
   */
  healthEndpoint?: boolean;
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

/** How to reach a leased worker: what the gateway passes to its websocket client. */
export interface DialInfo {
  url: string;
  /** Sent with the upgrade request, e.g. a per-lease Authorization header. */
  headers?: Record<string, string>;
  /** Websocket subprotocols. */
  protocols?: string[];
  /**
   * Certificate authorities (PEM) to trust for a wss:// URL, instead of
   * Node's defaults: for endpoints signed by a private CA (a stand-in of a
   * cloud's endpoint in tests, a cluster's own CA).
   */
  ca?: string[];
}

export interface Lease {
  readonly worker: WorkerInfo;
  /**
   * Where and how to connect for this lease. Providers whose workers need
   * per-conversation credentials (a tunnel token, a pod's auth) make them
   * here; for others it is just the worker's URL. Rejects when the worker
   * cannot be reached any more; release the lease then.
   */
  dial(): Promise<DialInfo>;
  /**
   * Gives the slot back. `healthy: false` means the session ended with the
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
  /** Lets the provider add its own metrics (e.g. sandbox-seconds by GPU type) to the gateway's registry. */
  registerMetrics?(registry: Registry): void;
  /** Stops every worker the pool started. */
  close(): Promise<void>;
}
