/**
 * A watched, cached collection of Kubernetes objects: @kubernetes/client-node's
 * informer (list once, then watch; a relist after "410 Gone"), restarted with
 * backoff when the watch fails (the library's informer stops on an error and
 * leaves restarting to its user). Callers read the cache and hear every
 * change; nothing here polls the API server.
 */
import { makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { delayAfter } from '../../worker/backoff.js';

export interface WatchedCollection<T extends KubernetesObject> {
  /** Resolves once the first list has been loaded into the cache. */
  readonly synced: Promise<void>;
  list(): readonly T[];
  get(name: string, namespace?: string): T | undefined;
  stop(): Promise<void>;
}

export interface WatchOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** API path of the collection, e.g. /api/v1/namespaces/ns/pods. */
  path: string;
  list(): Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  /** Called for every addition and change, and with `deleted` for every removal. */
  onChange(object: T, deleted: boolean): void;
  log: Logger;
  /** What the collection is, for logs: "worker pods". */
  what: string;
}

const RESTART = { firstMs: 500, maxMs: 10_000 };

export function watchCollection<T extends KubernetesObject>(options: WatchOptions<T>): WatchedCollection<T> {
  const informer = makeInformer<T>(options.kubeConfig, options.path, options.list, options.labelSelector);
  let stopped = false;
  let failures = 0;
  /** Set by the error handler: the library's start() resolves even when its list or watch failed. */
  let failedSinceStart = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let markSynced!: () => void;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));

  informer.on('add', (o) => options.onChange(o, false));
  informer.on('update', (o) => options.onChange(o, false));
  informer.on('delete', (o) => options.onChange(o, true));
  informer.on('connect', () => {
    // 'connect' fires before each list or watch; the first list is loaded once start() resolves.
    if (failures > 0) options.log.info(`watching ${options.what} again`);
  });
  informer.on('error', (err: unknown) => {
    failedSinceStart = true;
    if (stopped) return;
    const delay = delayAfter(RESTART, failures);
    failures++;
    const message = err instanceof Error ? err.message : String((err as { message?: unknown })?.message ?? err);
    options.log.warn({ err: message, retryInMs: delay }, `lost the watch on ${options.what}; watching again in ${delay / 1000} s`);
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      if (!stopped) start();
    }, delay);
  });

  const start = () => {
    failedSinceStart = false;
    informer.start().then(
      () => {
        if (failedSinceStart) return;
        failures = 0;
        markSynced();
      },
      // Reported through 'error' as well.
      () => undefined,
    );
  };
  start();

  return {
    synced,
    list: () => informer.list(),
    get: (name, namespace) => informer.get(name, namespace),
    async stop() {
      stopped = true;
      clearTimeout(restartTimer);
      await informer.stop();
    },
  };
}
