/**
 * The seams between the pool and the providers of workers.
 *
 * The pool owns the queue, the leases and the decisions (start one more?
 * stop this idle one?); a provider owns the mechanics: processes and ports
 * (local), addresses and health checks (remote), sandboxes, pods. Providers
 * keep each worker's `info` up to date and report every change, so the pool
 * never polls.
 *
 * A provider is one folder under providers/ that exports a
 * ProviderDefinition, plus its entry in registry.ts. Settings validation,
 * flags, docs and the contract tests (test/pool/contract/) all come from the
 * definition. See docs/pool.md, "Adding a provider".
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import type { DialInfo, ReleaseOutcome, WorkerInfo } from './types.js';

/** What the pool needs from each worker. ManagedWorker (worker/managed-worker.ts) implements it for every provider. */
export interface PoolWorker {
  /** Live view, updated in place by the provider. */
  readonly info: WorkerInfo;
  /** Set, in state 'down', when the worker gave up for good (crash loop): what the user should read. */
  readonly failure?: string;
  /** Down, but coming back on its own: a restart is scheduled. */
  readonly recovering: boolean;
  /** Conversations it can take right now (0 unless it is ready and has a free slot). */
  readonly freeSlots: number;
  /** Takes one slot. Only called when freeSlots > 0. */
  lease(): LeaseTicket;
  /** Gives one slot back; once the last is back: resetting, idle or a restart, depending on the outcome. */
  release(outcome: ReleaseOutcome): void;
  /** Stops it for good (terminates what the provider started) and forgets it. */
  stop(reason: string): Promise<void>;
}

/** What one lease of a worker needs from the provider. */
export interface LeaseTicket {
  /** Per-lease dial information (a fresh token, a header), made when the gateway connects. */
  dial(): Promise<DialInfo>;
}

export interface ProviderEvents {
  changed(worker: PoolWorker): void;
  removed(worker: PoolWorker): void;
}

export interface Launch {
  worker: PoolWorker;
  /** Settles once the worker runs (not once it is ready); rejects when it cannot be started at all (command not found, no free port). */
  spawned: Promise<void>;
}

export interface ProviderCapabilities {
  /** The pool starts and stops its workers: `warm`, `maxWorkers` and idle stops apply. */
  launches: boolean;
  /** Its workers are a list known up front that the pool cannot start or stop. */
  fixedSet: boolean;
  /** It can put workers on GPUs. */
  gpus: boolean;
}

export interface WorkerProvider {
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  /** Slots of each worker launch() starts. */
  readonly launchSlots: number;
  /** After a worker gave up for good: how long callers get its error at once instead of a new attempt. */
  readonly cooldownSeconds: number;
  /** In the order they were added: the pool prefers earlier ones, so later extras go idle and get stopped. */
  workers(): Iterable<PoolWorker>;
  /** Starts one more worker; absent where the set of workers is fixed. */
  launch?(): Launch;
  /**
   * Called once before the pool serves anyone: check the fixed set, or adopt
   * what an earlier gateway left running (sandboxes found by tag, claims to
   * reclaim) so that nothing is lost or left billing.
   */
  start(): Promise<void>;
  /** Stops everything the provider started; resolves when it is all gone. */
  close(): Promise<void>;
  /** Adds the provider's own metrics to the gateway's registry. */
  registerMetrics?(registry: Registry): void;
}

/** The pool's own settings, as a provider sees them. */
export interface PoolLimits {
  warm: number;
  maxWorkers: number;
  idleTimeoutSeconds: number;
  maxQueue: number;
}

export interface ProviderContext<Settings> {
  settings: Settings;
  pool: PoolLimits;
  log: Logger;
  events: ProviderEvents;
}

/** A command-line flag and environment variable for one of a provider's settings. */
export interface ProviderFlag {
  /** Dotted path inside the provider's settings: 'command' is pool.local.command. */
  key: string;
  /** Commander syntax, e.g. '--gpus <ids>'. */
  flag: string;
  env: string;
  value: 'int' | 'number' | 'list' | 'string' | 'path';
  /** Shown after "<provider>: " in --help and the README. */
  description: string;
  /** Shown in docs instead of the schema's default. */
  defaultText?: string;
}

/** Reports a problem with the settings; the path starts at the pool's settings, e.g. ['maxWorkers'] or ['local', 'gpus']. */
export type IssueReporter = (path: (string | number)[], message: string) => void;

export interface ProviderDefinition<Name extends string = string, Schema extends z.ZodType = z.ZodType> {
  /** The value of `pool.provider` and the key of its settings block (`pool.<name>`). */
  readonly name: Name;
  /** A few words for `--provider` help and errors, e.g. "start workers here". */
  readonly summary: string;
  /** One or two sentences for the providers table in docs/pool.md. */
  readonly description: string;
  readonly capabilities: ProviderCapabilities;
  /** Its settings block, `pool.<name>`. Parsing must be idempotent (a parsed block parses to itself). */
  readonly settings: Schema;
  /** Minimal valid settings, used to show defaults in the docs. */
  readonly example: z.input<Schema>;
  /** When `pool.<name>` is missing: the setting to ask for (dotted) and what to write there. */
  readonly required: { key: string; hint: string };
  /** How maxWorkers defaults, for the docs, e.g. "the number of URLs". */
  readonly maxWorkersText: string;
  /** Shown as the engine on the gateway's page when the workers are not our own engine's (e.g. "remote workers"). */
  readonly engineLabel?: string;
  readonly flags: readonly ProviderFlag[];
  /**
   * Checks across the pool's settings and the provider's (report with
   * `issue`), and fills in what depends on both: maxWorkers, and settings
   * normalised against each other (e.g. URLs against a path).
   */
  resolve(settings: z.output<Schema>, pool: { warm: number; maxWorkers?: number }, issue: IssueReporter): { maxWorkers: number; settings: z.output<Schema> };
  create(context: ProviderContext<z.output<Schema>>): WorkerProvider;
}

// Definitions of every shape are stored side by side; method syntax keeps their settings types assignable here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProviderDefinition = ProviderDefinition<string, any>;

/** Keeps a definition's literal name and settings type, so PoolConfig is a union the compiler can narrow. */
export function defineProvider<const Name extends string, Schema extends z.ZodType>(definition: ProviderDefinition<Name, Schema>): ProviderDefinition<Name, Schema> {
  return definition;
}
