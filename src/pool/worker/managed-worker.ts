/**
 * One worker as the pool sees it, the same for every provider: an explicit
 * state machine, its conversation slots, what happens when a conversation
 * gives its slot back, and health polling with backoff. Subclasses say how
 * a worker is checked (probe) and what its lifecycle does around that:
 * HostedWorker launches instances on a host and restarts them; the remote
 * provider's workers sit at fixed addresses and are only checked.
 *
 * Conversations are leased only from `idle`, or from `busy` while a slot is
 * free, and a worker that leaves `busy` any other way than through its last
 * release has lost them all: the pool fires their `lost` signals.
 */
import type { Logger } from 'pino';
import type { Probe } from '../health.js';
import type { LeaseTicket, PoolWorker } from '../provider.js';
import type { DialInfo, ReleaseOutcome, WorkerDetails, WorkerInfo, WorkerState } from '../types.js';
import { delays, sleep, type Backoff } from './backoff.js';

/** Every state change a worker may make. `stopping` is final: the worker is then removed. */
const TRANSITIONS: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['starting', 'idle', 'resetting', 'down', 'stopping'],
  idle: ['busy', 'resetting', 'starting', 'down', 'stopping'],
  busy: ['busy', 'idle', 'resetting', 'down', 'stopping'],
  resetting: ['resetting', 'idle', 'starting', 'down', 'stopping'],
  down: ['down', 'idle', 'starting', 'resetting', 'stopping'],
  stopping: [],
};

export interface WorkerEvents {
  changed(worker: ManagedWorker): void;
}

export interface WorkerIdentity {
  id: string;
  provider: string;
  slots: number;
  url?: string;
  gpu?: string;
  detail?: string;
}

/** What a probe answer means while polling: keep polling, or stop. */
export type PollStep = 'again' | 'done';

export abstract class ManagedWorker implements PoolWorker {
  readonly info: WorkerInfo;
  protected readonly log: Logger;
  /** Kyutai's servers have none: such a worker is free as soon as its conversation's socket closed. */
  protected get hasHealth(): boolean {
    return this.info.healthEndpoint !== false;
  }

  protected set hasHealth(value: boolean) {
    // Shown to the gateway too: a worker without one says nothing while busy elsewhere (see docs/kyutai.md).
    this.info.healthEndpoint = value;
  }
  readonly #events: WorkerEvents;
  /** Aborted whenever the state changes: ends the polls and waits that belong to the old state. */
  #stateAbort = new AbortController();
  /** Bumped on every change: a check that started before one is stale. */
  #generation = 0;
  /** A multi-slot worker to be checked or restarted takes no new conversations; this runs once its last one ends. */
  #drainFor?: ReleaseOutcome;

  constructor(identity: WorkerIdentity, log: Logger, events: WorkerEvents) {
    this.info = {
      id: identity.id,
      url: identity.url ?? '',
      state: 'starting',
      provider: identity.provider,
      slots: identity.slots,
      conversations: 0,
      gpu: identity.gpu,
      restarts: 0,
      since: Date.now(),
      detail: identity.detail,
    };
    this.log = log.child({ worker: identity.id });
    this.#events = events;
  }

  get failure(): string | undefined {
    return undefined;
  }

  abstract get recovering(): boolean;

