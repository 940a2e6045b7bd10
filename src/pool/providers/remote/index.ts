/**
 * The `remote` provider: a fixed set of workers running elsewhere, by URL,
 * checked every healthIntervalSeconds (remote-worker.ts).
 */
import { defineProvider, type PoolWorker, type ProviderContext, type WorkerProvider } from '../../provider.js';
import { toChatUrl } from '../../urls.js';
import { RemoteWorker } from './remote-worker.js';
import { remoteSettingsSchema, type RemoteSettings } from './settings.js';

const capabilities = { launches: false, fixedSet: true, gpus: false };

class RemoteProvider implements WorkerProvider {
  readonly name = 'remote';
  readonly capabilities = capabilities;
  readonly launchSlots = 0;
  readonly cooldownSeconds = 0;
  readonly #workers: RemoteWorker[];
  readonly #config: RemoteSettings;
  #timer?: NodeJS.Timeout;

  constructor({ settings, log, events }: ProviderContext<RemoteSettings>) {
    this.#config = settings;
    const context = {
      config: settings,
      log,
      events,
      remove: (worker: RemoteWorker) => {
        const at = this.#workers.indexOf(worker);
        if (at < 0) return;
        this.#workers.splice(at, 1);
        events.removed(worker);
      },
    };
    this.#workers = settings.urls.map((entry, i) => new RemoteWorker(`remote-${i + 1}`, entry, context));
  }

  workers(): Iterable<PoolWorker> {
    return this.#workers;
  }

  /** Checks every worker once, then keeps checking them in the background. */
  async start(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.check()));
    this.#timer = setInterval(() => {
      for (const worker of this.#workers) void worker.check();
    }, this.#config.healthIntervalSeconds * 1000).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#workers].map((worker) => worker.stop('the pool is closing')));
  }
}

export const remoteProvider = defineProvider({
  name: 'remote',
  summary: 'use running workers by URL',
  description:
    "Uses workers that run elsewhere (our `quillman worker`, Kyutai's servers), by URL, each with its number of conversation slots; checks them every `healthIntervalSeconds` and skips those down or in use by someone else. It cannot start or stop them.",
  capabilities,
  settings: remoteSettingsSchema,
  example: { urls: ['ws://10.0.0.5:8998'] },
  required: { key: 'urls', hint: 'the workers\' addresses, e.g. ["ws://10.0.0.5:8998"]' },
  maxWorkersText: 'the number of URLs',
  engineLabel: 'remote workers',
  flags: [
    {
      key: 'urls',
      flag: '--worker-urls <urls>',
      env: 'QUILLMAN_WORKER_URLS',
      value: 'list',
      description: 'comma-separated worker URLs (ws://host:port/api/chat); add #slots=N to one that holds N conversations at once',
    },
  ],
  resolve(remote, pool, issue) {
    if (pool.maxWorkers !== undefined && pool.maxWorkers !== remote.urls.length) {
      issue(['maxWorkers'], `is ${pool.maxWorkers} but remote.urls lists ${remote.urls.length} worker(s); with remote workers the list decides: remove maxWorkers, or give a worker that holds several conversations #slots=N`);
    }
    const urls = remote.urls.map((entry) => ({ ...entry, url: toChatUrl(entry.url, remote.chatPath) }));
    return { maxWorkers: urls.length, settings: { ...remote, urls } };
  },
  create(context) {
    return new RemoteProvider(context);
  },
});
