/**
 * A worker the pool launches on a host (local processes, and every provider
 * that starts its workers itself). The host starts and ends instances; this
 * class does the rest, the same for every host:
 *
 *   starting (host starts an instance, polled until its health check says
 *   ready, within readyTimeoutSeconds of the start or of its latest progress
 *   report) → idle ⇄ busy → resetting (polled until free again) → idle.
 *
 * An instance that ends on its own is restarted with exponential backoff;
 * after maxStartFailures failed starts in a row the worker gives up,
 * carrying the instance's last output, so the user reads "CUDA out of
 * memory" rather than "no workers".
 */
import type { Logger } from 'pino';
import type { Probe } from '../health.js';
import type { LeaseTicket } from '../provider.js';
import type { RestartSettings } from '../settings-schema.js';
import type { ReleaseOutcome, WorkerDetails } from '../types.js';
import { restartDelaySeconds } from './backoff.js';
import { WorkerStartError, type HostedInstance, type Placement, type WorkerHost } from './host.js';
import { ManagedWorker, type WorkerEvents } from './managed-worker.js';

/** Start-up polls begin fast (a small worker is ready in a second) and settle at every 2 s for slow model loads. */
const START_POLL = { firstMs: 100, maxMs: 2_000 };
/** After a conversation our worker is usually free within milliseconds. */
const RESET_POLL = { firstMs: 25, maxMs: 1_000 };
/** Output lines quoted when a worker gives up. */
const ERROR_TAIL_LINES = 12;

export interface HostedWorkerSettings {
  slots: number;
  readyTimeoutSeconds: number;
  resetTimeoutSeconds: number;
  restart: Pick<RestartSettings, 'initialDelaySeconds' | 'maxDelaySeconds' | 'maxStartFailures'>;
}

export interface HostedWorkerContext {
  provider: string;
  host: WorkerHost;
  settings: HostedWorkerSettings;
  log: Logger;
  events: WorkerEvents;
  /** Called once the worker has stopped for good. */
  remove(worker: HostedWorker): void;
}

export class HostedWorker extends ManagedWorker {
  readonly #ctx: HostedWorkerContext;
  #instance?: HostedInstance;
  #placement?: Placement;
  /** While the host is still starting an instance: aborting it gives up on that start. */
  #startAbort?: AbortController;
  #startFailures = 0;
  #failure?: string;
  #restartTimer?: NodeJS.Timeout;
  /** A restart we asked for (bad conversation, stuck reset): start again as soon as the instance is gone. */
  #restartWhenGone = false;
  /** Why we ended the instance, when we did; reported instead of how it ended. */
  #killReason?: string;
  #readyTimer?: NodeJS.Timeout;
  #lastProgress?: string;
  #stopped?: Promise<void>;
  #onStopped?: () => void;

  constructor(id: string, ctx: HostedWorkerContext) {
    super({ id, provider: ctx.provider, slots: ctx.settings.slots }, ctx.log, ctx.events);
    this.#ctx = ctx;
  }

  override get failure(): string | undefined {
    return this.#failure;
  }

  get recovering(): boolean {
    return this.#restartTimer !== undefined || this.#restartWhenGone;
  }

  /** The first start. Settles once the instance runs; rejects when it cannot be started at all. */
  boot(): Promise<void> {
    this.#placement = this.#ctx.host.place?.(this.info.id);
    this.info.gpu = this.#placement?.gpu;
    return this.#start();
  }

  /** Takes over an instance an earlier gateway left running; it is checked like a fresh start. */
  adopt(instance: HostedInstance): void {
    this.#armReadyTimer();
    this.set('starting', 'taken over from an earlier gateway');
    this.#attach(instance);
  }

