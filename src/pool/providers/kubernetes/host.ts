/**
 * The kubernetes provider's host: each worker of the pool is one claimed
 * pod, for one conversation (singleUse).
 *
 *   start()      claim a Ready free pod (waiting, with progress, until one is)
 *   dial()       the pod's address; from then on the pod counts as used
 *   terminate()  delete the pod if it was used, hand it back to the buffer if not
 *   ended        the pod was deleted, failed or restarted under us (node lost,
 *                evicted, reclaimed, its container died)
 *
 * After its conversation the worker stops and its pod is deleted, so every
 * conversation starts on a pod no one has spoken to; the next caller's
 * worker claims another (one PATCH when the buffer has a Ready pod). A
 * worker's readiness is its pod's Ready condition, which the kubelet keeps
 * from the pod's readiness probe: the gateway does not probe pods itself.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Probe } from '../../health.js';
import type { DialInfo, WorkerDetails } from '../../types.js';
import { WorkerStartError, type HostedInstance, type StartRequest, type WorkerHost } from '../../worker/host.js';
import type { KubernetesFleet } from './fleet.js';
import { claimOf, gpusOf, isDeleting, isFinished, isReady, restartsOf } from './labels.js';
import { KubernetesMetrics } from './metrics.js';
import type { KubernetesSettings } from './settings.js';

export class KubernetesHost implements WorkerHost {
  readonly singleUse = true;
  readonly #settings: KubernetesSettings;
  readonly #log: Logger;
  readonly #metrics = new KubernetesMetrics();
  #connecting?: Promise<KubernetesFleet>;
  #fleet?: KubernetesFleet;
  #closed = false;

  constructor(settings: KubernetesSettings, log: Logger) {
    this.#settings = settings;
    this.#log = log.child({ provider: 'kubernetes' });
  }

  get fixHint(): string {
    const namespace = this.#fleet?.namespace ?? this.#settings.namespace ?? '<namespace>';
    return (
      `Check the worker pods: kubectl get pods -n ${namespace} -l '${this.#settings.selector}'. ` +
      'A gateway claims pods that are Ready and labelled quillman.dev/claim=free (the worker Deployment\'s template); see docs/kubernetes.md.'
    );
  }

  /**
   * Nothing to take over (a gateway's identity is new at every start, and the
   * pods of earlier ones are reclaimed by whoever sees their Lease expire):
   * this connects at start-up, so a missing permission or a wrong kubeconfig
   * is reported before the first caller arrives.
   */
  async adopt(): Promise<HostedInstance[]> {
    await this.#connect();
    return [];
  }

  async start(request: StartRequest): Promise<HostedInstance> {
    const fleet = await this.#connect();
    const pod = await fleet.claim({ signal: request.signal, progress: request.progress });
    return new PodSeat(fleet, pod, this.#settings, this.#log);
  }

  registerMetrics(registry: Registry): void {
    this.#metrics.register(registry, () => (this.#fleet ? { pods: this.#fleet.pods(), identity: this.#fleet.identity } : undefined));
  }

  async close(): Promise<void> {
    this.#closed = true;
    const fleet = await this.#connecting?.catch(() => undefined);
    await fleet?.close();
  }

  /** One connection per gateway, made on first need; a failed attempt is tried again by the next start. */
  #connect(): Promise<KubernetesFleet> {
    if (this.#closed) return Promise.reject(new WorkerStartError('the gateway is shutting down'));
    this.#connecting ??= (async () => {
      const { KubernetesFleet } = await import('./fleet.js');
      const fleet = await KubernetesFleet.connect(this.#settings, this.#log, this.#metrics);
      if (this.#closed) {
        await fleet.close();
        throw new WorkerStartError('the gateway is shutting down');
      }
      return (this.#fleet = fleet);
    })();
    this.#connecting.catch(() => (this.#connecting = undefined));
    return this.#connecting;
  }
}

/** One claimed pod. */
class PodSeat implements HostedInstance {
  readonly ended: Promise<string>;
  readonly url: string;
  readonly readinessTarget: string;
  readonly #fleet: KubernetesFleet;
  readonly #settings: KubernetesSettings;
  readonly #log: Logger;
  readonly #name: string;
  readonly #restarts: number;
  #pod: V1Pod;
  readonly #unwatch: () => void;
  /** A conversation was dialled on it: it goes when the worker stops, never back to the buffer. */
  #used = false;
  #ending = false;
  #end!: (how: string) => void;

  constructor(fleet: KubernetesFleet, pod: V1Pod, settings: KubernetesSettings, log: Logger) {
    this.#fleet = fleet;
    this.#settings = settings;
    this.#log = log;
    this.#pod = pod;
    this.#name = pod.metadata!.name!;
    this.#restarts = restartsOf(pod);
    this.url = fleet.endpoint(pod);
    this.readinessTarget = `worker pod ${this.#name}`;
    this.ended = new Promise<string>((resolve) => (this.#end = resolve));
    fleet.own(this.#name);
    this.#unwatch = fleet.watchPod(this.#name, (current) => this.#onPod(current));
  }

  probe(): Promise<Probe> {
    if (this.#ending) return Promise.resolve({ kind: 'down', reason: `worker pod ${this.#name} is going` });
    const pod = this.#fleet.current(this.#name) ?? this.#pod;
    if (isReady(pod)) return Promise.resolve({ kind: 'ready', healthEndpoint: true });
    return Promise.resolve({ kind: 'warming', progress: `worker pod ${this.#name} is not ready` });
  }

  dial(): Promise<DialInfo> {
    if (this.#ending) return Promise.reject(new Error(`worker pod ${this.#name} is going`));
    this.#used = true;
    return Promise.resolve({ url: this.url });
  }

  terminate(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#unwatch();
    const how = this.#used ? `its worker pod ${this.#name} was deleted` : `its worker pod ${this.#name} went back to the buffer unused`;
    void this.#fleet.release(this.#pod, { used: this.#used }).finally(() => this.#end(how));
  }

  details(): WorkerDetails {
    const gpus = gpusOf(this.#pod, this.#settings.gpuResource);
    return { pod: this.#name, node: this.#pod.spec?.nodeName ?? '', podUrl: this.url, ...(gpus ? { gpus } : {}) };
  }

  /** The pod is what the conversation runs on: its end, failure or restart ends this worker. */
  #onPod(pod: V1Pod | undefined): void {
    if (this.#ending) return;
    const why = !pod
      ? 'was deleted'
      : isDeleting(pod)
        ? 'is being deleted'
        : isFinished(pod)
          ? `stopped (${pod.status?.phase})`
          : restartsOf(pod) > this.#restarts
            ? 'restarted its container'
            : claimOf(pod).holder !== this.#fleet.identity
              ? 'was claimed away (this gateway was taken for dead)'
              : undefined;
    if (!why) {
      this.#pod = pod!;
      return;
    }
    this.#log.warn({ pod: this.#name }, `worker pod ${this.#name} ${why}`);
    this.#ending = true;
    this.#unwatch();
    const how = `its worker pod ${this.#name} ${why}${this.#used ? ' during its conversation' : ''}`;
    // A pod still there (restarted, failed) is this gateway's to delete; one being deleted needs nothing more.
    if (pod && !isDeleting(pod) && claimOf(pod).holder === this.#fleet.identity) {
      void this.#fleet.release(pod, { used: true }).finally(() => this.#end(how));
    } else {
      this.#fleet.disown(this.#name);
      this.#end(how);
    }
  }
}
