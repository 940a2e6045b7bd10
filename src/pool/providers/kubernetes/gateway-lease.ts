/**
 * This gateway's coordination.k8s.io Lease: created at start, renewed every
 * renewSeconds, deleted at shutdown. The other gateways watch it; when it
 * stops moving for leaseSeconds they take this gateway for dead and delete
 * the pods it claimed (reclaimer.ts).
 */
import { V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiStatus } from './api-errors.js';
import { LEASE_LABEL, LEASE_LABEL_VALUE } from './labels.js';

export interface GatewayLeaseOptions {
  api: CoordinationV1Api;
  namespace: string;
  identity: string;
  leaseSeconds: number;
  renewSeconds: number;
  log: Logger;
  /** The newest version the Lease informer has seen, used after a conflict. */
  cached(): V1Lease | undefined;
  onRenewFailure(): void;
}

export class GatewayLease {
  #lease?: V1Lease;
  #timer?: NodeJS.Timeout;
  #closed = false;
  /** When the last renewal went through (performance.now()). */
  #renewedAt = 0;
  #failingSince?: number;

  constructor(private readonly options: GatewayLeaseOptions) {}

  get name(): string {
    return this.options.identity;
  }

  /** Creates the Lease; rejects with the API server's answer (e.g. 403 without RBAC). */
  async acquire(): Promise<void> {
    const { api, namespace, identity, leaseSeconds } = this.options;
    const now = new V1MicroTime();
    this.#lease = await api.createNamespacedLease({
      namespace,
      body: {
        metadata: { name: identity, labels: { [LEASE_LABEL]: LEASE_LABEL_VALUE } },
        spec: { holderIdentity: identity, leaseDurationSeconds: Math.ceil(leaseSeconds), acquireTime: now, renewTime: now },
      },
    });
    this.#renewedAt = performance.now();
    this.#schedule();
  }

  async release(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (!this.#lease) return;
    try {
      await this.options.api.deleteNamespacedLease({ name: this.name, namespace: this.options.namespace });
    } catch (err) {
      if (apiStatus(err) !== 404) this.options.log.warn({ err: (err as Error).message }, `could not delete this gateway's Lease ${this.name}; it expires on its own`);
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#renew(), this.options.renewSeconds * 1000);
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    const { api, namespace, log } = this.options;
    const current = this.#lease!;
    try {
      this.#lease = await api.replaceNamespacedLease({
        name: this.name,
        namespace,
        body: { ...current, spec: { ...current.spec, renewTime: new V1MicroTime() } },
      });
      this.#renewedAt = performance.now();
      if (this.#failingSince !== undefined) log.info(`renewing this gateway's Lease ${this.name} again`);
      this.#failingSince = undefined;
    } catch (err) {
      if (this.#closed) return;
      const status = apiStatus(err);
      this.options.onRenewFailure();
      this.#failingSince ??= performance.now();
      const lateSeconds = (performance.now() - this.#renewedAt) / 1000;
      if (status === 409) {
        // Changed meanwhile (an informer lag, a clock-skewed reclaimer): go on from the newest version.
        const cached = this.options.cached();
        if (cached) this.#lease = cached;
      } else if (status === 404) {
        // Another gateway took this one for dead and removed the Lease (and deleted its pods). Start over.
        log.warn(`this gateway's Lease ${this.name} was removed by another gateway (it took this one for dead after ${lateSeconds.toFixed(1)} s without renewal); creating it again`);
        try {
          await this.acquire();
          return;
        } catch (again) {
          log.error({ err: (again as Error).message }, 'could not create this gateway\'s Lease again');
        }
      } else {
        const level = lateSeconds > this.options.leaseSeconds ? 'error' : 'warn';
        log[level](
          { err: (err as Error).message },
          `could not renew this gateway's Lease ${this.name} (last renewed ${lateSeconds.toFixed(1)} s ago${lateSeconds > this.options.leaseSeconds ? '; other gateways may now reclaim its pods' : ''})`,
        );
      }
    }
    this.#schedule();
  }
}
