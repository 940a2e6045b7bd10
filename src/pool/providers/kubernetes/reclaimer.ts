/**
 * Reclaims the pods of dead gateways. Every gateway renews its Lease every
 * few seconds; one whose Lease has not changed for its leaseDurationSeconds
 * (as this gateway observed it, so clocks need not agree) is taken for dead,
 * and the pods it claimed are deleted: its conversations died with it, and
 * each pod holds a GPU. Its Lease is deleted after them. A claimed pod whose
 * holder has no Lease at all is reclaimed once that has lasted leaseSeconds.
 *
 * Driven by the Lease and pod informers and one timer for the next expiry;
 * several gateways may reclaim the same pod, which the API server settles
 * (the second delete gets 404).
 */
import type { V1Lease, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CLAIMED, claimOf, isDeleting } from './labels.js';

export interface ReclaimerDeps {
  identity: string;
  /** For holders without a Lease. */
  leaseSeconds: number;
  pods(): readonly V1Pod[];
  leases(): readonly V1Lease[];
  deletePod(pod: V1Pod, reason: string): Promise<void>;
  deleteLease(lease: V1Lease): Promise<void>;
  log: Logger;
}

/**
 * How far another node's clock may be behind ours before its renewTime alone could make a live
 * gateway look dead: the renewTime shortcut (for Leases dead before this gateway started watching)
 * waits at least this long beyond the Lease's duration.
 */
const MIN_SKEW_ALLOWANCE_MS = 60_000;

export class Reclaimer {
  readonly #deps: ReclaimerDeps;
  /** Per Lease: the version we last saw, when (performance.now()), and whether we have seen it change. */
  readonly #seen = new Map<string, { version: string; at: number; moved: boolean }>();
  /** Per holder without a Lease: when we first saw one of its pods. */
  readonly #missingSince = new Map<string, number>();
  readonly #deleting = new Set<string>();
  #timer?: NodeJS.Timeout;
  #closed = false;

  constructor(deps: ReclaimerDeps) {
    this.#deps = deps;
  }

  onLeaseChange(lease: V1Lease, deleted: boolean): void {
    const name = lease.metadata?.name;
    if (!name || name === this.#deps.identity) return;
    const seen = this.#seen.get(name);
    if (deleted) this.#seen.delete(name);
    else if (seen?.version !== lease.metadata?.resourceVersion) this.#seen.set(name, { version: lease.metadata!.resourceVersion!, at: performance.now(), moved: seen !== undefined });
    this.#schedule(0);
  }

  onPodChange(): void {
    this.#schedule(0);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#sweep(), Math.max(0, delayMs));
    this.#timer.unref();
  }

  #sweep(): void {
    const now = performance.now();
    let next = Infinity;
    const leases = new Map(this.#deps.leases().map((l) => [l.metadata!.name!, l]));
    const holdersSeen = new Set<string>();
    for (const pod of this.#deps.pods()) {
      const { state, holder } = claimOf(pod);
      if (state !== CLAIMED || !holder || holder === this.#deps.identity || isDeleting(pod)) continue;
      holdersSeen.add(holder);
      const expiry = this.#expiryOf(holder, leases.get(holder), now);
      if (expiry > now) {
        next = Math.min(next, expiry);
        continue;
      }
      const uid = pod.metadata!.uid!;
      if (this.#deleting.has(uid)) continue;
      this.#deleting.add(uid);
      const why = leases.has(holder) ? `its gateway ${holder} stopped renewing its Lease` : `its gateway ${holder} has no Lease`;
      this.#deps.log.warn({ pod: pod.metadata!.name, holder }, `reclaiming worker pod ${pod.metadata!.name}: ${why}`);
      void this.#deps.deletePod(pod, why).finally(() => this.#deleting.delete(uid));
    }
    for (const holder of this.#missingSince.keys()) if (!holdersSeen.has(holder) || leases.has(holder)) this.#missingSince.delete(holder);
    // Expired Leases go too, once their pods are on their way out: gateways that died leave nothing behind.
    for (const [name, lease] of leases) {
      if (name === this.#deps.identity) continue;
      const expiry = this.#expiryOf(name, lease, now);
      if (expiry > now) next = Math.min(next, expiry);
      else if (!holdersSeen.has(name) && !this.#deleting.has(`lease:${name}`)) {
        this.#deleting.add(`lease:${name}`);
        void this.#deps.deleteLease(lease).finally(() => this.#deleting.delete(`lease:${name}`));
      }
    }
    if (next !== Infinity) this.#schedule(next - now + 50);
  }

  /** When (performance.now() clock) the holder counts as dead. */
  #expiryOf(holder: string, lease: V1Lease | undefined, now: number): number {
    if (!lease) {
      let since = this.#missingSince.get(holder);
      if (since === undefined) this.#missingSince.set(holder, (since = now));
      return since + this.#deps.leaseSeconds * 1000;
    }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? this.#deps.leaseSeconds) * 1000;
    const seen = this.#seen.get(holder);
    const observed = (seen?.at ?? now) + durationMs;
    // A Lease dead before this gateway started watching (renewed an hour ago) need not wait a whole
    // duration more: its renewTime says so, with a wide margin for clocks that disagree. One seen
    // moving is alive, whatever its clock says.
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : Number.NaN;
    if (seen?.moved || Number.isNaN(renewed)) return observed;
    const byRenewTime = now + (renewed + durationMs + Math.max(MIN_SKEW_ALLOWANCE_MS, 2 * durationMs) - Date.now());
    return Math.min(observed, byRenewTime);
  }
}
