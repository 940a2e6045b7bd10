/**
 * Getting a sandbox onto a GPU, with a bounded wait of our own per GPU type.
 *
 * Modal's `sandboxes.create()` blocks until Modal places the sandbox, up to
 * 21 minutes, and a caller cannot wait that long. So each type gets
 * `gpuWaitSeconds`; then the sandbox still waiting in Modal's queue is
 * terminated (found by a tag unique to this attempt) and the next type in the
 * list is asked for. Modal saying "no capacity" outright counts the same.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isNoCapacity, type App, type ControlPlaneWatch, type Image, type ModalClient, type ModalSdk, type Sandbox } from './control-plane.js';
import type { Ledger, Meter } from './ledger.js';
import { article } from './start-progress.js';
import { TAG } from './sandbox-spec.js';

export type CreateParams = NonNullable<Parameters<ModalClient['sandboxes']['create']>[2]>;

export interface PlacementRequest {
  sdk: ModalSdk;
  client: ModalClient;
  watch: ControlPlaneWatch;
  ledger: Ledger;
  app: App;
  image: Image;
  /** Everything but the GPU and the per-attempt tag. */
  params: CreateParams & { tags: Record<string, string> };
  gpus: readonly string[];
  waitMs: number;
  signal: AbortSignal;
  stage(text: string): void;
  log: Logger;
  /** Counts a GPU type that could not be had in time. */
  missed(gpu: string): void;
}

export interface Placed {
  sandbox: Sandbox;
  gpu: string;
  meter: Meter;
}

/** Thrown when no GPU type of the list could be had; `retryable`: Modal may have one later. */
export class NoGpuError extends Error {
  constructor(readonly tried: string[]) {
    super(`no GPU could be had on Modal: ${tried.join('; ')}`);
    this.name = 'NoGpuError';
  }
}

type Outcome = { kind: 'placed'; sandbox: Sandbox } | { kind: 'failed'; err: unknown } | { kind: 'timeout' } | { kind: 'aborted' };

export async function placeOnGpu(req: PlacementRequest): Promise<Placed> {
  const tried: string[] = [];
  const waitSeconds = Math.round(req.waitMs / 100) / 10;
  for (const gpu of req.gpus) {
    req.stage(`waiting for ${article(gpu)} ${gpu} GPU on Modal${tried.length ? ` (${tried.join('; ')})` : ''}`);
    const startTag = randomUUID();
    const meter = req.ledger.open(gpu, 'queued');
    const creating = req.client.sandboxes.create(req.app, req.image, { ...req.params, gpu, tags: { ...req.params.tags, [TAG.gpu]: gpu, [TAG.start]: startTag } });
    const outcome = await settleWithin(creating, req.waitMs, req.signal);
    if (outcome.kind === 'placed') {
      req.watch.forget(startTag);
      meter.set('starting');
      return { sandbox: outcome.sandbox, gpu, meter };
    }
    meter.close();
    if (outcome.kind === 'failed') {
      req.watch.forget(startTag);
      if (!isNoCapacity(req.sdk, outcome.err)) throw outcome.err;
      tried.push(`Modal has no ${gpu} free`);
    } else {
      await abandon(req, creating, startTag);
      if (outcome.kind === 'aborted') throw req.signal.reason;
      tried.push(`no ${gpu} within ${waitSeconds} s`);
    }
    req.missed(gpu);
    req.log.warn({ gpu }, `no ${gpu} GPU on Modal: ${tried.at(-1)}`);
  }
  throw new NoGpuError(tried);
}

function settleWithin(creating: Promise<Sandbox>, ms: number, signal: AbortSignal): Promise<Outcome> {
  return new Promise((resolve) => {
    const finish = (outcome: Outcome) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onAbort = () => finish({ kind: 'aborted' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), ms);
    if (signal.aborted) return finish({ kind: 'aborted' });
    signal.addEventListener('abort', onAbort, { once: true });
    creating.then(
      (sandbox) => finish({ kind: 'placed', sandbox }),
      (err: unknown) => finish({ kind: 'failed', err }),
    );
  });
}

/** Ends a sandbox we stopped waiting for, whether it is still queued or got placed just now. */
async function abandon(req: PlacementRequest, creating: Promise<Sandbox>, startTag: string): Promise<void> {
  // Placed after all, as we gave up: end it too.
  creating.then((late) => late.terminate()).catch(() => undefined);
  const id = req.watch.createdWith(startTag) ?? (await findByTag(req, startTag));
  req.watch.forget(startTag);
  if (!id) return;
  try {
    const queued = await req.client.sandboxes.fromId(id);
    await queued.terminate();
  } catch (err) {
    req.log.warn({ err, sandbox: id }, `could not end the sandbox ${id} that waited for a GPU; it ends when placed (see the gateway log)`);
  }
}

async function findByTag(req: PlacementRequest, startTag: string): Promise<string | undefined> {
  try {
    for await (const sb of req.client.sandboxes.list({ appId: req.app.appId, tags: { [TAG.start]: startTag } })) return sb.sandboxId;
  } catch {
    // Not listed (yet): the late-placement guard ends it.
  }
  return undefined;
}
