/**
 * STAND-IN for kubelets and their machines (GPU nodes cannot exist here).
 *
 * It registers Node objects with the capacity a real node reports
 * (nvidia.com/gpu included, as NVIDIA's device plugin would advertise it),
 * and then does a kubelet's job for every pod the real scheduler binds to
 * one of them:
 *
 *   - runs the pod's first container as a process of this checkout's CLI
 *     (the image's entrypoint, see image.ts) with the container's args and
 *     environment (values, the downward API's fieldRefs, ConfigMap and Secret
 *     keys), and the service-account token a real kubelet would mount
 *     (requested through the TokenRequest API, bound to the pod);
 *   - reports the pod Running, then Ready whenever its readiness probe passes;
 *   - on deletion sends SIGTERM, SIGKILL after the grace period, then removes
 *     the pod; a container that dies on its own is restarted (restartPolicy
 *     Always).
 *
 * What differs from a real node, by necessity: every pod shares 127.0.0.1,
 * so `--host` becomes 127.0.0.1 and `--port` becomes 0 (a free port), and
 * the port the process really listens on is published in the pod's
 * `quillman.dev/port` annotation (the provider honours it; on a real cluster
 * it is absent and the container port is used). Volumes are not mounted,
 * except the service-account token, which is written under a per-pod folder
 * passed as QUILLMAN_KUBE_IN_CLUSTER_ROOT. Only our image (…/quillman:<tag>)
 * runs; others (Kyutai's moshi image) are reported as not pullable. No liveness
 * probes, no resource enforcement. Node heartbeats are the Lease in
 * kube-node-lease, renewed every 10 s, which the real node lifecycle
 * controller reads.
 */
import { CoordinationV1Api, CoreV1Api, PatchStrategy, V1MicroTime, setHeaderOptions, type KubeConfig, type V1Container, type V1EnvVar, type V1Pod, type V1Probe } from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { watchCollection, type WatchedCollection } from '../../../src/pool/providers/kubernetes/informer.js';
import { silentLogger } from '../../../src/util/logger.js';
import { MARKER_VARIABLE } from '../../helpers/processes.js';
import type { ControlPlane } from './control-plane.js';
import type { Image } from './image.js';

export const PORT_ANNOTATION = 'quillman.dev/port';
const SERVICE_ACCOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
const MAX_OUTPUT_LINES = 400;
/** Our image, under any registry and tag (…/quillman:0.1.0); not quillman-moshi. */
const OUR_IMAGE = /(^|\/)quillman(:[^/]*)?(@.*)?$/;

export interface NodeSpec {
  name: string;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
  /** e.g. { cpu: '64', memory: '512Gi', pods: '110', 'nvidia.com/gpu': '16' } */
  capacity: Record<string, string>;
}

/** One run of a pod's container (a restart is a new run). */
export interface ContainerRun {
  readonly namespace: string;
  readonly pod: string;
  readonly uid: string;
  readonly node: string;
  readonly startedAt: number;
  pid?: number;
  port?: number;
  /** stdout and stderr lines, the last few hundred. */
  readonly output: string[];
  exitedAt?: number;
  exit?: string;
}

interface PodState {
  namespace: string;
  name: string;
  uid: string;
  node: string;
  container: V1Container;
  restarts: number;
  run?: ContainerRun;
  child?: ChildProcess;
  ready: boolean;
  terminating: boolean;
  /** Set once the pod object is gone or being finalised: nothing more to do for it. */
  done: boolean;
  probeTimer?: NodeJS.Timeout;
  killTimer?: NodeJS.Timeout;
  restartTimer?: NodeJS.Timeout;
  /** Serialises API writes for this pod. */
  writes: Promise<unknown>;
}

export interface SimulatedNodesOptions {
  controlPlane: ControlPlane;
  image: Image;
  nodes: NodeSpec[];
  marker: string;
  /** Called with problems the simulated kubelet met (they fail no test by themselves). */
  onProblem?(message: string): void;
}

export class SimulatedNodes {
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #options: SimulatedNodesOptions;
  readonly #pods = new Map<string, PodState>();
  readonly #runs: ContainerRun[] = [];
  readonly #root: string;
  readonly #coordination: CoordinationV1Api;
  #heartbeat?: NodeJS.Timeout;
  #watch?: WatchedCollection<V1Pod>;
  #stopped = false;

