/**
 * STAND-IN for Modal's control plane (https://modal.com), for offline tests.
 * Modal cannot be reached from here, so this gRPC server on 127.0.0.1 plays
 * `modal.client.ModalClient` for the REAL `modal` npm SDK, which reaches it
 * through `MODAL_SERVER_URL=http://127.0.0.1:<port>` (plain-text gRPC).
 * Messages come from our own modal-api.proto, written from the field names and
 * numbers of Modal's API. Each "sandbox" is a local process (by default this
 * repository's loopback worker) on a free loopback port, reachable through
 * per-sandbox TLS tunnels and a connect-token proxy signed by a throwaway CA.
 * Tests steer it with the methods below (scheduling delay, GPU capacity,
 * killing a sandbox, image builds) and read its state (sandboxes, counters).
 * Guide: /work/team/modal-stand-in.md.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { AuthGate, randomCredentials, type Credentials } from './auth.js';
import { ConnectProxy } from './connect-proxy.js';
import { Fleet, type SandboxFilter } from './fleet.js';
import { GenericStatus, ImageBuilder, type ImageBuildSettings } from './images.js';
import { inboundFilter } from './inbound.js';
import { loopbackWorkerLauncher, type Launcher } from './launch.js';
import { ObjectRegistry } from './objects.js';
import type { SandboxSnapshot } from './sandbox.js';
import { createService } from './service.js';
import { makeCertificates } from './tls.js';
import { registerUnknownMethods } from './unknown-methods.js';

export type { Launcher, LaunchContext, LocalCommand } from './launch.js';
export { loopbackWorkerLauncher, REPO_ROOT } from './launch.js';
export type { SandboxSnapshot, SandboxState } from './sandbox.js';
export type { Credentials } from './auth.js';

const PROTO = resolve(dirname(fileURLToPath(import.meta.url)), 'modal-api.proto');

export interface ModalStandInOptions {
  /** The token pair the stand-in accepts (default: a random `ak-…`/`as-…` pair). */
  credentials?: Credentials;
  /** Maps each sandbox to a local command (default: the loopback worker). */
  launcher?: Launcher;
  /** Added to every sandbox process's environment, e.g. a marker that finds leftover processes. */
  env?: Record<string, string>;
  /** Time before a queued sandbox is placed, for every GPU type (default 0). */
  schedulingDelayMs?: number;
  /** Length of a fresh image build (default 300 ms). */
  imageBuildMs?: number;
  /** SIGTERM → SIGKILL grace when a sandbox is terminated (default 2000 ms). */
  stopGraceMs?: number;
  /** Environments besides "main" (the default one). */
  environments?: string[];
  /** Prints every line the sandbox processes write, prefixed with their id. */
  forwardSandboxOutput?: boolean;
  /** Where loud messages go (unknown RPCs, stand-in errors); default stderr. */
  log?: (line: string) => void;
}

export interface NoCapacityOptions {
  /** Fail a queued sandbox after this long with RESOURCE_EXHAUSTED (default 1000 ms). */
  failAfterMs?: number;
  /** Keep it queued instead, as Modal does (the SDK's own limit is 21 minutes). */
  queue?: boolean;
}

/** Calls per RPC method, and the unknown ones in call order. */
class CallLog {
  static readonly MAX_ORDER = 10_000;
  readonly counts = new Map<string, number>();
  readonly order: string[] = [];
  readonly unknown: string[] = [];

  count(method: string): void {
    this.counts.set(method, (this.counts.get(method) ?? 0) + 1);
    this.order.push(method);
    if (this.order.length > CallLog.MAX_ORDER) this.order.shift();
  }
}

export class ModalStandIn {
  #closed = false;
  readonly #exitGuard = () => this.#killAllNow();

