/**
 * Claims worker pods for this gateway, exactly once across every gateway:
 * a claim is a patch that relabels a Ready free pod as claimed, sent with the
 * resourceVersion this gateway last saw. The API server applies it only if
 * the pod has not changed since, so of several gateways racing for one pod
 * one wins and the others get 409 Conflict and try another (the same
 * compare-and-set an Agones allocation does).
 *
 * Requests wait in line, first come first served; whenever the pod cache
 * changes, each waiting request takes a different claimable pod, picked at
 * random so that gateways rarely race for the same one. Nothing polls.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { WorkerStartError } from '../../worker/host.js';
import { apiStatus, describeApiError } from './api-errors.js';
import { CLAIM_LABEL, CLAIMED, CLAIMED_AT_ANNOTATION, claimOf, FREE, GATEWAY_LABEL, isClaimable, isDeleting, isReady, SAFE_TO_EVICT_ANNOTATION } from './labels.js';

export interface ClaimerDeps {
  identity: string;
  namespace: string;
  /** Worker pods in the cache. */
  pods(): readonly V1Pod[];
  /** A merge patch of one pod; the body's resourceVersion makes it conditional. */
  patch(name: string, body: object): Promise<V1Pod>;
  log: Logger;
  onClaimed(seconds: number): void;
  onConflict(): void;
  onFailed(): void;
}

export interface ClaimOptions {
  signal: AbortSignal;
  /** While waiting: what the wait is for, and the step (the message without its changing counts). */
  progress(message: string, step: string): void;
}

interface Request extends ClaimOptions {
  startedAt: number;
  resolve(pod: V1Pod): void;
  reject(err: unknown): void;
  /** The pod being patched for this request, if any. */
  attempt?: string;
  told?: string;
  /** Aborted while its patch was on the way: the pod it wins goes to `orphaned`. */
  abandoned?: boolean;
}

/** After a failure that is not a lost race (API server unavailable), wait before the next attempt. */
const RETRY_MS = 1000;
const WAIT_STEP = 'waiting for a ready worker pod';

export class PodClaimer {
  readonly #deps: ClaimerDeps;
  readonly #waiting: Request[] = [];
  /** Pods this gateway is patching right now. */
  readonly #attempting = new Set<string>();
  /** Patches on their way, settled or not. */
  readonly #inFlight = new Set<Promise<void>>();
  /** Pods lost to another gateway, with the resourceVersion they were lost at: skipped until they change. */
  readonly #lost = new Map<string, string>();
  #retryTimer?: NodeJS.Timeout;
  #closed = false;

  /** Called with a pod claimed for a request that was abandoned meanwhile: it must be handed back. */
  orphaned: (pod: V1Pod) => void = () => undefined;

  constructor(deps: ClaimerDeps) {
    this.#deps = deps;
  }

