/**
 * The worker pool: a slot of a worker per conversation, a capped line for the rest.
 *
 * Everything runs from one place, `pump()`, called after every change (a
 * worker changed state, someone joined or left the line): hand free slots
 * to the first in line, start workers for those still waiting, keep the warm
 * ones, time out the extra idle ones, and turn everyone away once no worker
 * can ever serve them. A slot is handed out only while the worker reports it
 * free and is taken in the same step, so a worker never holds more
 * conversations than its slots.
 *
 * The pool knows providers only through WorkerProvider and their
 * capabilities; nothing here names one.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { RepeatingPass } from '../util/repeating-pass.js';
import type { LeaseTicket, PoolLimits, PoolWorker, ProviderEvents, WorkerProvider } from './provider.js';
import {
  NoWorkersError,
  QueueFullError,
  type AcquireOptions,
  type DialInfo,
  type Lease,
  type PoolSnapshot,
  type ReleaseOutcome,
  type WorkerInfo,
  type WorkerPool,
} from './types.js';
import { WaitQueue, type QueueEntry } from './wait-queue.js';

export type PoolSettings = PoolLimits;

interface Waiter extends QueueEntry {
  options: AcquireOptions;
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  /** Last start-up message told to this waiter. */
  warmingTold?: string;
  stopListening(): void;
}

class PoolLease implements Lease {
  readonly worker: WorkerInfo;
  readonly #lost = new AbortController();
  #released = false;

