/**
 * The Modal host: each worker instance is one GPU sandbox running Kyutai's
 * server, made through Modal's SDK (loaded on first use).
 *
 * A start goes through three stages, each told to waiting callers with the
 * time so far: the image (built once, then cached by Modal), a GPU (each
 * type in the list for at most gpuWaitSeconds), the model (Kyutai's server
 * loads its weights from the volume, downloading them the first time).
 * Readiness, restarts and idle stops are HostedWorker's and the pool's.
 *
 * At start-up the host checks the credentials (a clear error naming the fix)
 * and takes over the sandboxes an earlier gateway with the same tag left
 * running: healthy idle ones are kept, up to maxWorkers; the rest are
 * terminated, so nothing keeps billing unseen.
 */
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { WorkerStartError, type StartRequest, type WorkerHost } from '../../worker/host.js';
import { ControlPlaneWatch, explainSetupError, loadSdk, ModalSetupError, type App, type Image, type ModalClient, type ModalSdk, type Sandbox, type Volume } from './control-plane.js';
import { probeEndpoint } from './endpoint-probe.js';
import { NoGpuError, placeOnGpu, type CreateParams } from './gpu-placement.js';
import { Ledger } from './ledger.js';
import { SandboxInstance, type ConnectToken } from './sandbox-instance.js';
import { imageSpec, sandboxEnv, serverCommand, TAG } from './sandbox-spec.js';
import { MOSHI_PORT, pricePerHour, VOLUME_MOUNT, type ModalSettings } from './settings.js';
import { StartProgress } from './start-progress.js';

/** An adopted sandbox must answer its health check within this to be kept. */
const ADOPT_PROBE_MS = 10_000;
const LIST_ATTEMPTS = 3;

interface Connected {
  sdk: ModalSdk;
  client: ModalClient;
  app: App;
  ca?: string[];
}

export interface ModalHostOptions {
  /** Warm workers the pool keeps, for the cost warning at start-up. */
  warm: number;
}

export class ModalHost implements WorkerHost {
  readonly fixHint: string;
  readonly #settings: ModalSettings;
  readonly #log: Logger;
  readonly #options: ModalHostOptions;
  readonly #watch = new ControlPlaneWatch();
  readonly #ledger: Ledger;
  readonly #live = new Set<SandboxInstance>();
  #connected?: Promise<Connected>;
  #image?: Promise<Image>;
  #imageBuilt = false;
  #volume?: Promise<Volume>;
  #misses?: Counter;
  #missed = new Map<string, number>();

  constructor(settings: ModalSettings, log: Logger, options: ModalHostOptions) {
    this.#settings = settings;
    this.#log = log;
    this.#options = options;
    this.#ledger = new Ledger((gpu) => pricePerHour(gpu, settings.prices));
    this.fixHint = `Check pool.modal (gpu, image, hfRepo, serverArgs) and the sandbox's output quoted above; Modal's dashboard shows app "${settings.app}" and its sandboxes.`;
  }