  stop(reason: string): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve) => {
      this.#onStopped = resolve;
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
      this.#restartWhenGone = false;
      clearTimeout(this.#readyTimer);
      this.set('stopping', reason);
      if (this.#instance) this.#instance.terminate();
      else if (this.#startAbort) this.#startAbort.abort(new Error(reason));
      else this.#finishStop();
    });
    return this.#stopped;
  }

  protected afterLastRelease(outcome: ReleaseOutcome): void {
    if (this.#ctx.host.singleUse) return void this.stop(`its conversation ended${outcome.reason ? ` (${outcome.reason})` : ''}`);
    if (!outcome.healthy) return this.#restart(`its last conversation went wrong${outcome.reason ? ` (${outcome.reason})` : ''}`);
    if (!this.hasHealth) return this.set('idle');
    this.set('resetting', 'finishing its last conversation');
    const { resetTimeoutSeconds } = this.#ctx.settings;
    void this.waitUntilFree({
      backoff: RESET_POLL,
      timeoutMs: resetTimeoutSeconds * 1000,
      onFailed: (reason) => this.#restart(reason),
      onTimeout: (last) => {
        const seen = last.kind === 'down' ? last.reason : `it still reported ${last.kind}`;
        this.#restart(`${seen} ${resetTimeoutSeconds} s after its conversation ended`);
      },
    });
  }

  protected probe(signal: AbortSignal): Promise<Probe> {
    const instance = this.#instance;
    if (!instance) return Promise.resolve({ kind: 'down', reason: 'it is not running' });
    return instance.probe(signal);
  }

  protected ticket(): LeaseTicket {
    const instance = this.#instance;
    if (!instance) throw new Error(`worker ${this.info.id} has no running instance`);
    return { dial: () => instance.dial() };
  }

  protected override details(): WorkerDetails | undefined {
    return this.#instance?.details?.();
  }

  protected override changed(): void {
    this.#instance?.observe?.(this.info.state);
    super.changed();
  }

  async #start(): Promise<void> {
    this.#armReadyTimer();
    this.set('starting');
    const abort = new AbortController();
    this.#startAbort = abort;
    let instance: HostedInstance;
    try {
      instance = await this.#ctx.host.start({
        workerId: this.info.id,
        restarts: this.info.restarts,
        placement: this.#placement,
        signal: abort.signal,
        progress: (message, step) => this.#progress(message, step),
      });
    } catch (err) {
      this.#startAbort = undefined;
      if (this.#stopped) return this.#finishStop();
      const killReason = this.#killReason;
      this.#killReason = undefined;
      // Out of time while the host was still at it: a failed start like any other.
      if (killReason !== undefined && abort.signal.aborted) return this.#failedStart(killReason);
      if (err instanceof WorkerStartError && err.retryable) return this.#failedStart(err.message);
      clearTimeout(this.#readyTimer);
      this.#fail(err instanceof WorkerStartError ? err.message : `Worker ${this.info.id} could not be started: ${(err as Error).message}`);
      // start() reports the underlying error (e.g. spawn … ENOENT); callers read the message above.
      throw err instanceof WorkerStartError && err.cause instanceof Error ? err.cause : err;
    }
    this.#startAbort = undefined;
    if (this.#stopped) {
      instance.terminate();
      await instance.ended;
      return this.#finishStop();
    }
    if (abort.signal.aborted) {
      // Out of time, but the host finished anyway: end what it made; that ending is the failed start.
      this.#instance = instance;
      void instance.ended.then((how) => this.#onEnded(instance, how));
      instance.terminate();
      return;
    }
    this.#attach(instance);
  }

  #attach(instance: HostedInstance): void {
    this.#instance = instance;
    this.info.url = instance.url;
    this.info.pid = instance.pid;
    this.changed();
    void instance.ended.then((how) => this.#onEnded(instance, how));
    void this.#waitUntilReady(instance);
  }

  async #waitUntilReady(instance: HostedInstance): Promise<void> {
    await this.poll(START_POLL, (probe) => {
      if (this.#instance !== instance || this.info.state !== 'starting') return 'done';
      if (probe.kind === 'ready') {
        clearTimeout(this.#readyTimer);
        this.hasHealth = probe.healthEndpoint;
        this.#startFailures = 0;
        this.log.info(`${this.info.id} is ready at ${this.info.url}${probe.healthEndpoint ? '' : ' (no health endpoint: it is treated as free whenever no conversation holds it)'}`);
        this.set('idle');
        return 'done';
      }
      if (probe.kind === 'failed') {
        this.#kill(probe.reason);
        return 'done';
      }
      if (probe.kind === 'warming' && probe.progress) this.#progress(probe.progress);
      return 'again';
    });
  }

  /** The ready timeout counts from the start, and again from each new progress report. */
  #armReadyTimer(): void {
    this.#lastProgress = undefined;
    this.#restartReadyTimer();
  }

  #restartReadyTimer(): void {
    clearTimeout(this.#readyTimer);
    this.#readyTimer = setTimeout(() => this.#notReadyInTime(), this.#ctx.settings.readyTimeoutSeconds * 1000);
    this.#readyTimer.unref();
  }

  #progress(message: string, step = message): void {
    if (this.info.state !== 'starting') return;
    if (step !== this.#lastProgress) {
      // A worker whose progress moves (a first start downloading its models) is not stuck.
      this.#lastProgress = step;
      this.#restartReadyTimer();
    }
    if (message !== this.info.detail) this.set('starting', message);
  }

  #notReadyInTime(): void {
    if (this.info.state !== 'starting') return;
    const { readyTimeoutSeconds } = this.#ctx.settings;
    const since = this.#lastProgress === undefined ? '' : ` of its last progress report ("${this.#lastProgress}")`;
    const where = this.#instance ? ` at ${this.#instance.readinessTarget}` : '';
    const reason = `it was not ready${where} within ${readyTimeoutSeconds} s${since} (raise pool.${this.#ctx.provider}.readyTimeoutSeconds if loading takes longer)`;
    if (this.#instance) return this.#kill(reason);
    if (this.#startAbort) {
      this.#killReason = reason;
      this.#startAbort.abort(new Error(reason));
    }
  }

  #onEnded(instance: HostedInstance, how: string): void {
    if (instance !== this.#instance) return;
    this.#instance = undefined;
    this.info.pid = undefined;
    clearTimeout(this.#readyTimer);
    const killReason = this.#killReason;
    this.#killReason = undefined;
    if (this.#stopped) {
      this.log.info(`${this.info.id} stopped (${how})`);
      return this.#finishStop();
    }
    if (this.#restartWhenGone) {
      this.#restartWhenGone = false;
      this.info.restarts++;
      void this.#start().catch(() => undefined);
      return;
    }
    const reason = killReason ?? how;
    if (this.info.state === 'starting') return this.#failedStart(reason, instance.lastOutput?.(ERROR_TAIL_LINES));
    this.log.warn(`${this.info.id} died while ${this.info.state}: ${reason}`);
    if (this.#ctx.host.singleUse) {
      this.set('down', reason);
      return void this.stop(reason);
    }
    this.#scheduleRestart(reason);
  }

  #failedStart(reason: string, output?: string[]): void {
    this.#startFailures++;
    const { maxStartFailures } = this.#ctx.settings.restart;
    if (this.#startFailures >= maxStartFailures) return this.#fail(this.#giveUpMessage(reason, output));
    this.log.warn(`${this.info.id} failed to start (${this.#startFailures}/${maxStartFailures}): ${reason}`);
    this.#scheduleRestart(reason);
  }

  #scheduleRestart(reason: string): void {
    const delay = restartDelaySeconds(this.#ctx.settings.restart, this.#startFailures);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.info.restarts++;
      void this.#start().catch(() => undefined);
    }, delay * 1000);
    this.set('down', `${reason}; restarting in ${delay} s`);
  }

  /** Ends the instance for a conversation gone wrong or a stuck reset, and starts a new one once it is gone. */
  #restart(reason: string): void {
    const instance = this.#instance;
    if (!instance) return;
    this.log.warn(`restarting ${this.info.id}: ${reason}`);
    this.#restartWhenGone = true;
    this.set('resetting', `restarting: ${reason}`);
    instance.terminate();
  }

  #kill(reason: string): void {
    this.#killReason = reason;
    this.#instance?.terminate();
  }

  #giveUpMessage(reason: string, output: string[] | undefined): string {
    const times = this.#startFailures === 1 ? 'once' : `${this.#startFailures} times in a row`;
    const quoted = output === undefined ? '' : output.length ? `Its last output:\n${output.map((l) => `  | ${l}`).join('\n')}\n` : 'It wrote nothing to stdout or stderr.\n';
    return `Worker ${this.info.id} failed to start ${times}; the last time ${reason}.\n${quoted}${this.#ctx.host.fixHint}`;
  }

  #fail(message: string): void {
    this.#failure = message;
    this.log.error(message);
    this.set('down', message);
  }

  #finishStop(): void {
    this.#placement?.release();
    this.#placement = undefined;
    this.#ctx.remove(this);
    this.#onStopped?.();
  }
}
