/**
 * The provider's metrics, on the gateway's /metrics once it registers them:
 * claims by outcome and how long they took, pods reclaimed from dead gateways
 * and released after conversations, the worker pods this gateway sees by
 * state, and failed Lease renewals. Queued callers (what a worker autoscaler
 * scales on) are the gateway's own quillman_sessions_queued.
 */
import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client';
import type { V1Pod } from '@kubernetes/client-node';
import { claimOf, FREE, isDeleting, isReady } from './labels.js';

export class KubernetesMetrics {
  readonly #claims = new Counter({ name: 'quillman_kubernetes_claims_total', help: 'Attempts to claim a worker pod, by outcome: claimed, conflict (another gateway won it), failed', labelNames: ['outcome'], registers: [] });
  readonly #claimSeconds = new Histogram({
    name: 'quillman_kubernetes_claim_seconds',
    help: 'Time from asking for a worker pod to holding one (includes waiting for one to become ready)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [],
  });
  readonly #reclaimed = new Counter({ name: 'quillman_kubernetes_reclaimed_pods_total', help: 'Worker pods deleted because the gateway holding them stopped renewing its Lease', registers: [] });
  readonly #released = new Counter({ name: 'quillman_kubernetes_released_pods_total', help: 'Worker pods given up by this gateway: deleted (after a conversation) or returned (claimed, never used)', labelNames: ['how'], registers: [] });
  readonly #renewFailures = new Counter({ name: 'quillman_kubernetes_lease_renew_failures_total', help: "Failed renewals of this gateway's Lease", registers: [] });
  readonly #registered = new WeakSet<Registry>();

  claimed(seconds: number): void {
    this.#claims.labels('claimed').inc();
    this.#claimSeconds.observe(seconds);
  }

  conflict(): void {
    this.#claims.labels('conflict').inc();
  }

  failed(): void {
    this.#claims.labels('failed').inc();
  }

  reclaimed(): void {
    this.#reclaimed.inc();
  }

  released(how: 'deleted' | 'returned'): void {
    this.#released.labels(how).inc();
  }

  renewFailed(): void {
    this.#renewFailures.inc();
  }

  /** Adds them to the gateway's registry, with a gauge of the pods in view (read from the informer cache at each scrape). */
  register(registry: Registry, view: () => { pods: readonly V1Pod[]; identity: string } | undefined): void {
    if (this.#registered.has(registry)) return;
    this.#registered.add(registry);
    const owned: Metric<string>[] = [this.#claims, this.#claimSeconds, this.#reclaimed, this.#released, this.#renewFailures];
    for (const metric of owned) registry.registerMetric(metric);
    new Gauge({
      name: 'quillman_kubernetes_worker_pods',
      help: 'Worker pods this gateway sees, by state: free_ready, free_starting, claimed_here, claimed_elsewhere, terminating',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        this.reset();
        const current = view();
        if (!current) return;
        const counts: Record<string, number> = { free_ready: 0, free_starting: 0, claimed_here: 0, claimed_elsewhere: 0, terminating: 0 };
        for (const pod of current.pods) {
          const { state, holder } = claimOf(pod);
          const key = isDeleting(pod) ? 'terminating' : state === FREE ? (isReady(pod) ? 'free_ready' : 'free_starting') : holder === current.identity ? 'claimed_here' : 'claimed_elsewhere';
          counts[key]++;
        }
        for (const [state, n] of Object.entries(counts)) this.labels(state).set(n);
      },
    });
  }
}
