/**
 * This gateway's view of the worker fleet and its part in it: the
 * connection to the API server, informers on the worker pods and on the
 * gateways' Leases, this gateway's Lease, the claimer, the reclaimer, and
 * what happens to a pod after its conversation (deleted) or when it was
 * claimed and never used (handed back to the buffer).
 *
 * Loaded lazily by host.ts: `--provider local` never loads the Kubernetes
 * client.
 */
import { CoordinationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Lease, type V1Pod } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { delays, sleep } from '../../worker/backoff.js';
import { WorkerStartError } from '../../worker/host.js';
import { apiStatus, describeApiError } from './api-errors.js';
import { PodClaimer, type ClaimOptions } from './claimer.js';
import { GatewayLease } from './gateway-lease.js';
import { watchCollection, type WatchedCollection } from './informer.js';
import { loadClusterAccess, type ClusterAccess } from './kube-config.js';
import { CLAIM_LABEL, CLAIMED, CLAIMED_AT_ANNOTATION, claimOf, FREE, GATEWAY_LABEL, identityFrom, isDeleting, LEASE_LABEL, LEASE_LABEL_VALUE, podEndpoint, SAFE_TO_EVICT_ANNOTATION } from './labels.js';
import type { KubernetesMetrics } from './metrics.js';
import { checkPermissions } from './permissions.js';
import { Reclaimer } from './reclaimer.js';
import type { KubernetesSettings } from './settings.js';

const SYNC_TIMEOUT_MS = 60_000;
const DELETE_RETRY = { firstMs: 1000, maxMs: 30_000 };
/** Conflicts a hand-back rereads the pod for before it deletes the pod instead. */
const HAND_BACK_ATTEMPTS = 3;

export type PodListener = (pod: V1Pod | undefined) => void;

export class KubernetesFleet {
  readonly namespace: string;
  readonly identity: string;
  readonly #settings: KubernetesSettings;
  readonly #log: Logger;
  readonly #metrics: KubernetesMetrics;
  readonly #kubeConfig: KubeConfig;
  /** How the credentials were found, for messages. */
  readonly #source: string;
  readonly #core: CoreV1Api;
  readonly #coordination: CoordinationV1Api;
  readonly #claimer: PodClaimer;
  readonly #reclaimer: Reclaimer;
  readonly #lease: GatewayLease;
  readonly #listeners = new Map<string, Set<PodListener>>();
  /** Pods a seat of this gateway holds. Any other pod claimed by this gateway is an orphan and goes. */
  readonly #owned = new Set<string>();
  readonly #releasing = new Set<string>();
  /** Releases on their way: close() waits for them, so that nothing this gateway claimed outlives it. */
  readonly #pending = new Set<Promise<void>>();
  #pods!: WatchedCollection<V1Pod>;
  #leases!: WatchedCollection<V1Lease>;
  #closed = false;
  #closing?: Promise<void>;
  /** Aborted as closing starts: cuts short the waits between retries, whose next failure then gives up. */
  readonly #closeSignal = new AbortController();