  constructor(
    readonly managed: PoolWorker,
    private readonly ticket: LeaseTicket,
    private readonly onRelease: (lease: PoolLease, outcome: ReleaseOutcome) => void,
  ) {
    this.worker = { ...managed.info };
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  dial(): Promise<DialInfo> {
    if (this.#lost.signal.aborted) return Promise.reject(this.#lost.signal.reason);
    if (this.#released) return Promise.reject(new Error(`the lease of ${this.worker.id} was released`));
    return this.ticket.dial();
  }

  release(outcome: ReleaseOutcome = { healthy: true }): void {
    if (this.#released) return;
    this.#released = true;
    this.onRelease(this, outcome);
  }

  lose(reason: Error): void {
    this.#lost.abort(reason);
  }
}

const SERVING_STATES = new Set(['idle', 'busy', 'resetting', 'starting']);

export class Pool implements WorkerPool {
  readonly #provider: WorkerProvider;
  readonly #queue = new WaitQueue<Waiter>((waiter, position, queued) => this.#safely(() => waiter.options.onQueued?.(position, queued)));
  /** Live leases by worker: at most its slots each. */
  readonly #leases = new Map<PoolWorker, Set<PoolLease>>();
  readonly #idleTimers = new Map<PoolWorker, NodeJS.Timeout>();
  readonly #listeners = new Set<() => void>();
  /** Set when a worker crash-looped: no new worker is started until `until`. */
  #blocked?: { worker: PoolWorker; message: string; until: number };
  #started?: Promise<void>;
  /** While start() runs: the spawn results of the warm workers it launches, to report a command that cannot run. */
  #startupSpawns?: Promise<void>[];
  /** Set the moment close() is called; the provider reports its workers stopping while #closing runs. */
  #closed = false;
  #closing?: Promise<void>;
  readonly #pumping = new RepeatingPass();
  #changeScheduled = false;

  constructor(
    private readonly settings: PoolSettings,
    private readonly log: Logger,
    createProvider: (events: ProviderEvents) => WorkerProvider,
  ) {
    this.#provider = createProvider({
      changed: (worker) => this.#onWorkerChanged(worker),
      removed: (worker) => this.#onWorkerRemoved(worker),
    });
  }

  /**
   * Lets the provider adopt or check its workers, then starts the warm ones.
   * Resolves once the processes run, not once they are ready (a model can
   * take minutes to load; acquire() waits for it). Rejects when a worker
   * cannot be started at all, e.g. its command does not exist.
   */
  start(): Promise<void> {
    this.#started ??= (async () => {
      if (this.#closed) throw new NoWorkersError('The worker pool was closed before it started.');
      await this.#provider.start();
      const spawns: Promise<void>[] = [];
      this.#startupSpawns = spawns;
      this.#pump();
      this.#startupSpawns = undefined;
      await Promise.all(spawns);
    })();
    return this.#started;
  }

  acquire(options: AcquireOptions): Promise<Lease> {
    if (this.#closed) return Promise.reject(new NoWorkersError(this.#whyNoWorkers()));
    if (options.signal.aborted) return Promise.reject(options.signal.reason);
    if (this.#queue.length === 0) {
      const free = this.#firstWithRoom();
      if (free) return Promise.resolve(this.#lease(free));
    }
    if (!this.#canEverServe()) return Promise.reject(new NoWorkersError(this.#whyNoWorkers()));
    // A retry (front) was let in once already and is not turned away now.
    const waitingForBusy = this.#waitingForBusy();
    if (!options.front && waitingForBusy >= this.settings.maxQueue) {
      return Promise.reject(new QueueFullError(Math.max(0, waitingForBusy), this.settings.maxQueue));
    }

    return new Promise<Lease>((resolve, reject) => {
      const onAbort = () => {
        if (!this.#queue.remove(waiter)) return;
        this.log.debug({ queued: this.#queue.length }, 'a waiting conversation left the queue');
        reject(options.signal.reason);
        this.#pump();
      };
      const waiter: Waiter = {
        front: options.front === true,
        options,
        resolve,
        reject,
        stopListening: () => options.signal.removeEventListener('abort', onAbort),
      };
      options.signal.addEventListener('abort', onAbort, { once: true });
      this.#queue.add(waiter);
      this.log.debug({ queued: this.#queue.length }, 'a conversation is waiting for a worker');
      this.#pump();
    });
  }

  snapshot(): PoolSnapshot {
    const live = [...this.#provider.workers()];
    const workers = live.map((w) => ({ ...w.info, ...(w.info.details && { details: { ...w.info.details } }) }));
    const hasRoom = live.some((w) => w.freeSlots > 0);
    return {
      workers,
      queued: this.#queue.length,
      maxQueue: this.settings.maxQueue,
      maxWorkers: this.settings.maxWorkers,
      accepting: !this.#closed && this.#canEverServe() && (hasRoom || this.#waitingForBusy() < this.settings.maxQueue),
    };
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  registerMetrics(registry: Registry): void {
    this.#provider.registerMetrics?.(registry);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      for (const timer of this.#idleTimers.values()) clearTimeout(timer);
      this.#idleTimers.clear();
      const shuttingDown = new NoWorkersError(this.#whyNoWorkers());
      for (const waiter of this.#queue.drain()) {
        waiter.stopListening();
        waiter.reject(shuttingDown);
      }
      await this.#provider.close();
      for (const leases of this.#leases.values()) for (const lease of leases) lease.lose(new Error('the worker pool is closing'));
      this.#leases.clear();
      this.#changed();
      this.log.info('worker pool closed');
    })();
    return this.#closing;
  }

  #pump(): void {
    const ran = this.#pumping.run(() => {
      if (this.#closed) return;
      this.#serveWaiters();
      this.#scaleUp();
      this.#turnAwayIfHopeless();
      this.#tellWarming();
      this.#timeIdleWorkers();
    });
    // A nested pump only asked the running one to go again; that one reports the change.
    if (ran) this.#changed();
  }

  #serveWaiters(): void {
    for (let free = this.#firstWithRoom(); free && this.#queue.length; free = this.#firstWithRoom()) {
      const waiter = this.#queue.shift()!;
      waiter.stopListening();
      waiter.resolve(this.#lease(free));
    }
  }

  #scaleUp(): void {
    const slots = Math.max(1, this.#provider.launchSlots);
    for (let missing = this.#queue.length - this.#comingSlots(); missing > 0 && this.#canLaunch(); missing -= slots) this.#launch();
    while (this.#servingCount() < this.settings.warm && this.#canLaunch()) this.#launch();
  }

  #turnAwayIfHopeless(): void {
    if (this.#queue.length === 0 || this.#canEverServe()) return;
    const err = new NoWorkersError(this.#whyNoWorkers());
    this.log.warn({ waiting: this.#queue.length }, 'no worker can serve the waiting conversations');
    for (const waiter of this.#queue.drain()) {
      waiter.stopListening();
      waiter.reject(err);
    }
  }

  /** The first waiters hear what the workers starting for them report, e.g. model loading progress. */
  #tellWarming(): void {
    const starting = this.#workers().filter((w) => w.info.state === 'starting' || isRecovering(w));
    const waiters = this.#queue.entries;
    for (let i = 0; i < Math.min(starting.length, waiters.length); i++) {
      const { info } = starting[i];
      const message =
        info.state === 'down'
          ? `A worker is restarting (${info.detail ?? 'it stopped'}).`
          : `Starting a worker${info.detail ? `: ${info.detail}` : ''}. Loading models can take a few minutes.`;
      if (waiters[i].warmingTold === message) continue;
      waiters[i].warmingTold = message;
      this.#safely(() => waiters[i].options.onWarmingUp?.(message));
    }
  }

  /** Idle workers beyond `warm` are stopped once idle for idleTimeoutSeconds. */
  #timeIdleWorkers(): void {
    if (!this.#provider.launch) return;
    const extra = this.#servingCount() > this.settings.warm;
    for (const worker of this.#workers()) {
      const timer = this.#idleTimers.get(worker);
      if (worker.info.state === 'idle' && extra) {
        if (!timer) this.#idleTimers.set(worker, setTimeout(() => this.#stopIfStillIdle(worker), this.settings.idleTimeoutSeconds * 1000).unref());
      } else if (timer) {
        clearTimeout(timer);
        this.#idleTimers.delete(worker);
      }
    }
  }

  #stopIfStillIdle(worker: PoolWorker): void {
    this.#idleTimers.delete(worker);
    if (this.#closed || worker.info.state !== 'idle' || this.#servingCount() <= this.settings.warm) return;
    this.log.info({ worker: worker.info.id }, `stopping ${worker.info.id}: idle for ${this.settings.idleTimeoutSeconds} s beyond the ${this.settings.warm} warm worker(s)`);
    void worker.stop(`idle for ${this.settings.idleTimeoutSeconds} s`);
  }

  #lease(worker: PoolWorker): PoolLease {
    const ticket = worker.lease();
    const lease = new PoolLease(worker, ticket, (l, outcome) => this.#release(l, outcome));
    let leases = this.#leases.get(worker);
    if (!leases) this.#leases.set(worker, (leases = new Set()));
    leases.add(lease);
    this.log.debug({ worker: worker.info.id, conversations: leases.size, slots: worker.info.slots }, 'worker leased');
    return lease;
  }

  #release(lease: PoolLease, outcome: ReleaseOutcome): void {
    // A lease whose worker died was already taken back; its release has nothing left to do.
    const leases = this.#leases.get(lease.managed);
    if (!leases?.delete(lease)) return;
    if (leases.size === 0) this.#leases.delete(lease.managed);
    const { id } = lease.managed.info;
    if (outcome.refused) this.log.info({ worker: id, reason: outcome.reason }, `${id} refused the conversation; it is skipped until it reports free`);
    else if (!outcome.healthy) this.log.warn({ worker: id, reason: outcome.reason }, `${id} misbehaved; checking or replacing it`);
    else this.log.debug({ worker: id }, 'worker released');
    lease.managed.release(outcome);
  }

  #launch(): void {
    // A crash-looped worker is kept only to show why in snapshots; a new attempt replaces it.
    for (const worker of this.#workers()) if (worker.failure) void worker.stop('replaced by a new attempt');
    this.#blocked = undefined;
    const launch = this.#provider.launch!();
    // start() reports spawn failures; elsewhere they arrive as the worker's state.
    if (this.#startupSpawns) this.#startupSpawns.push(launch.spawned);
    else launch.spawned.catch(() => undefined);
    this.log.info({ worker: launch.worker.info.id }, `starting ${launch.worker.info.id}`);
  }

  #onWorkerChanged(worker: PoolWorker): void {
    const leases = this.#leases.get(worker);
    // A worker holds conversations only while busy: leaving busy otherwise than by its last release loses them.
    if (leases && worker.info.state !== 'busy') {
      this.#leases.delete(worker);
      const reason = `worker ${worker.info.id} ${worker.info.state === 'stopping' ? 'was stopped' : 'failed'}${worker.info.detail ? `: ${worker.info.detail}` : ''}`;
      this.log.warn({ worker: worker.info.id, conversations: leases.size }, `lost a worker during a conversation: ${reason}`);
      for (const lease of leases) lease.lose(new Error(reason));
    }
    if (worker.failure && worker.info.state === 'down' && this.#blocked?.worker !== worker) {
      this.#blocked = { worker, message: worker.failure, until: Date.now() + this.#provider.cooldownSeconds * 1000 };
    }
    this.#pump();
  }

  #onWorkerRemoved(worker: PoolWorker): void {
    const timer = this.#idleTimers.get(worker);
    if (timer) clearTimeout(timer);
    this.#idleTimers.delete(worker);
    this.#onWorkerChanged(worker);
  }

  #whyNoWorkers(): string {
    if (this.#closed) return 'The server is shutting down; try again in a moment.';
    if (this.#blocked && Date.now() < this.#blocked.until) {
      const seconds = Math.ceil((this.#blocked.until - Date.now()) / 1000);
      return `${this.#blocked.message}\nA new worker will be tried for conversations that start in ${seconds} s or later.`;
    }
    const down = this.#workers().filter((w) => w.info.state === 'down');
    if (this.#provider.capabilities.fixedSet && down.length) {
      return `No worker is reachable:\n${down.map((w) => `  ${w.info.id} (${w.info.url}): ${w.info.detail ?? 'down'}`).join('\n')}\nCheck that the workers are running and that the gateway can reach them.`;
    }
    return 'No worker is available. Check the gateway log.';
  }

  #workers(): PoolWorker[] {
    return [...this.#provider.workers()];
  }

  /** The earliest worker with a free slot: earlier workers fill first, so later extras go idle and get stopped. */
  #firstWithRoom(): PoolWorker | undefined {
    return this.#workers().find((w) => w.freeSlots > 0);
  }

  /** Slots of workers that are, or soon will be, able to take a conversation without waiting for one to end. */
  #comingSlots(): number {
    let slots = 0;
    for (const w of this.#workers()) if (w.info.state === 'starting' || w.info.state === 'resetting' || isRecovering(w)) slots += w.info.slots;
    return slots;
  }

  /**
   * Callers a starting (or soon free) worker will serve do not count against
   * maxQueue: it caps only those left waiting for a busy worker to finish.
   */
  #waitingForBusy(): number {
    return this.#queue.length - this.#comingSlots() - this.#launchableSlots();
  }

  /** Stopping workers still hold their port and GPU until they are gone, so they count. */
  #liveCount(): number {
    return this.#workers().filter((w) => !w.failure).length;
  }

  /** Workers counted for `warm` and idle stops: not given up, not on their way out. */
  #servingCount(): number {
    return this.#workers().filter((w) => !w.failure && w.info.state !== 'stopping').length;
  }

  #canLaunch(): boolean {
    if (!this.#provider.launch || this.#closed) return false;
    if (this.#blocked && Date.now() < this.#blocked.until) return false;
    return this.#liveCount() < this.settings.maxWorkers;
  }

  #launchableSlots(): number {
    return this.#canLaunch() ? (this.settings.maxWorkers - this.#liveCount()) * Math.max(1, this.#provider.launchSlots) : 0;
  }

  #canEverServe(): boolean {
    return this.#canLaunch() || this.#workers().some((w) => SERVING_STATES.has(w.info.state) || isRecovering(w));
  }

  /** Listeners hear about a burst of changes once, after it. */
  #changed(): void {
    if (this.#changeScheduled) return;
    this.#changeScheduled = true;
    queueMicrotask(() => {
      this.#changeScheduled = false;
      for (const listener of this.#listeners) this.#safely(listener);
    });
  }

  #safely(callback: () => void): void {
    try {
      callback();
    } catch (err) {
      this.log.error({ err }, 'a pool listener threw');
    }
  }
}

/** Down, but a restart is already on its way. */
function isRecovering(worker: PoolWorker): boolean {
  return worker.info.state === 'down' && worker.recovering;
}
