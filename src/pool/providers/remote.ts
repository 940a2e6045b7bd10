/**
 * Remote workers: a fixed list of addresses of workers running elsewhere
 * (our `quillman worker`, or Kyutai's servers), checked over HTTP every
 * healthIntervalSeconds and marked down or up accordingly. The pool cannot
 * start or stop them; a URL listed twice is two workers on one server (Kyutai's
 * Rust backend serves several conversations at once).
 *
 * Other clients may use the same workers. A worker that says it is busy, or
 * that refused a conversation, is skipped until a check finds it free again.
 */
import type { Logger } from 'pino';
import type { RemotePoolConfig } from '../config.js';
import { probeHealth, type Probe } from '../health.js';
import type { ReleaseOutcome, WorkerInfo, WorkerState } from '../types.js';
import { healthUrlOf } from '../urls.js';
import { assertIdle, type ManagedWorker, type ProviderEvents, type WorkerProvider } from './provider.js';

/**
 * One failed check of a worker that was up is not enough to call it down: a
 * dropped packet would otherwise end a conversation (its lease is lost).
 */
const FAILED_CHECKS_BEFORE_DOWN = 2;
/** Right after a conversation our worker is usually free within milliseconds. */
const FIRST_RECHECK_MS = 25;

interface RemoteContext {
  config: RemotePoolConfig;
  log: Logger;
  events: ProviderEvents;
  remove(worker: RemoteWorker): void;
}

export class RemoteProvider implements WorkerProvider {
  readonly kind = 'remote';
  readonly #workers: RemoteWorker[];
  #timer?: NodeJS.Timeout;

  constructor(
    private readonly config: RemotePoolConfig,
    log: Logger,
    events: ProviderEvents,
  ) {
    const context: RemoteContext = {
      config,
      log,
      events,
      remove: (worker) => {
        const at = this.#workers.indexOf(worker);
        if (at < 0) return;
        this.#workers.splice(at, 1);
        events.removed(worker);
      },
    };
    this.#workers = config.urls.map((url, i) => new RemoteWorker(`remote-${i + 1}`, url, context));
  }

  workers(): Iterable<ManagedWorker> {
    return this.#workers;
  }

  /** Checks every worker once, then keeps checking them in the background. */
  async start(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.check()));
    this.#timer = setInterval(() => {
      for (const worker of this.#workers) void worker.check();
    }, this.config.healthIntervalSeconds * 1000).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#workers].map((worker) => worker.stop('the pool is closing')));
  }
}

class RemoteWorker implements ManagedWorker {
  readonly info: WorkerInfo;
  /** Remote workers never give up for good: a later check may find them up. */
  readonly failure = undefined;
  /** Down remote workers are not waited for: callers are told at once that none is reachable. */
  readonly recovering = false;
  readonly #ctx: RemoteContext;
  readonly #healthUrl: string;
  readonly #stopped = new AbortController();
  #hasHealth = true;
  #failedChecks = 0;
  /** Bumped on every state change: a check that started before one is stale and ignored. */
  #generation = 0;
  #checking?: Promise<void>;
  #recheckTimer?: NodeJS.Timeout;

  constructor(id: string, url: string, ctx: RemoteContext) {
    this.#ctx = ctx;
    this.#healthUrl = healthUrlOf(url, ctx.config.chatPath, ctx.config.healthPath);
    this.info = { id, url, state: 'starting', provider: 'remote', restarts: 0, since: Date.now(), detail: 'not checked yet' };
  }

  check(): Promise<void> {
    if (this.#stopped.signal.aborted) return Promise.resolve();
    this.#checking ??= this.#checkOnce().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  lease(): void {
    assertIdle(this.info);
    this.#set('busy');
  }

  release(outcome: ReleaseOutcome): void {
    if (this.info.state !== 'busy') return;
    if (outcome.refused) {
      // Someone else's conversation: it will not be over in milliseconds.
      this.#set('resetting', `refused a conversation${outcome.reason ? ` (${outcome.reason})` : ''}: in use by another client`);
      return this.#recheckSoon(this.#ctx.config.healthIntervalSeconds * 1000);
    }
    if (outcome.healthy && !this.#hasHealth) return this.#set('idle');
    this.#set('resetting', outcome.healthy ? 'finishing its last conversation' : `re-checking: ${outcome.reason ?? 'its last conversation went wrong'}`);
    this.#recheckSoon(FIRST_RECHECK_MS);
  }

  async stop(reason: string): Promise<void> {
    if (this.#stopped.signal.aborted) return;
    this.#stopped.abort();
    clearTimeout(this.#recheckTimer);
    this.#set('stopping', reason);
    this.#ctx.remove(this);
  }

  async #checkOnce(): Promise<void> {
    const generation = this.#generation;
    const probe = await probeHealth(this.#healthUrl, this.#ctx.config.healthTimeoutSeconds * 1000, this.#stopped.signal);
    if (this.#stopped.signal.aborted || generation !== this.#generation) return;
    this.#apply(probe);
  }

  #apply(probe: Probe): void {
    const { state } = this.info;
    if (probe.kind === 'down' || probe.kind === 'failed') {
      this.#failedChecks++;
      const settled = state === 'starting' || state === 'down' || probe.kind === 'failed';
      if (settled || this.#failedChecks >= FAILED_CHECKS_BEFORE_DOWN) {
        if (state !== 'down') this.#ctx.log.warn({ worker: this.info.id }, `${this.info.id} is down: ${probe.reason}`);
        if (state !== 'down' || this.info.detail !== probe.reason) this.#set('down', probe.reason);
      }
      return;
    }
    this.#failedChecks = 0;
    // A busy worker is ours: whatever a check says about it, the conversation's end decides.
    if (state === 'busy') return;
    if (probe.kind === 'ready') {
      this.#hasHealth = probe.healthEndpoint;
      if (state !== 'idle') {
        if (state === 'down' || state === 'starting') this.#ctx.log.info({ worker: this.info.id }, `${this.info.id} is up at ${this.info.url}`);
        this.#set('idle');
      }
    } else if (probe.kind === 'busy') {
      if (state !== 'resetting') this.#set('resetting', 'in use by another client');
    } else if (state !== 'starting' || this.info.detail !== probe.progress) {
      this.#set('starting', probe.progress ?? 'warming up');
    }
  }

  /** Checks again and again, backing off to the regular interval, until it is no longer resetting. */
  #recheckSoon(delayMs: number): void {
    clearTimeout(this.#recheckTimer);
    this.#recheckTimer = setTimeout(async () => {
      await this.check();
      if (this.info.state === 'resetting' && !this.#stopped.signal.aborted) {
        this.#recheckSoon(Math.min(delayMs * 2, this.#ctx.config.healthIntervalSeconds * 1000));
      }
    }, delayMs).unref();
  }

  #set(state: WorkerState, detail?: string): void {
    this.#generation++;
    this.info.state = state;
    this.info.since = Date.now();
    this.info.detail = detail;
    this.#ctx.events.changed(this);
  }
}
