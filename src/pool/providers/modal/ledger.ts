/**
 * What the sandboxes cost: seconds by state and GPU type, and an estimate in
 * dollars from a per-type price table. Modal bills a sandbox from the moment
 * it runs until it is gone, whatever it does; waiting in Modal's queue for a
 * GPU is counted (as `queued`) but not priced.
 *
 * States are the pool's, folded into what a bill cares about: starting
 * (placed, loading the model), idle (ready, nobody talking), busy (a
 * conversation, or finishing one), stopping (ended by us, not gone yet).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { WorkerState } from '../../types.js';

export type BillState = 'queued' | 'starting' | 'idle' | 'busy' | 'stopping';

const BILLED: ReadonlySet<BillState> = new Set(['starting', 'idle', 'busy', 'stopping']);

export function billStateOf(state: WorkerState): BillState {
  switch (state) {
    case 'idle':
      return 'idle';
    case 'busy':
    case 'resetting':
      return 'busy';
    case 'stopping':
      return 'stopping';
    default:
      return 'starting';
  }
}

/** One sandbox's meter; `close()` once it is gone. */
export interface Meter {
  set(state: BillState): void;
  readonly state: BillState;
  close(): void;
}

export class Ledger {
  /** Seconds of meters already closed or moved on, by "state|gpu". */
  readonly #settled = new Map<string, number>();
  readonly #open = new Set<{ state: BillState; gpu: string; since: number }>();
  readonly #price: (gpu: string) => number | undefined;
  readonly #now: () => number;

  constructor(price: (gpu: string) => number | undefined, now: () => number = () => performance.now()) {
    this.#price = price;
    this.#now = now;
  }

  /** Starts metering a sandbox of this GPU type. */
  open(gpu: string, state: BillState): Meter {
    const entry = { state, gpu, since: this.#now() };
    this.#open.add(entry);
    let closed = false;
    return {
      set: (next) => {
        if (closed || next === entry.state) return;
        this.#settle(entry);
        entry.state = next;
      },
      get state() {
        return entry.state;
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.#settle(entry);
        this.#open.delete(entry);
      },
    };
  }

  /** Seconds so far by state and GPU, open meters included. */
  seconds(): Map<string, number> {
    const totals = new Map(this.#settled);
    const now = this.#now();
    for (const e of this.#open) add(totals, key(e.state, e.gpu), (now - e.since) / 1000);
    return totals;
  }

  /** Estimated dollars so far by GPU type (types without a price are left out). */
  cost(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, secs] of this.seconds()) {
      const [state, gpu] = split(k);
      const price = this.#price(gpu);
      if (!BILLED.has(state) || price === undefined) continue;
      add(out, gpu, (secs / 3600) * price);
    }
    return out;
  }

  /** Sandboxes now, by state and GPU. */
  live(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.#open) add(out, key(e.state, e.gpu), 1);
    return out;
  }

  registerMetrics(registry: Registry): void {
    const ledger = this;
    new Counter({
      name: 'quillman_modal_sandbox_seconds_total',
      help: 'Seconds Modal sandboxes spent in each state (queued: waiting for a GPU, not billed), by GPU type',
      labelNames: ['state', 'gpu'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [k, secs] of ledger.seconds()) {
          const [state, gpu] = split(k);
          this.inc({ state, gpu }, secs);
        }
      },
    });
    new Counter({
      name: 'quillman_modal_estimated_cost_dollars_total',
      help: 'Estimated GPU cost of the Modal sandboxes so far, in dollars, from pool.modal.prices (GPU only: CPU, memory and region multipliers are not included)',
      labelNames: ['gpu'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [gpu, dollars] of ledger.cost()) this.inc({ gpu }, dollars);
      },
    });
    new Gauge({
      name: 'quillman_modal_sandboxes',
      help: 'Modal sandboxes of this gateway now, by state and GPU type',
      labelNames: ['state', 'gpu'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [k, n] of ledger.live()) {
          const [state, gpu] = split(k);
          this.set({ state, gpu }, n);
        }
      },
    });
  }

  #settle(entry: { state: BillState; gpu: string; since: number }): void {
    const now = this.#now();
    add(this.#settled, key(entry.state, entry.gpu), (now - entry.since) / 1000);
    entry.since = now;
  }
}

function key(state: BillState, gpu: string): string {
  return `${state}|${gpu}`;
}

function split(k: string): [BillState, string] {
  const at = k.indexOf('|');
  return [k.slice(0, at) as BillState, k.slice(at + 1)];
}

function add(map: Map<string, number>, k: string, value: number): void {
  map.set(k, (map.get(k) ?? 0) + value);
}