  async start(request: StartRequest): Promise<SandboxInstance> {
    const progress = new StartProgress(request.progress);
    const { signal } = request;
    try {
      const cp = await this.#connect();
      const image = await untilAborted(this.#buildImage(cp, progress), signal);
      const volume = await untilAborted(this.#weightsVolume(cp), signal);
      const placed = await placeOnGpu({
        sdk: cp.sdk,
        client: cp.client,
        watch: this.#watch,
        ledger: this.#ledger,
        app: cp.app,
        image,
        params: await this.#createParams(cp, request.workerId, volume),
        gpus: this.#settings.gpu,
        waitMs: this.#settings.gpuWaitSeconds * 1000,
        signal,
        stage: (text) => progress.stage(text),
        log: this.#log,
        missed: (gpu) => this.#countMiss(gpu),
      });
      let probeToken: ConnectToken;
      try {
        if (signal.aborted) throw signal.reason;
        probeToken = await this.#probeToken(placed.sandbox, request.workerId);
      } catch (err) {
        void placed.sandbox.terminate().catch(() => undefined);
        placed.meter.close();
        throw err;
      }
      this.#log.info({ worker: request.workerId, sandbox: placed.sandbox.sandboxId, gpu: placed.gpu }, `${request.workerId}: Modal sandbox ${placed.sandbox.sandboxId} runs on ${placed.gpu} after ${progress.elapsedSeconds()} s`);
      return this.#track(new SandboxInstance({ sdk: cp.sdk, sandbox: placed.sandbox, workerId: request.workerId, app: this.#settings.app, gpu: placed.gpu, probeToken, ca: cp.ca, meter: placed.meter, log: this.#log, progress }));
    } catch (err) {
      progress.finish();
      if (signal.aborted) throw signal.reason;
      throw this.#startError(err);
    }
  }

  /**
   * Checks the credentials (the first call to Modal), then takes over what
   * an earlier gateway with this gatewayTag left running.
   */
  async adopt(limit: number): Promise<SandboxInstance[]> {
    const cp = await this.#connect();
    this.#warnAboutWarmCost();
    const found = await this.#listOurs(cp);
    if (!found.length) return [];
    this.#log.info(`found ${found.length} Modal sandbox(es) an earlier gateway (tag ${this.#settings.gatewayTag}) left in app "${this.#settings.app}"; checking them`);
    const checked = await Promise.all(found.map((sb) => this.#check(cp, sb)));
    const kept: SandboxInstance[] = [];
    for (const result of checked) {
      if (result.instance && kept.length < limit) {
        kept.push(this.#track(result.instance));
        continue;
      }
      const why = result.instance ? `more than maxWorkers (${limit})` : result.why;
      this.#log.info({ sandbox: result.sandbox.sandboxId }, `terminating Modal sandbox ${result.sandbox.sandboxId} left by an earlier gateway: ${why}`);
      if (result.instance) this.#track(result.instance).terminate();
      else void result.sandbox.terminate().catch((err: Error) => this.#log.warn({ err }, `could not terminate sandbox ${result.sandbox.sandboxId}`));
    }
    return kept;
  }

  /** Our sandboxes in the app; Modal out of reach for a moment is tried again, a few times. */
  async #listOurs(cp: Connected): Promise<Sandbox[]> {
    for (let attempt = 1; ; attempt++) {
      const found: Sandbox[] = [];
      try {
        for await (const sb of cp.client.sandboxes.list({ appId: cp.app.appId, tags: { [TAG.gateway]: this.#settings.gatewayTag } })) found.push(sb);
        return found;
      } catch (err) {
        const explained = explainSetupError(err, 'list its sandboxes');
        if (explained instanceof ModalSetupError || attempt === LIST_ATTEMPTS) throw explained;
        this.#log.warn(`could not list the sandboxes an earlier gateway may have left (${(explained as Error).message}); trying again`);
        await new Promise((r) => setTimeout(r, 1000 * 2 ** attempt));
      }
    }
  }

  registerMetrics(registry: Registry): void {
    this.#ledger.registerMetrics(registry);
    const missed = this.#missed;
    this.#misses = new Counter({
      name: 'quillman_modal_gpu_unavailable_total',
      help: 'Times Modal had no GPU of this type within pool.modal.gpuWaitSeconds (the next type was tried)',
      labelNames: ['gpu'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [gpu, n] of missed) this.inc({ gpu }, n);
      },
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.#live].map((i) => i.ended));
    const cp = await this.#connected?.catch(() => undefined);
    cp?.client.close();
  }

  #track(instance: SandboxInstance): SandboxInstance {
    this.#live.add(instance);
    void instance.ended.then(() => this.#live.delete(instance));
    return instance;
  }

  #countMiss(gpu: string): void {
    this.#missed.set(gpu, (this.#missed.get(gpu) ?? 0) + 1);
  }

  /** The client and the app, made once; credentials are checked here, by the first call. */
  #connect(): Promise<Connected> {
    this.#connected ??= (async () => {
      const sdk = await loadSdk();
      const ca = await this.#extraCa();
      let client: ModalClient;
      try {
        client = new sdk.ModalClient({ ...(this.#settings.environment && { environment: this.#settings.environment }), grpcMiddleware: [this.#watch.middleware] });
      } catch (err) {
        throw explainSetupError(err, 'connect to Modal');
      }
      try {
        const app = await client.apps.fromName(this.#settings.app, { createIfMissing: true, ...(this.#settings.environment && { environment: this.#settings.environment }) });
        return { sdk, client, app, ca };
      } catch (err) {
        client.close();
        throw explainSetupError(err, `open the Modal app "${this.#settings.app}"`);
      }
    })();
    // A passing failure (network) is tried again by the next start; a setup error stays.
    this.#connected.catch((err: unknown) => {
      if (!(err instanceof ModalSetupError)) this.#connected = undefined;
    });
    return this.#connected;
  }

  async #extraCa(): Promise<string[] | undefined> {
    const file = this.#settings.caFile;
    if (!file) return undefined;
    try {
      return [...rootCertificates, await readFile(file, 'utf8')];
    } catch (err) {
      throw new ModalSetupError(`pool.modal.caFile: cannot read ${file}: ${(err as Error).message}`);
    }
  }

  /** Built once per gateway (Modal caches the layers: later gateways find it built). */
  #buildImage(cp: Connected, progress: StartProgress): Promise<Image> {
    const spec = imageSpec(this.#settings);
    const stage = spec.commands.length ? `building the sandbox image (${spec.tag} + moshi ${this.#settings.moshiVersion}; once, then cached by Modal)` : `preparing the image ${spec.tag}`;
    if (!this.#imageBuilt) progress.stage(stage);
    const stopListening = this.#watch.onBuildLog((line) => progress.stage(`${stage}: ${line.slice(0, 120)}`));
    this.#image ??= (async () => {
      const base = cp.client.images.fromRegistry(spec.tag);
      const image = spec.commands.length ? base.dockerfileCommands(spec.commands) : base;
      const built = await image.build(cp.app);
      this.#imageBuilt = true;
      return built;
    })();
    const building = this.#image;
    building.catch(() => {
      if (this.#image === building) this.#image = undefined;
    });
    return building.finally(stopListening);
  }

  #weightsVolume(cp: Connected): Promise<Volume> {
    this.#volume ??= cp.client.volumes.fromName(this.#settings.volume, { createIfMissing: true, ...(this.#settings.environment && { environment: this.#settings.environment }) });
    const made = this.#volume;
    made.catch(() => {
      if (this.#volume === made) this.#volume = undefined;
    });
    return made;
  }

  async #createParams(cp: Connected, workerId: string, volume: Volume): Promise<CreateParams & { tags: Record<string, string> }> {
    const s = this.#settings;
    const environment = s.environment && { environment: s.environment };
    const secrets = await Promise.all(s.secrets.map((name) => cp.client.secrets.fromName(name, { ...environment })));
    return {
      command: serverCommand(s),
      env: sandboxEnv(s),
      volumes: { [VOLUME_MOUNT]: volume },
      timeoutMs: s.sandboxTimeoutSeconds * 1000,
      cpu: s.cpu,
      memoryMiB: s.memoryMiB,
      ...(s.allowFrom.length && { inboundCidrAllowlist: s.allowFrom }),
      tags: { [TAG.gateway]: s.gatewayTag, [TAG.worker]: workerId },
      ...(s.region.length && { regions: s.region }),
      ...(secrets.length && { secrets }),
    };
  }

  #probeToken(sandbox: Sandbox, workerId: string): Promise<ConnectToken> {
    return sandbox.createConnectToken({ port: MOSHI_PORT, userMetadata: JSON.stringify({ worker: workerId, purpose: 'health checks' }) });
  }

  /** A sandbox an earlier gateway left: kept only if it runs and says it is free. */
  async #check(cp: Connected, sandbox: Sandbox): Promise<{ sandbox: Sandbox; instance?: SandboxInstance; why: string }> {
    try {
      if ((await sandbox.poll()) !== null) return { sandbox, why: 'it has ended' };
      const tags = await sandbox.getTags();
      const gpu = tags[TAG.gpu] ?? this.#settings.gpu[0];
      const probeToken = await this.#probeToken(sandbox, tags[TAG.worker] ?? 'adopted');
      const probe = await probeEndpoint(
        { url: `${probeToken.url.replace(/\/+$/, '')}/health`, headers: { authorization: `Bearer ${probeToken.token}` }, ca: cp.ca, timeoutMs: ADOPT_PROBE_MS },
        AbortSignal.timeout(ADOPT_PROBE_MS + 1000),
      );
      if (probe.kind !== 'ready') return { sandbox, why: probe.kind === 'down' ? `not answering (${probe.reason})` : `it is ${probe.kind}` };
      const meter = this.#ledger.open(gpu, 'starting');
      return { sandbox, why: '', instance: new SandboxInstance({ sdk: cp.sdk, sandbox, workerId: tags[TAG.worker] ?? 'adopted', app: this.#settings.app, gpu, probeToken, ca: cp.ca, meter, log: this.#log, adopted: true }) };
    } catch (err) {
      return { sandbox, why: `it could not be checked: ${(err as Error).message}` };
    }
  }

  #warnAboutWarmCost(): void {
    const { warm } = this.#options;
    if (warm <= 0) return;
    const gpu = this.#settings.gpu[0];
    const hourly = pricePerHour(gpu, this.#settings.prices);
    const cost = hourly === undefined ? '' : ` (about $${(hourly * warm).toFixed(2)} an hour, $${(hourly * warm * 24).toFixed(0)} a day, at ${gpu} prices)`;
    this.#log.warn(`pool.warm is ${warm}: ${warm} Modal GPU sandbox(es) stay up while nobody talks${cost}. Set --warm 0 to scale to zero; the first caller then waits for a cold start.`);
  }

  #startError(err: unknown): Error {
    if (err instanceof NoGpuError) {
      return new WorkerStartError(
        `${err.message}. Modal may be short of these GPUs right now; list more types to try (pool.modal.gpu, e.g. --modal-gpu L40S,A100-80GB,H100), allow more regions, or raise pool.modal.gpuWaitSeconds.`,
        { retryable: true, cause: err },
      );
    }
    const explained = explainSetupError(err, 'start a sandbox');
    if (explained instanceof ModalSetupError) return new WorkerStartError(explained.message, { retryable: false, cause: explained });
    const message = (explained as Error)?.message ?? String(explained);
    if (/Image build .* failed/i.test(message)) {
      return new WorkerStartError(`The sandbox image could not be built on Modal: ${message.trim()}\nFix pool.modal.image, baseImage or moshiVersion.`, { retryable: false, cause: err });
    }
    return new WorkerStartError(`Modal could not start a sandbox: ${message}`, { retryable: true, cause: err });
  }
}

/** Stops waiting when the signal aborts; what it waited for goes on (it is shared). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