  private constructor(
    readonly serverUrl: string,
    readonly caCertPath: string,
    readonly caCertPem: string,
    readonly stateDir: string,
    private readonly server: Server,
    private readonly auth: AuthGate,
    private readonly objects: ObjectRegistry,
    private readonly images: ImageBuilder,
    private readonly fleet: Fleet,
    private readonly proxy: ConnectProxy,
    private readonly calls: CallLog,
  ) {
    process.once('exit', this.#exitGuard);
  }

  static async start(options: ModalStandInOptions = {}): Promise<ModalStandIn> {
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    const stateDir = await mkdtemp(join(tmpdir(), 'quillman-modal-stand-in-'));
    try {
      const certs = await makeCertificates(stateDir);
      const tls = { key: certs.keyPem, cert: certs.certPem };
      const auth = new AuthGate(options.credentials ?? randomCredentials());
      const objects = new ObjectRegistry(join(stateDir, 'volumes'), options.environments ?? []);
      const images = new ImageBuilder({ durationMs: options.imageBuildMs ?? 300 });
      const fleet = new Fleet(options.schedulingDelayMs ?? 0);
      const proxy = new ConnectProxy((sandboxId) => fleet.get(sandboxId));
      // A stopped sandbox's connections through the proxy end with it, as its tunnels' do.
      fleet.onStopped = (sandboxId) => proxy.cutSandbox(sandboxId);
      await proxy.listen(tls);

      const baseEnv: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MODAL_')) baseEnv[k] = v;
      Object.assign(baseEnv, options.env);

      const calls = new CallLog();
      const server = new Server();
      const pkg = loadPackageDefinition(loadSync(PROTO, { keepCase: false, longs: Number, enums: Number, defaults: true, oneofs: true })) as unknown as {
        modal: { client: { ModalClient: { service: ServiceDefinition } } };
      };
      const serviceDef = pkg.modal.client.ModalClient.service;
      server.addService(
        serviceDef,
        createService({
          auth,
          objects,
          images,
          fleet,
          proxy,
          count: (method) => calls.count(method),
          log,
          runtimeFor: (definition) => ({
            launcher: options.launcher ?? loopbackWorkerLauncher,
            baseEnv,
            secretEnv: (ids) => Object.assign({}, ...ids.map((id) => objects.secret(id).env)) as Record<string, string>,
            tls,
            stopGraceMs: options.stopGraceMs ?? 2000,
            inbound: inboundFilter(definition.inboundCidrAllowlist),
            onOutput: options.forwardSandboxOutput ? (id, line) => log(`[${id}] ${line}`) : undefined,
          }),
        }),
      );
      registerUnknownMethods(server, new Set(Object.keys(serviceDef)), (method) => {
        calls.unknown.push(method);
        calls.count(method);
        log(`Modal stand-in: the SDK called ${method}, which the stand-in does not implement (answered UNIMPLEMENTED). Add it to test/modal/stand-in if the provider needs it.`);
      });
      const port = await new Promise<number>((ok, fail) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? fail(err) : ok(p))));

      return new ModalStandIn(`http://127.0.0.1:${port}`, certs.caCertPath, certs.caCertPem, stateDir, server, auth, objects, images, fleet, proxy, calls);
    } catch (err) {
      await rm(stateDir, { recursive: true, force: true });
      throw err;
    }
  }

  // ------------------------------------------------------------ for clients

  get credentials(): Credentials {
    return this.auth.credentials;
  }

  /** The variables the SDK reads: point a `new ModalClient()` (or a child gateway) here. */
  clientEnv(): { MODAL_SERVER_URL: string; MODAL_TOKEN_ID: string; MODAL_TOKEN_SECRET: string } {
    const { tokenId, tokenSecret } = this.auth.credentials;
    return { MODAL_SERVER_URL: this.serverUrl, MODAL_TOKEN_ID: tokenId, MODAL_TOKEN_SECRET: tokenSecret };
  }

  /** Where createConnectToken's URLs point. */
  get connectUrl(): string {
    return this.proxy.url;
  }

  // ------------------------------------------------------------ controls

  /** Replaces the accepted token pair; the old one (and JWTs minted for it) is refused from now on. */
  setCredentials(credentials: Credentials): void {
    this.auth.setCredentials(credentials);
  }

  /** Time a sandbox waits in the queue before it is placed: for one GPU type (e.g. "L40S"), or all. */
  setSchedulingDelay(ms: number, gpuType?: string): void {
    this.fleet.setSchedulingDelay(ms, gpuType);
  }

  /** No GPU of these types can be had: queued sandboxes fail with RESOURCE_EXHAUSTED after `failAfterMs`, or wait. */
  setNoCapacity(gpuTypes: readonly string[], options: NoCapacityOptions = {}): void {
    for (const type of gpuTypes) this.fleet.setCapacity(type, { slots: 0, whenFull: options.queue ? 'queue' : 'fail', failAfterMs: options.failAfterMs ?? 1000 });
  }

  /** At most `slots` GPUs of this type run at once; the rest wait (or fail, as setNoCapacity). */
  setGpuCapacity(gpuType: string, slots: number, options: NoCapacityOptions = { queue: true }): void {
    this.fleet.setCapacity(gpuType, { slots, whenFull: options.queue === false ? 'fail' : 'queue', failAfterMs: options.failAfterMs ?? 1000 });
  }

  /** Unlimited capacity again, for these types or all; queued sandboxes are placed. */
  restoreCapacity(gpuTypes?: readonly string[]): void {
    this.fleet.clearCapacity(gpuTypes);
  }

  /** Length of fresh image builds, and whether they fail (with this message). */
  setImageBuild(settings: Partial<ImageBuildSettings>): void {
    this.images.settings = { ...this.images.settings, ...settings };
  }

  /** A named secret, as if created in Modal's dashboard. */
  putSecret(name: string, env: Record<string, string>, environment = ''): void {
    this.objects.putSecret(name, env, environment);
  }

  /** The sandbox's process dies (SIGKILL, as in a crash): its tunnels close, SandboxWait reports exit code 137. */
  async kill(sandboxId: string, timeoutMs = 10_000): Promise<SandboxSnapshot> {
    const sb = this.fleet.get(sandboxId);
    if (!sb) throw new Error(`Modal stand-in: no sandbox ${sandboxId}`);
    sb.kill();
    if (!(await sb.waitFor(() => !sb.isLive, timeoutMs))) throw new Error(`Modal stand-in: sandbox ${sandboxId} did not end within ${timeoutMs} ms of SIGKILL`);
    return sb.snapshot();
  }

  // ------------------------------------------------------------ inspection

  /** Sandboxes with their tags and state, newest last; filter by app, tags (all must match), state ('live' = not finished), name. */
  sandboxes(filter?: SandboxFilter): SandboxSnapshot[] {
    return this.fleet.snapshots(filter);
  }

  sandbox(sandboxId: string): SandboxSnapshot | undefined {
    return this.fleet.get(sandboxId)?.snapshot();
  }

  /** Resolves with the sandbox once `predicate` holds for it; rejects after `timeoutMs`. */
  async waitForSandbox(sandboxId: string, predicate: (s: SandboxSnapshot) => boolean, timeoutMs = 30_000): Promise<SandboxSnapshot> {
    const sb = this.fleet.get(sandboxId);
    if (!sb) throw new Error(`Modal stand-in: no sandbox ${sandboxId}`);
    if (!(await sb.waitFor(() => predicate(sb.snapshot()), timeoutMs))) {
      const s = sb.snapshot();
      throw new Error(`Modal stand-in: sandbox ${sandboxId} did not reach the awaited condition within ${timeoutMs} ms (state ${s.state}); last output:\n${s.output.slice(-20).join('\n')}`);
    }
    return sb.snapshot();
  }

  /** Image layers built (or building), with how many times each was built. */
  builtImages(): ReturnType<ImageBuilder['list']> {
    return this.images.list();
  }

  /** Volume id, name and the local directory holding its files. */
  volumes(): { volumeId: string; name?: string; dir: string }[] {
    return this.objects.volumes().map((v) => ({ volumeId: v.volumeId, name: v.name, dir: v.dir }));
  }

  /** Calls received per RPC method name (including refused and unknown ones). */
  rpcCounts(): Record<string, number> {
    return Object.fromEntries(this.calls.counts);
  }

  /** Method names in the order the calls arrived (the last 10 000). */
  rpcLog(): string[] {
    return [...this.calls.order];
  }

  /** Clears the counts and the call order. */
  resetCounts(): void {
    this.calls.counts.clear();
    this.calls.order.length = 0;
  }

  /** Methods the SDK called that the stand-in does not implement, in call order. */
  unknownCalls(): string[] {
    return [...this.calls.unknown];
  }

  /** Connect-proxy refusals by HTTP status (401, 403, 502). */
  connectRefusals(): Record<number, number> {
    return Object.fromEntries(this.proxy.refusals);
  }

  // ------------------------------------------------------------ shutdown

  /** Ends every sandbox (its processes are killed and awaited), the servers and the state directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const live = this.fleet.find({ state: 'live' });
    for (const sb of live) sb.stop({ status: GenericStatus.Terminated, exception: 'Modal stand-in closed', exitcode: 137 }, 'SIGKILL');
    await Promise.all(live.map((sb) => sb.waitFor(() => !sb.isLive, 10_000)));
    this.fleet.close();
    this.images.close();
    this.server.forceShutdown();
    await this.proxy.close();
    await rm(this.stateDir, { recursive: true, force: true });
    process.off('exit', this.#exitGuard);
  }

  #killAllNow(): void {
    for (const sb of this.fleet.all()) sb.killNow();
  }
}

export function startModalStandIn(options?: ModalStandInOptions): Promise<ModalStandIn> {
  return ModalStandIn.start(options);
}
