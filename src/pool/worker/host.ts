/**
 * The host interface: the little a provider that launches workers must do.
 * Start one worker instance and say where it listens, end it, report that
 * it ended on its own (a process exit, a sandbox exit, a pod deletion), and
 * report progress while it starts. Everything else (readiness, health
 * polling, restarts with backoff, giving up, reset after a conversation,
 * leases) is HostedWorker's, the same for every host.
 */
import type { Registry } from 'prom-client';
import type { Probe } from '../health.js';
import type { DialInfo, WorkerDetails, WorkerState } from '../types.js';

/** Where a worker goes, chosen once per worker and kept across its restarts (local: a GPU). */
export interface Placement {
  readonly gpu?: string;
  /** The worker is gone for good: its place is free for another. */
  release(): void;
}

export interface StartRequest {
  workerId: string;
  /** 0 for a worker's first start, then 1, 2, … */
  restarts: number;
  placement?: Placement;
  /**
   * Aborted when the worker is stopped, or was not ready in time, while the
   * host is still starting it: give up and reject (or resolve; the instance
   * is then terminated at once).
   */
  signal: AbortSignal;
  /**
   * Start-up progress ("waiting for a GPU", "pulling the image"): shown to
   * waiting callers and in /health. Each new message restarts the ready
   * timeout, so a slow start that moves is not taken for a stuck one. With
   * `step` (the message without what changes within it, e.g. "waiting for a
   * GPU" for "waiting for a GPU (12 s)"), only a new step restarts it, so an
   * elapsed time ticking is not taken for movement. May be called after
   * start() resolved, while the worker is still starting.
   */
  progress(message: string, step?: string): void;
}

/** One running worker: a process, a sandbox, a pod. */
export interface HostedInstance {
  /** The websocket chat URL it listens on, shown in /health. */
  readonly url: string;
  /** Where readiness is checked, for messages ("not ready at … within 600 s"). */
  readonly readinessTarget: string;
  readonly pid?: number;
  /**
   * One health check (health.ts's probeHealth() over HTTP for most hosts).
   * Called while it starts, and after each conversation until it is free.
   */
  probe(signal: AbortSignal): Promise<Probe>;
  /** How the gateway connects for one lease: URL and per-lease credentials. */
  dial(): Promise<DialInfo>;
  /** Resolves once it is gone, however it ended, with how ("its process exited with code 1"). Never rejects. */
  readonly ended: Promise<string>;
  /** Ends it, gracefully then by force; `ended` resolves once it is gone. Idempotent. */
  terminate(): void;
  /** Provider-specific facts for /health (sandbox id, pod name, GPU type). Read at every state change. */
  details?(): WorkerDetails | undefined;
  /** Its last lines of output, quoted when the worker gives up; absent when the host has none. */
  lastOutput?(lines: number): string[];
  /** The worker's state whenever it changes while this instance is attached (for accounting, e.g. sandbox-seconds by state). */
  observe?(state: WorkerState): void;
}

export interface WorkerHost {
  /** Chooses where a new worker goes (local: the least loaded GPU). */
  place?(workerId: string): Placement;
  /** Starts one instance. Resolves once it runs, not once it is ready. Rejects with WorkerStartError. */
  start(request: StartRequest): Promise<HostedInstance>;
  /**
   * Instances an earlier gateway left running that this one takes over,
   * at most `limit`; the host ends the rest itself. Called once, at start.
   */
  adopt?(limit: number): Promise<HostedInstance[]>;
  /** The last sentence when a worker gives up: what to fix, naming the setting. */
  readonly fixHint: string;
  /**
   * Its instances serve one conversation each (Kubernetes pods, deleted after it): a worker stops
   * for good after its conversation, or when its instance ends, instead of resetting or restarting;
   * the pool starts new ones as callers come.
   */
  readonly singleUse?: boolean;
  registerMetrics?(registry: Registry): void;
  /** Called after every worker stopped: free what the host holds (a watchdog, a client). */
  close?(): Promise<void>;
}

/** A start that failed before the instance ran. Its message is for the user. */
export class WorkerStartError extends Error {
  /** True when trying again may work (no capacity right now); false when it cannot (command not found). */
  readonly retryable: boolean;

  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'WorkerStartError';
    this.retryable = options.retryable ?? false;
  }
}