  private constructor(options: SimulatedNodesOptions) {
    this.#options = options;
    this.#kc = options.controlPlane.admin();
    this.#core = this.#kc.makeApiClient(CoreV1Api);
    this.#coordination = this.#kc.makeApiClient(CoordinationV1Api);
    this.#root = join(options.controlPlane.dir, 'nodes');
    mkdirSync(this.#root, { recursive: true });
  }

  static async start(options: SimulatedNodesOptions): Promise<SimulatedNodes> {
    const nodes = new SimulatedNodes(options);
    await nodes.#register();
    nodes.#watch = watchCollection<V1Pod>({
      kubeConfig: nodes.#kc,
      path: '/api/v1/pods',
      list: () => nodes.#core.listPodForAllNamespaces(),
      onChange: (pod, deleted) => nodes.#onPod(pod, deleted),
      log: silentLogger,
      what: 'pods',
    });
    await nodes.#watch.synced;
    return nodes;
  }

  /** Every container run so far, in start order (restarts included), running or not. */
  runs(): readonly ContainerRun[] {
    return this.#runs;
  }

  /** The current run of a pod's container. */
  runOf(pod: string): ContainerRun | undefined {
    for (const state of this.#pods.values()) if (state.name === pod) return state.run;
    return undefined;
  }

  /** Pods whose processes run right now. */
  running(): string[] {
    return [...this.#pods.values()].filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null).map((s) => s.name);
  }

  /** Sends a signal to a pod's container process, as the OOM killer or a crash would end it. */
  signal(pod: string, signal: NodeJS.Signals): void {
    for (const state of this.#pods.values()) if (state.name === pod) state.child?.kill(signal);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#heartbeat);
    await this.#watch?.stop();
    await Promise.all(
      [...this.#pods.values()].map(async (state) => {
        clearTimeout(state.probeTimer);
        clearTimeout(state.restartTimer);
        clearTimeout(state.killTimer);
        state.done = true;
        await this.#kill(state, 'SIGKILL');
      }),
    );
    rmSync(this.#root, { recursive: true, force: true });
  }

  async #register(): Promise<void> {
    for (const spec of this.#options.nodes) {
      await this.#core.createNode({
        body: { metadata: { name: spec.name, labels: { 'kubernetes.io/hostname': spec.name, ...spec.labels } }, spec: { taints: spec.taints } },
      });
      const now = new Date().toISOString();
      await this.#core.patchNodeStatus(
        {
          name: spec.name,
          body: {
            status: {
              capacity: spec.capacity,
              allocatable: spec.capacity,
              conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'simulated node', lastHeartbeatTime: now, lastTransitionTime: now }],
              addresses: [
                { type: 'InternalIP', address: '127.0.0.1' },
                { type: 'Hostname', address: spec.name },
              ],
              nodeInfo: {
                kubeletVersion: 'v1.34.4-simulated',
                operatingSystem: 'linux',
                architecture: 'amd64',
                containerRuntimeVersion: 'simulated://0',
                kernelVersion: '',
                osImage: 'simulated',
                machineID: spec.name,
                systemUUID: spec.name,
                bootID: spec.name,
                kubeProxyVersion: '',
              },
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const now2 = new V1MicroTime();
      await this.#coordination.createNamespacedLease({
        namespace: 'kube-node-lease',
        body: { metadata: { name: spec.name }, spec: { holderIdentity: spec.name, leaseDurationSeconds: 40, renewTime: now2 } },
      });
    }
    this.#heartbeat = setInterval(() => void this.#renewHeartbeats(), 10_000);
    this.#heartbeat.unref();
  }

  async #renewHeartbeats(): Promise<void> {
    for (const spec of this.#options.nodes) {
      try {
        await this.#coordination.patchNamespacedLease(
          { name: spec.name, namespace: 'kube-node-lease', body: { spec: { renewTime: new V1MicroTime() } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      } catch (err) {
        this.#problem(`node ${spec.name}: heartbeat failed: ${(err as Error).message}`);
      }
    }
  }

  #ours(pod: V1Pod): boolean {
    return this.#options.nodes.some((n) => n.name === pod.spec?.nodeName);
  }

  #onPod(pod: V1Pod, deleted: boolean): void {
    if (this.#stopped || !this.#ours(pod)) return;
    const uid = pod.metadata!.uid!;
    const state = this.#pods.get(uid);
    if (deleted) {
      if (state) {
        state.done = true;
        void this.#terminate(state, 0);
      }
      return;
    }
    if (pod.metadata?.deletionTimestamp) {
      if (state) void this.#terminate(state, pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30);
      else void this.#finalise(pod.metadata.namespace!, pod.metadata.name!, uid);
      return;
    }
    if (state || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    const fresh: PodState = {
      namespace: pod.metadata!.namespace!,
      name: pod.metadata!.name!,
      uid,
      node: pod.spec!.nodeName!,
      container: pod.spec!.containers[0],
      restarts: 0,
      ready: false,
      terminating: false,
      done: false,
      writes: Promise.resolve(),
    };
    this.#pods.set(uid, fresh);
    void this.#startContainer(fresh, pod).catch((err: Error) => this.#problem(`${fresh.name}: ${err.message}`));
  }

  async #startContainer(state: PodState, pod: V1Pod): Promise<void> {
    const { container } = state;
    if (!OUR_IMAGE.test(container.image ?? '')) {
      // A real node would pull it; this one runs only our image.
      await this.#status(state, {
        phase: 'Pending',
        containerStatuses: [
          {
            name: container.name,
            image: container.image ?? '',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: 'ErrImagePull', message: `the simulated node runs only the quillman image, not ${container.image}` } },
          },
        ],
      });
      return;
    }
    const env = await this.#environment(state, pod);
    if (state.done || state.terminating) return;
    const args = rewriteAddress([...(container.command?.slice(1) ?? []), ...(container.args ?? [])]);
    const run: ContainerRun = { namespace: state.namespace, pod: state.name, uid: state.uid, node: state.node, startedAt: Date.now(), output: [] };
    const child = spawn(process.execPath, [this.#options.image.entry, ...args], {
      env: { ...env, [MARKER_VARIABLE]: this.#options.marker },
      cwd: this.#podDir(state),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    run.pid = child.pid;
    state.run = run;
    state.child = child;
    this.#runs.push(run);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        run.output.push(line);
        if (run.output.length > MAX_OUTPUT_LINES) run.output.shift();
        if (run.port === undefined) {
          const port = listeningPort(line);
          if (port !== undefined) {
            run.port = port;
            void this.#onListening(state, run);
          }
        }
      });
    }
    child.once('exit', (code, signal) => {
      run.exitedAt = Date.now();
      run.exit = signal ? `killed by ${signal}` : `exited with code ${code}`;
      void this.#onExit(state, run);
    });
    await this.#status(state, this.#runningStatus(state, false));
  }

  async #onListening(state: PodState, run: ContainerRun): Promise<void> {
    if (state.done || state.run !== run) return;
    await this.#write(state, () =>
      this.#core.patchNamespacedPod(
        { name: state.name, namespace: state.namespace, body: { metadata: { annotations: { [PORT_ANNOTATION]: String(run.port) } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    this.#probeLoop(state, run, 0);
  }

  /** Readiness as the kubelet checks it: fast until the first success, then every period (at most 2 s here). */
  #probeLoop(state: PodState, run: ContainerRun, delayMs: number): void {
    state.probeTimer = setTimeout(async () => {
      if (state.done || state.terminating || state.run !== run) return;
      const ok = await probe(state.container.readinessProbe, run.port!);
      if (state.done || state.terminating || state.run !== run) return;
      if (ok !== state.ready) {
        state.ready = ok;
        await this.#status(state, this.#runningStatus(state, ok));
      }
      const period = Math.min(2, Math.max(0.5, state.container.readinessProbe?.periodSeconds ?? 10));
      this.#probeLoop(state, run, ok ? period * 1000 : 200);
    }, delayMs);
  }

  async #onExit(state: PodState, run: ContainerRun): Promise<void> {
    clearTimeout(state.probeTimer);
    clearTimeout(state.killTimer);
    if (state.run !== run) return;
    state.child = undefined;
    if (state.terminating) return this.#finalise(state.namespace, state.name, state.uid);
    if (state.done || this.#stopped) return;
    // restartPolicy Always: report the exit, start again after a short back-off.
    state.ready = false;
    state.restarts++;
    await this.#status(state, {
      conditions: conditions(false),
      containerStatuses: [
        {
          name: state.container.name,
          image: state.container.image ?? '',
          imageID: '',
          ready: false,
          restartCount: state.restarts,
          lastState: { terminated: { exitCode: run.exit?.startsWith('exited') ? Number(run.exit.split(' ').at(-1)) : 137, reason: run.exit, finishedAt: new Date() } },
          state: { waiting: { reason: 'CrashLoopBackOff', message: run.exit } },
        },
      ],
    });
    state.restartTimer = setTimeout(() => {
      if (state.done || state.terminating || this.#stopped) return;
      this.#core
        .readNamespacedPod({ name: state.name, namespace: state.namespace })
        .then((pod) => this.#startContainer(state, pod))
        .catch((err: Error) => this.#problem(`${state.name}: restart failed: ${err.message}`));
    }, 1000);
  }

  /** Graceful termination: SIGTERM now, SIGKILL after the grace period, the pod removed once the process is gone. */
  async #terminate(state: PodState, graceSeconds: number): Promise<void> {
    clearTimeout(state.restartTimer);
    clearTimeout(state.probeTimer);
    if (graceSeconds <= 0) {
      state.terminating = true;
      await this.#kill(state, 'SIGKILL');
      return;
    }
    if (state.terminating) return;
    state.terminating = true;
    if (!state.child) return this.#finalise(state.namespace, state.name, state.uid);
    state.child.kill('SIGTERM');
    state.killTimer = setTimeout(() => state.child?.kill('SIGKILL'), graceSeconds * 1000);
  }

  async #kill(state: PodState, signal: NodeJS.Signals): Promise<void> {
    const child = state.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    await exited;
  }

  /** The last step of a deletion: the kubelet confirms with a zero-grace delete, bound to the pod's uid. */
  async #finalise(namespace: string, name: string, uid: string): Promise<void> {
    const state = this.#pods.get(uid);
    if (state) state.done = true;
    try {
      await this.#core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid } } });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code !== 404 && code !== 409) this.#problem(`${name}: could not remove the pod: ${(err as Error).message}`);
    }
    rmSync(join(this.#root, uid), { recursive: true, force: true });
  }

  #runningStatus(state: PodState, ready: boolean): object {
    const startedAt = new Date(state.run?.startedAt ?? Date.now());
    return {
      phase: 'Running',
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      startTime: startedAt,
      conditions: conditions(ready),
      containerStatuses: [
        {
          name: state.container.name,
          image: state.container.image ?? '',
          imageID: '',
          ready,
          started: true,
          restartCount: state.restarts,
          state: { running: { startedAt } },
        },
      ],
    };
  }

  async #status(state: PodState, status: object): Promise<void> {
    await this.#write(state, () =>
      this.#core.patchNamespacedPodStatus({ name: state.name, namespace: state.namespace, body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    );
  }

  /** One write at a time per pod; a pod that is gone meanwhile is no error. */
  #write(state: PodState, write: () => Promise<unknown>): Promise<void> {
    const next = state.writes.then(async () => {
      if (state.done) return;
      try {
        await write();
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404 || code === 409) return;
        this.#problem(`${state.name}: ${(err as Error).message}`);
      }
    });
    state.writes = next;
    return next;
  }

  #podDir(state: PodState): string {
    const dir = join(this.#root, state.uid);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** The container's environment, as the kubelet assembles it. */
  async #environment(state: PodState, pod: V1Pod): Promise<Record<string, string>> {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.#podDir(state), HOSTNAME: state.name };
    const { controlPlane } = this.#options;
    // The variables a kubelet sets for the `kubernetes` Service.
    env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    env.KUBERNETES_SERVICE_PORT = String(controlPlane.port);
    for (const source of state.container.envFrom ?? []) {
      const data = source.configMapRef
        ? await this.#configMap(state.namespace, source.configMapRef.name!, source.configMapRef.optional)
        : source.secretRef
          ? await this.#secret(state.namespace, source.secretRef.name!, source.secretRef.optional)
          : {};
      for (const [k, v] of Object.entries(data)) env[(source.prefix ?? '') + k] = v;
    }
    for (const variable of state.container.env ?? []) {
      const value = await this.#envValue(variable, pod, env);
      if (value !== undefined) env[variable.name] = value;
    }
    if (hostAddressVariables(env)) Object.assign(env, hostAddressVariables(env));
    const mount = state.container.volumeMounts?.find((m) => m.mountPath === SERVICE_ACCOUNT_PATH);
    if (mount && pod.spec?.automountServiceAccountToken !== false) {
      await this.#mountServiceAccount(state, pod);
      env.QUILLMAN_KUBE_IN_CLUSTER_ROOT = this.#podDir(state);
    }
    return env;
  }

  async #envValue(variable: V1EnvVar, pod: V1Pod, env: Record<string, string>): Promise<string | undefined> {
    if (variable.value !== undefined) return variable.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
    const from = variable.valueFrom;
    if (from?.fieldRef) return fieldValue(pod, from.fieldRef.fieldPath);
    if (from?.configMapKeyRef) return (await this.#configMap(pod.metadata!.namespace!, from.configMapKeyRef.name!, from.configMapKeyRef.optional))[from.configMapKeyRef.key];
    if (from?.secretKeyRef) return (await this.#secret(pod.metadata!.namespace!, from.secretKeyRef.name!, from.secretKeyRef.optional))[from.secretKeyRef.key];
    if (from?.resourceFieldRef) return undefined;
    return undefined;
  }

  async #configMap(namespace: string, name: string, optional?: boolean): Promise<Record<string, string>> {
    try {
      return (await this.#core.readNamespacedConfigMap({ name, namespace })).data ?? {};
    } catch (err) {
      if (optional && (err as { code?: number }).code === 404) return {};
      throw err;
    }
  }

  async #secret(namespace: string, name: string, optional?: boolean): Promise<Record<string, string>> {
    try {
      const data = (await this.#core.readNamespacedSecret({ name, namespace })).data ?? {};
      return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    } catch (err) {
      if (optional && (err as { code?: number }).code === 404) return {};
      throw err;
    }
  }

  /** A bound service-account token, the cluster CA and the namespace, where the container expects them. */
  async #mountServiceAccount(state: PodState, pod: V1Pod): Promise<void> {
    const serviceAccount = pod.spec?.serviceAccountName ?? 'default';
    const request = await this.#core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace: state.namespace,
      body: { spec: { audiences: [], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: state.name, uid: state.uid } } },
    });
    const dir = join(this.#podDir(state), SERVICE_ACCOUNT_PATH);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), request.status!.token);
    writeFileSync(join(dir, 'ca.crt'), readFileSync(this.#options.controlPlane.pki.caCert));
    writeFileSync(join(dir, 'namespace'), state.namespace);
  }

  #problem(message: string): void {
    if (!this.#stopped) this.#options.onProblem?.(message);
  }
}

function conditions(ready: boolean): object[] {
  const now = new Date();
  const status = ready ? 'True' : 'False';
  return [
    { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
    { type: 'Initialized', status: 'True', lastTransitionTime: now },
    { type: 'ContainersReady', status, lastTransitionTime: now },
    { type: 'Ready', status, lastTransitionTime: now },
  ];
}

/** The downward API's fieldRef paths a kubelet resolves. */
function fieldValue(pod: V1Pod, path: string): string | undefined {
  const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (label) return (label[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[label[2]];
  switch (path) {
    case 'metadata.name':
      return pod.metadata?.name;
    case 'metadata.namespace':
      return pod.metadata?.namespace;
    case 'metadata.uid':
      return pod.metadata?.uid;
    case 'spec.nodeName':
      return pod.spec?.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName;
    case 'status.podIP':
    case 'status.hostIP':
      return '127.0.0.1';
    default:
      return undefined;
  }
}

/** Every pod shares 127.0.0.1 here: listen there, on a port of the system's choosing. */
export function rewriteAddress(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.split(/=(.*)/s, 2);
    if (flag === '--host' || flag === '--port') {
      out.push(flag, flag === '--host' ? '127.0.0.1' : '0');
      if (inline === undefined) i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

function hostAddressVariables(env: Record<string, string>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (env.QUILLMAN_HOST !== undefined) out.QUILLMAN_HOST = '127.0.0.1';
  if (env.QUILLMAN_PORT !== undefined) out.QUILLMAN_PORT = '0';
  return Object.keys(out).length ? out : undefined;
}

/** The port in our CLI's "worker listening" / "gateway listening" log line. */
function listeningPort(line: string): number | undefined {
  if (!line.includes('listening')) return undefined;
  try {
    const entry = JSON.parse(line) as { msg?: string; port?: number; url?: string };
    if (entry.msg === 'worker listening' && typeof entry.port === 'number') return entry.port;
    if (entry.msg === 'gateway listening' && typeof entry.url === 'string') return Number(new URL(entry.url).port);
  } catch {
    // not a JSON log line
  }
  return undefined;
}

async function probe(spec: V1Probe | undefined, port: number): Promise<boolean> {
  if (spec?.httpGet) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${spec.httpGet.path ?? '/'}`, { signal: AbortSignal.timeout(Math.max(1, spec.timeoutSeconds ?? 1) * 2000) });
      await res.arrayBuffer();
      return res.status >= 200 && res.status < 400;
    } catch {
      return false;
    }
  }
  // tcpSocket, or no probe: ready once it accepts connections.
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
