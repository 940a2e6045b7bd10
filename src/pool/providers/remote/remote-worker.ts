/**
 * A worker running elsewhere at a fixed address (our `quillman worker`, or
 * Kyutai's servers), checked over HTTP and marked down or up accordingly.
 * The pool cannot start or stop it, so it never gives up: a later check may
 * find it up. Other clients may use it too; when it says it is busy, or
 * refused a conversation, it is skipped until a check finds it free again.
 */
import type { Logger } from 'pino';
import { probeHealth, type Probe } from '../../health.js';
import type { LeaseTicket } from '../../provider.js';
import type { DialInfo, ReleaseOutcome } from '../../types.js';
import { healthUrlOf } from '../../urls.js';
import { delayAfter } from '../../worker/backoff.js';
import { fixedTicket, ManagedWorker, type WorkerEvents } from '../../worker/managed-worker.js';
import type { RemoteSettings, RemoteWorkerEntry } from './settings.js';

/**
 * One failed check of a worker that was up is not enough to call it down: a
 * dropped packet would otherwise end a conversation (its lease is lost).
 */
const FAILED_CHECKS_BEFORE_DOWN = 2;
/** A server without a health endpoint that refused (busy elsewhere) is tried again after this, doubling. */
const BUSY_RETRY_MS = 1000;
/** Right after a conversation our worker is usually free within milliseconds. */
const FIRST_RECHECK_MS = 25;

export interface RemoteWorkerContext {
  config: RemoteSettings;
  log: Logger;
  events: WorkerEvents;
  remove(worker: RemoteWorker): void;
}

export class RemoteWorker extends ManagedWorker {
  /** Down remote workers are not waited for: callers are told at once that none is reachable. */
  readonly recovering = false;
  readonly #ctx: RemoteWorkerContext;
  readonly #healthUrl: string;
  readonly #dial: DialInfo;
  readonly #stopped = new AbortController();
  #failedChecks = 0;
  /** Refusals in a row of a worker without a health endpoint; spaces out the tries. */
  #busyRefusals = 0;
  #checking?: Promise<void>;

  constructor(id: string, entry: RemoteWorkerEntry, ctx: RemoteWorkerContext) {
    super({ id, provider: 'remote', slots: entry.slots, url: entry.url, detail: 'not checked yet' }, ctx.log, ctx.events);
    this.#ctx = ctx;
    this.#healthUrl = healthUrlOf(entry.url, ctx.config.chatPath, ctx.config.healthPath);
    this.#dial = { url: entry.url, ...(entry.headers && { headers: entry.headers }) };
  }

  /** One check now (joined with one already running). */
  check(): Promise<void> {
    if (this.#stopped.signal.aborted) return Promise.resolve();
    this.#checking ??= this.#checkOnce().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async stop(reason: string): Promise<void> {
    if (this.#stopped.signal.aborted) return;
    this.#stopped.abort();
    this.set('stopping', reason);
    this.#ctx.remove(this);
  }

  protected afterLastRelease(outcome: ReleaseOutcome): void {
    const interval = this.#ctx.config.healthIntervalSeconds * 1000;
    if (outcome.refused) {
      // Someone else's conversation: it will not be over in milliseconds.
      this.set('resetting', `refused a conversation${outcome.reason ? ` (${outcome.reason})` : ''}: in use by another client`);
      if (this.hasHealth) return this.#recheckWhileResetting(interval);
      // Without a health endpoint only another try tells whether it is free: soon at first, then backing off,
      // so a caller gets it soon after it frees up and a long-busy server is not tried every second.
      this.#busyRefusals++;
      return this.#recheckWhileResetting(delayAfter({ firstMs: BUSY_RETRY_MS, maxMs: interval }, this.#busyRefusals - 1));
    }
    this.#busyRefusals = 0;
    if (outcome.healthy && !this.hasHealth) return this.set('idle');
    this.set('resetting', outcome.healthy ? 'finishing its last conversation' : `re-checking: ${outcome.reason ?? 'its last conversation went wrong'}`);
    this.#recheckWhileResetting(FIRST_RECHECK_MS);
  }

  protected probe(signal: AbortSignal): Promise<Probe> {
    return probeHealth(this.#healthUrl, this.#ctx.config.healthTimeoutSeconds * 1000, AbortSignal.any([signal, this.#stopped.signal]));
  }

  protected ticket(): LeaseTicket {
    return fixedTicket(this.#dial);
  }

  async #checkOnce(): Promise<void> {
    const generation = this.generation;
    const probe = await this.probe(this.#stopped.signal);
    if (this.#stopped.signal.aborted || generation !== this.generation) return;
    this.#apply(probe);
  }

  /** Checks again and again, backing off to the regular interval, until it is no longer resetting. */
  #recheckWhileResetting(firstMs: number): void {
    void this.poll({ firstMs, maxMs: this.#ctx.config.healthIntervalSeconds * 1000 }, (probe) => {
      this.#apply(probe);
      return this.info.state === 'resetting' ? 'again' : 'done';
    }, { waitFirst: true });
  }

  #apply(probe: Probe): void {
    const { state } = this.info;
    if (probe.kind === 'down' || probe.kind === 'failed') {
      this.#failedChecks++;
      const settled = state === 'starting' || state === 'down' || probe.kind === 'failed';
      if (settled || this.#failedChecks >= FAILED_CHECKS_BEFORE_DOWN) {
        if (state !== 'down') this.log.warn(`${this.info.id} is down: ${probe.reason}`);
        if (state !== 'down' || this.info.detail !== probe.reason) this.set('down', probe.reason);
      }
      return;
    }
    this.#failedChecks = 0;
    // A busy worker is ours: whatever a check says about it, the conversations' end decides.
    if (state === 'busy') return;
    if (probe.kind === 'ready') {
      this.hasHealth = probe.healthEndpoint;
      if (state !== 'idle') {
        if (state === 'down' || state === 'starting') this.log.info(`${this.info.id} is up at ${this.info.url}`);
        this.set('idle');
      }
    } else if (probe.kind === 'busy') {
      if (state !== 'resetting') this.set('resetting', 'in use by another client');
    } else if (state !== 'starting' || this.info.detail !== probe.progress) {
      this.set('starting', probe.progress ?? 'warming up');
    }
  }
}
