/**
 * A provider whose workers the pool launches on a host. A provider that
 * starts its own workers is a WorkerHost plus this: the host starts and
 * ends instances, HostedWorker manages each worker, this keeps the list.
 */
import type { Registry } from 'prom-client';
import type { Launch, PoolWorker, ProviderCapabilities, ProviderContext, WorkerProvider } from '../provider.js';
import type { RestartSettings } from '../settings-schema.js';
import type { WorkerHost } from './host.js';
import { HostedWorker, type HostedWorkerSettings } from './hosted-worker.js';

export interface HostedProviderOptions {
  name: string;
  capabilities: ProviderCapabilities;
  host: WorkerHost;
  settings: HostedWorkerSettings & { restart: Pick<RestartSettings, 'cooldownSeconds'> };
}

export class HostedProvider implements WorkerProvider {
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  readonly #host: WorkerHost;
  readonly #settings: HostedProviderOptions['settings'];
  readonly #context: ProviderContext<unknown>;
  readonly #workers = new Set<HostedWorker>();
  #nextId = 1;

  constructor(options: HostedProviderOptions, context: ProviderContext<unknown>) {
    this.name = options.name;
    this.capabilities = options.capabilities;
    this.#host = options.host;
    this.#settings = options.settings;
    this.#context = context;
  }

  get launchSlots(): number {
    return this.#settings.slots;
  }

  get cooldownSeconds(): number {
    return this.#settings.restart.cooldownSeconds;
  }

  workers(): Iterable<PoolWorker> {
    return this.#workers;
  }

  /** Takes over what an earlier gateway left running, if the host can find it. */
  async start(): Promise<void> {
    if (!this.#host.adopt) return;
    const found = await this.#host.adopt(this.#context.pool.maxWorkers);
    for (const instance of found) this.#newWorker().adopt(instance);
    if (found.length) this.#context.log.info(`took over ${found.length} worker(s) an earlier gateway left running`);
  }

  launch(): Launch {
    const worker = this.#newWorker();
    return { worker, spawned: worker.boot() };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#workers].map((worker) => worker.stop('the pool is closing')));
    await this.#host.close?.();
  }

  registerMetrics(registry: Registry): void {
    this.#host.registerMetrics?.(registry);
  }

  #newWorker(): HostedWorker {
    const { events, log } = this.#context;
    const worker = new HostedWorker(`${this.name}-${this.#nextId++}`, {
      provider: this.name,
      host: this.#host,
      settings: this.#settings,
      log,
      events,
      remove: (w) => {
        if (this.#workers.delete(w)) events.removed(w);
      },
    });
    this.#workers.add(worker);
    return worker;
  }
}