  private constructor(settings: KubernetesSettings, log: Logger, metrics: KubernetesMetrics, access: ClusterAccess) {
    this.#settings = settings;
    this.#metrics = metrics;
    this.namespace = access.namespace;
    // Random per start, whatever the prefix: two gateways never share a name, and a restarted one
    // leaves its old claims to be reclaimed with its old Lease.
    this.identity = identityFrom(settings.identity ?? (process.env.HOSTNAME || hostname()), randomBytes(3).toString('hex'));
    this.#log = log.child({ gateway: this.identity });
    const kc = access.kubeConfig;
    this.#kubeConfig = kc;
    this.#source = access.source;
    this.#core = kc.makeApiClient(CoreV1Api);
    const coordination = kc.makeApiClient(CoordinationV1Api);
    this.#coordination = coordination;
    this.#claimer = new PodClaimer({
      identity: this.identity,
      namespace: this.namespace,
      pods: () => this.#pods.list(),
      patch: (name, body) => this.#core.patchNamespacedPod({ name, namespace: this.namespace, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
      log: this.#log,
      onClaimed: (seconds) => metrics.claimed(seconds),
      onConflict: () => metrics.conflict(),
      onFailed: () => metrics.failed(),
    });
    this.#claimer.orphaned = (pod) => void this.release(pod, { used: false });
    this.#reclaimer = new Reclaimer({
      identity: this.identity,
      leaseSeconds: settings.leaseSeconds,
      pods: () => this.#pods.list(),
      leases: () => this.#leases.list(),
      deletePod: async (pod, reason) => {
        if (await this.#delete(pod, reason)) metrics.reclaimed();
      },
      deleteLease: (lease) => this.#deleteLease(lease),
      log: this.#log,
    });
    this.#lease = new GatewayLease({
      api: coordination,
      namespace: this.namespace,
      identity: this.identity,
      leaseSeconds: settings.leaseSeconds,
      renewSeconds: settings.renewSeconds ?? settings.leaseSeconds / 3,
      log: this.#log,
      cached: () => this.#leases?.get(this.identity, this.namespace),
      onRenewFailure: () => metrics.renewFailed(),
    });
  }

  /** Connects, checks permissions, takes this gateway's Lease and fills the caches. Errors name the fix. */
  static async connect(settings: KubernetesSettings, log: Logger, metrics: KubernetesMetrics): Promise<KubernetesFleet> {
    let access: ClusterAccess;
    try {
      access = loadClusterAccess(settings);
    } catch (err) {
      throw new WorkerStartError(`Kubernetes: ${(err as Error).message}`);
    }
    const fleet = new KubernetesFleet(settings, log, metrics, access);
    await fleet.#start();
    return fleet;
  }

  async #start(): Promise<void> {
    await checkPermissions(this.#kubeConfig, this.namespace, this.#source, this.#log);
    try {
      await this.#lease.acquire();
    } catch (err) {
      throw new WorkerStartError(`Kubernetes: ${describeApiError(err, 'create leases', this.namespace)}`, { retryable: apiStatus(err) === undefined || apiStatus(err)! >= 500 });
    }
    this.#pods = watchCollection<V1Pod>({
      kubeConfig: this.#kubeConfig,
      path: `/api/v1/namespaces/${this.namespace}/pods`,
      list: () => this.#core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.#settings.selector }),
      labelSelector: this.#settings.selector,
      onChange: (pod, deleted) => this.#onPod(pod, deleted),
      log: this.#log,
      what: 'worker pods',
    });
    this.#leases = watchCollection<V1Lease>({
      kubeConfig: this.#kubeConfig,
      path: `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`,
      list: () => this.#coordination.listNamespacedLease({ namespace: this.namespace, labelSelector: `${LEASE_LABEL}=${LEASE_LABEL_VALUE}` }),
      labelSelector: `${LEASE_LABEL}=${LEASE_LABEL_VALUE}`,
      onChange: (lease, deleted) => this.#reclaimer.onLeaseChange(lease, deleted),
      log: this.#log,
      what: "the gateways' Leases",
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WorkerStartError(`Kubernetes: could not list the worker pods and Leases in namespace ${this.namespace} within ${SYNC_TIMEOUT_MS / 1000} s; see the warnings above`, { retryable: true })), SYNC_TIMEOUT_MS);
    });
    try {
      await Promise.race([Promise.all([this.#pods.synced, this.#leases.synced]), timeout]);
    } catch (err) {
      await this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.#log.info(
      { namespace: this.namespace, selector: this.#settings.selector, credentials: this.#source, pods: this.#pods.list().length },
      `watching worker pods "${this.#settings.selector}" in namespace ${this.namespace} as gateway ${this.identity}`,
    );
  }

  claim(options: ClaimOptions): Promise<V1Pod> {
    return this.#claimer.claim(options);
  }

  endpoint(pod: V1Pod): string {
    return podEndpoint(pod, this.#settings);
  }

  /** The newest cached version of a pod. */
  current(name: string): V1Pod | undefined {
    return this.#pods.get(name, this.namespace);
  }

  /** A seat holds this pod: it is not an orphan. */
  own(name: string): void {
    this.#owned.add(name);
  }

  /** The seat's pod went away on its own: nothing to release. */
  disown(name: string): void {
    this.#owned.delete(name);
  }

  /** Hears every change of one pod (undefined once it is gone). */
  watchPod(name: string, listener: PodListener): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(name);
    };
  }

  /**
   * Gives a claimed pod up: deleted once a conversation used it (fresh model
   * state for the next one), handed back to the buffer if nobody used it.
   */
  release(pod: V1Pod, { used }: { used: boolean }): Promise<void> {
    const name = pod.metadata!.name!;
    this.#owned.delete(name);
    const done = (async () => {
      if (!used && !this.#closed && (await this.#handBack(pod))) return;
      await this.#delete(pod, used ? 'its conversation ended' : 'not needed any more');
    })();
    this.#pending.add(done);
    void done.finally(() => this.#pending.delete(done));
    return done;
  }

  /** Gives up what this gateway holds: claims on their way and pods being released finish first, then the Lease goes. */
  async close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closeSignal.abort();
    this.#closing = (async () => {
      await this.#claimer.close();
      while (this.#pending.size) await Promise.all(this.#pending);
      await this.#sweepOrphans();
      this.#closed = true;
      this.#reclaimer.close();
      await Promise.all([this.#pods?.stop(), this.#leases?.stop()]);
      await this.#lease.release();
    })();
    return this.#closing;
  }

  /**
   * The last look before the Lease goes: a pod still labelled with this gateway that no seat holds (a seat that ended
   * on a stale watch event, a release that failed) would otherwise wait for another gateway to reclaim it, and with no
   * other gateway, forever. Asked of the API server, not the cache, which may lag.
   */
  async #sweepOrphans(): Promise<void> {
    let orphans: V1Pod[];
    try {
      const list = await this.#core.listNamespacedPod({ namespace: this.namespace, labelSelector: `${GATEWAY_LABEL}=${this.identity}` });
      orphans = list.items.filter((pod) => !isDeleting(pod) && !this.#owned.has(pod.metadata!.name!));
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not list this gateway\'s pods at shutdown; other gateways will reclaim any left');
      return;
    }
    await Promise.all(orphans.map((pod) => this.#delete(pod, 'left claimed by this gateway at shutdown')));
  }

  pods(): readonly V1Pod[] {
    return this.#pods?.list() ?? [];
  }

  #onPod(pod: V1Pod, deleted: boolean): void {
    const name = pod.metadata!.name!;
    this.#claimer.poke();
    this.#reclaimer.onPodChange();
    for (const listener of this.#listeners.get(name) ?? []) listener(deleted ? undefined : pod);
    const { state, holder } = claimOf(pod);
    if (!deleted && state === CLAIMED && holder === this.identity && !this.#owned.has(name) && !this.#releasing.has(name) && !this.#claimer.isClaiming(name) && !isDeleting(pod)) {
      // Claimed by this gateway but held by no seat: a release that failed, or a claim whose requester left.
      this.#log.warn({ pod: name }, `worker pod ${name} is claimed by this gateway but used by nothing; deleting it`);
      void this.#delete(pod, 'claimed by this gateway but used by nothing');
    }
  }

  /** Relabels an unused pod free again (its ReplicaSet adopts it); false when that could not be done (it is then deleted). */
  async #handBack(pod: V1Pod): Promise<boolean> {
    const name = pod.metadata!.name!;
    // `pod` is our claim's answer or a later copy, so it shows our claim. The watch may lag behind it (a loaded API
    // server or gateway): a cached copy that still shows the pod free is older than our claim and says nothing.
    const cached = this.current(name);
    const newest = cached && (isDeleting(cached) || claimOf(cached).state !== FREE) ? cached : pod;
    this.#releasing.add(name);
    try {
      return await this.#patchFree(name, newest);
    } finally {
      this.#releasing.delete(name);
    }
  }

  /**
   * Labels the pod free if this gateway still holds it. Others change the pod after our claim too (its ReplicaSet lets go
   * of it, the kubelet reports): a conflict then means a newer copy to read, not another holder.
   */
  async #patchFree(name: string, claimed: V1Pod): Promise<boolean> {
    let newest = claimed;
    for (let attempt = 1; ; attempt++) {
      if (isDeleting(newest) || claimOf(newest).holder !== this.identity) return true;
      try {
        await this.#core.patchNamespacedPod(
          {
            name,
            namespace: this.namespace,
            body: {
              metadata: {
                resourceVersion: newest.metadata!.resourceVersion,
                labels: { [CLAIM_LABEL]: FREE, [GATEWAY_LABEL]: null },
                annotations: { [CLAIMED_AT_ANNOTATION]: null, [SAFE_TO_EVICT_ANNOTATION]: null },
              },
            },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        this.#metrics.released('returned');
        this.#log.debug({ pod: name }, 'handed an unused worker pod back');
        return true;
      } catch (err) {
        const status = apiStatus(err);
        if (status === 404) return true;
        if (status === 409 && attempt < HAND_BACK_ATTEMPTS) {
          const fresh = await this.#read(name).catch(() => undefined);
          if (fresh === null) return true;
          if (fresh) {
            newest = fresh;
            continue;
          }
        }
        this.#log.debug({ pod: name, err: (err as Error).message }, 'could not hand the pod back; deleting it');
        return false;
      }
    }
  }

  /** One pod as the API server has it now (null: gone), by a list (the gateway's Role grants no `get` on pods). */
  async #read(name: string): Promise<V1Pod | null> {
    const list = await this.#core.listNamespacedPod({ namespace: this.namespace, fieldSelector: `metadata.name=${name}` });
    return list.items[0] ?? null;
  }

  /** Deletes a pod, bound to its uid; retried while the API server is unreachable. True when this call deleted it. */
  async #delete(pod: V1Pod, reason: string): Promise<boolean> {
    const name = pod.metadata!.name!;
    this.#releasing.add(name);
    try {
      for (const delay of delays(DELETE_RETRY)) {
        try {
          await this.#core.deleteNamespacedPod({ name, namespace: this.namespace, body: { preconditions: { uid: pod.metadata!.uid } } });
          this.#metrics.released('deleted');
          this.#log.debug({ pod: name, reason }, 'deleted a worker pod');
          return true;
        } catch (err) {
          const status = apiStatus(err);
          // Gone already, or a different pod by now: nothing of ours to delete.
          if (status === 404 || status === 409) return false;
          const problem = describeApiError(err, `delete pod ${name}`, this.namespace);
          if (this.#closing) {
            // Without this gateway's Lease the other gateways reclaim it within leaseSeconds.
            this.#log.warn({ pod: name, err: problem }, `could not delete worker pod ${name} (${reason}); the other gateways will reclaim it`);
            return false;
          }
          this.#log.warn({ pod: name, err: problem, retryInMs: delay }, `could not delete worker pod ${name} (${reason}); trying again`);
          await sleep(delay, this.#closeSignal.signal);
        }
      }
      throw new Error('unreachable: the retry delays never end');
    } finally {
      this.#releasing.delete(name);
    }
  }

  async #deleteLease(lease: V1Lease): Promise<void> {
    try {
      await this.#coordination.deleteNamespacedLease({ name: lease.metadata!.name!, namespace: this.namespace, body: { preconditions: { resourceVersion: lease.metadata!.resourceVersion } } });
      this.#log.info(`removed the expired Lease of gateway ${lease.metadata!.name}`);
    } catch (err) {
      const status = apiStatus(err);
      if (status !== 404 && status !== 409) this.#log.warn({ err: (err as Error).message }, `could not remove the expired Lease ${lease.metadata!.name}`);
    }
  }
}