  /** Resolves with the claimed pod as the API server returned it; rejects with the signal's reason when aborted. */
  claim(options: ClaimOptions): Promise<V1Pod> {
    if (this.#closed) return Promise.reject(new WorkerStartError('the gateway is shutting down'));
    if (options.signal.aborted) return Promise.reject(options.signal.reason);
    return new Promise<V1Pod>((resolve, reject) => {
      const request: Request = { ...options, startedAt: performance.now(), resolve, reject };
      options.signal.addEventListener(
        'abort',
        () => {
          const at = this.#waiting.indexOf(request);
          if (at < 0) return;
          this.#waiting.splice(at, 1);
          if (request.attempt) request.abandoned = true;
          reject(options.signal.reason);
        },
        { once: true },
      );
      this.#waiting.push(request);
      this.poke();
    });
  }

  /** The pod cache changed (or a request arrived): hand out what can be claimed, tell the rest why they wait. */
  poke(): void {
    // Every pod event pokes: with nobody waiting there is nothing to hand out, and scanning all pods would be wasted.
    if (this.#closed || this.#waiting.length === 0) return;
    const pods = this.#deps.pods();
    this.#forgetGone(pods);
    const candidates = shuffle(pods.filter((p) => isClaimable(p) && !this.#attempting.has(p.metadata!.name!) && this.#lost.get(p.metadata!.name!) !== p.metadata!.resourceVersion));
    for (const request of this.#waiting) {
      if (request.attempt) continue;
      const pod = candidates.pop();
      if (!pod) break;
      const attempt = this.#attempt(request, pod);
      this.#inFlight.add(attempt);
      void attempt.finally(() => this.#inFlight.delete(attempt));
    }
    const { message, step } = this.#describeWait(pods);
    for (const request of this.#waiting) {
      if (request.attempt || request.told === message) continue;
      request.told = message;
      request.progress(message, step);
    }
  }

  /** A claim of this pod is on its way: the watch may show it claimed before the patch's answer arrives. */
  isClaiming(name: string): boolean {
    return this.#attempting.has(name);
  }

  /** Turns waiting requests away; resolves once the patches already sent have been answered (their pods handed back). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const err = new WorkerStartError('the gateway is shutting down');
    for (const request of this.#waiting.splice(0)) {
      if (request.attempt) request.abandoned = true;
      request.reject(err);
    }
    await Promise.all(this.#inFlight);
  }

  async #attempt(request: Request, pod: V1Pod): Promise<void> {
    const name = pod.metadata!.name!;
    const version = pod.metadata!.resourceVersion!;
    request.attempt = name;
    this.#attempting.add(name);
    let retryLater = false;
    try {
      const claimed = await this.#deps.patch(name, {
        metadata: {
          resourceVersion: version,
          labels: { [CLAIM_LABEL]: CLAIMED, [GATEWAY_LABEL]: this.#deps.identity },
          annotations: { [CLAIMED_AT_ANNOTATION]: new Date().toISOString(), [SAFE_TO_EVICT_ANNOTATION]: 'false' },
        },
      });
      this.#deps.onClaimed((performance.now() - request.startedAt) / 1000);
      this.#deps.log.debug({ pod: name }, 'claimed a worker pod');
      if (request.abandoned) return this.orphaned(claimed);
      this.#remove(request);
      request.resolve(claimed);
    } catch (err) {
      request.attempt = undefined;
      const status = apiStatus(err);
      if (status === 409 || status === 404) {
        // Another gateway won it (or it changed, or it is gone): try another.
        this.#lost.set(name, version);
        this.#deps.onConflict();
      } else if (status === 401 || status === 403) {
        this.#deps.onFailed();
        this.#remove(request);
        if (!request.abandoned) request.reject(new WorkerStartError(describeApiError(err, 'patch pods (to claim one)', this.#deps.namespace)));
      } else {
        this.#deps.onFailed();
        this.#deps.log.warn({ pod: name, err: describeApiError(err, `claim pod ${name}`, this.#deps.namespace) }, 'a claim failed; trying again');
        retryLater = true;
      }
    } finally {
      this.#attempting.delete(name);
    }
    if (retryLater) this.#retrySoon();
    else this.poke();
  }

  #retrySoon(): void {
    if (this.#retryTimer || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.poke();
    }, RETRY_MS);
    this.#retryTimer.unref();
  }

  #remove(request: Request): void {
    const at = this.#waiting.indexOf(request);
    if (at >= 0) this.#waiting.splice(at, 1);
  }

  #forgetGone(pods: readonly V1Pod[]): void {
    if (this.#lost.size === 0) return;
    const present = new Set(pods.map((p) => p.metadata!.name!));
    for (const name of this.#lost.keys()) if (!present.has(name)) this.#lost.delete(name);
  }

  /**
   * "waiting for a ready worker pod: none is free (4 claimed, 2 starting)"; the step leaves out the
   * counts, so that other gateways' claims coming and going are not taken for progress.
   */
  #describeWait(pods: readonly V1Pod[]): { message: string; step: string } {
    if (pods.length === 0) {
      const message = `${WAIT_STEP}: no pod matches the worker selector yet`;
      return { message, step: message };
    }
    const counts = { claimed: 0, starting: 0, unscheduled: 0, readyFree: 0 };
    for (const pod of pods) {
      if (isDeleting(pod)) continue;
      if (claimOf(pod).state !== FREE) counts.claimed++;
      else if (isReady(pod)) counts.readyFree++;
      else if (pod.spec?.nodeName) counts.starting++;
      else counts.unscheduled++;
    }
    const parts = [`${counts.claimed} claimed`];
    if (counts.starting) parts.push(`${counts.starting} starting`);
    if (counts.unscheduled) parts.push(`${counts.unscheduled} not yet scheduled`);
    if (counts.readyFree) parts.push(`${counts.readyFree} being claimed`);
    const step = `${WAIT_STEP}: none is free`;
    return { message: `${step} (${parts.join(', ')})`, step };
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