  get freeSlots(): number {
    const { state, slots, conversations } = this.info;
    if (this.#drainFor || (state !== 'idle' && state !== 'busy')) return 0;
    return slots - conversations;
  }

  lease(): LeaseTicket {
    if (this.freeSlots <= 0) {
      // A pool bug: fail loudly rather than put two conversations where one fits.
      throw new Error(`worker ${this.info.id} is ${this.info.state} with ${this.info.conversations}/${this.info.slots} conversations: no free slot`);
    }
    const ticket = this.ticket();
    this.info.conversations++;
    if (this.info.state === 'idle') this.set('busy');
    else this.changed();
    return ticket;
  }

  release(outcome: ReleaseOutcome): void {
    if (this.info.state !== 'busy' || this.info.conversations === 0) return;
    this.info.conversations--;
    const verdict = worse(this.#drainFor, outcome);
    if (this.info.conversations > 0) {
      if (!verdict.healthy || verdict.refused) {
        this.#drainFor = verdict;
        this.set('busy', `taking no new conversations until its current ones end (${describeOutcome(verdict)})`);
      } else {
        this.changed();
      }
      return;
    }
    this.#drainFor = undefined;
    this.afterLastRelease(verdict);
  }

  abstract stop(reason: string): Promise<void>;

  /** The worker's last conversation ended: decide between idle, a reset poll, a re-check or a restart. */
  protected abstract afterLastRelease(outcome: ReleaseOutcome): void;

  /** One health check. */
  protected abstract probe(signal: AbortSignal): Promise<Probe>;

  /** What a lease taken now needs to connect (bound to the current instance). */
  protected abstract ticket(): LeaseTicket;

  /** Provider-specific facts, read at every change. */
  protected details(): WorkerDetails | undefined {
    return undefined;
  }

  /** Aborted at the next state change. */
  protected get stateSignal(): AbortSignal {
    return this.#stateAbort.signal;
  }

  protected get generation(): number {
    return this.#generation;
  }

  protected set(state: WorkerState, detail?: string): void {
    const from = this.info.state;
    if (!TRANSITIONS[from].includes(state)) throw new Error(`worker ${this.info.id} cannot go from ${from} to ${state}`);
    if (state !== from) {
      this.#stateAbort.abort();
      this.#stateAbort = new AbortController();
      this.info.since = Date.now();
      if (from === 'busy') {
        // Left busy other than by its last release: the pool takes its leases back as lost.
        this.info.conversations = 0;
        this.#drainFor = undefined;
      }
    }
    this.info.state = state;
    this.info.detail = detail;
    this.changed();
  }

  /** Reports a change that is not a state change (a conversation more, new details). */
  protected changed(): void {
    this.#generation++;
    const details = this.details();
    if (details) this.info.details = details;
    else delete this.info.details;
    this.#events.changed(this);
  }

  /**
   * Probes with backoff until `step` says done or `signal` aborts (by
   * default: the state changes). The first probe goes at once, or after the
   * first delay with `waitFirst`.
   */
  protected async poll(backoff: Backoff, step: (probe: Probe) => PollStep, options: { signal?: AbortSignal; waitFirst?: boolean } = {}): Promise<void> {
    const signal = options.signal ?? this.stateSignal;
    let first = true;
    for (const delay of delays(backoff)) {
      if (!first || options.waitFirst) {
        if (!(await sleep(delay, signal))) return;
      }
      first = false;
      const probe = await this.probe(signal);
      if (signal.aborted || step(probe) === 'done') return;
    }
  }

  /**
   * After a conversation: polls until the worker says it is free again
   * (idle), hands a failed answer to `onFailed`, and the last answer to
   * `onTimeout` once `timeoutMs` is up.
   */
  protected waitUntilFree(options: { backoff: Backoff; timeoutMs: number; onFailed(reason: string): void; onTimeout(last: Probe): void }): Promise<void> {
    const deadline = Date.now() + options.timeoutMs;
    return this.poll(options.backoff, (probe) => {
      if (probe.kind === 'ready') {
        this.set('idle');
        return 'done';
      }
      if (probe.kind === 'failed') {
        options.onFailed(probe.reason);
        return 'done';
      }
      if (Date.now() >= deadline) {
        options.onTimeout(probe);
        return 'done';
      }
      return 'again';
    });
  }
}

/** Of two release outcomes, the one that asks more of the worker: a restart or re-check beats a refusal beats a clean end. */
function worse(a: ReleaseOutcome | undefined, b: ReleaseOutcome): ReleaseOutcome {
  if (!a) return b;
  const rank = (o: ReleaseOutcome) => (!o.healthy ? 2 : o.refused ? 1 : 0);
  return rank(b) > rank(a) ? b : a;
}

function describeOutcome(outcome: ReleaseOutcome): string {
  if (!outcome.healthy) return `a conversation went wrong${outcome.reason ? `: ${outcome.reason}` : ''}`;
  if (outcome.refused) return `it refused a conversation${outcome.reason ? ` (${outcome.reason})` : ''}`;
  return outcome.reason ?? 'finishing';
}

/** A lease ticket for a worker reached at a fixed address. */
export function fixedTicket(dial: DialInfo): LeaseTicket {
  return { dial: () => Promise.resolve({ ...dial, headers: dial.headers && { ...dial.headers } }) };
}
