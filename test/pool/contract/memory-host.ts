/**
 * STAND-IN: an in-memory worker host, for fast pool tests. Its "instances"
 * are objects whose health answers the test controls; nothing is spawned and
 * nothing listens. It goes through the same HostedWorker and pool code as the
 * real hosts (the provider contract suite runs against it too), so the pool's
 * decisions can be tested in milliseconds, without processes.
 *
 * Every lease's dial gets a fresh bearer token, the way providers with
 * per-lease credentials (Modal connect tokens, Kubernetes) will work.
 */
import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import type { Probe } from '../../../src/pool/health.js';
import { defineProvider } from '../../../src/pool/provider.js';
import { hostedWorkerFields } from '../../../src/pool/settings-schema.js';
import type { DialInfo, WorkerDetails } from '../../../src/pool/types.js';
import { WorkerStartError, type HostedInstance, type Placement, type StartRequest, type WorkerHost } from '../../../src/pool/worker/host.js';
import { HostedProvider } from '../../../src/pool/worker/hosted-provider.js';

export type MemoryHealth = 'warming' | 'ready' | 'busy' | 'failed' | 'down' | 'no-endpoint';

export interface MemoryBehaviour {
  /** Health answers, one per probe, while starting; the last one repeats. */
  startup: MemoryHealth[];
  /** Progress the host reports while it "places" the instance, before start() resolves. */
  hostProgress: string[];
  /** Between those reports. */
  hostProgressIntervalMs: number;
  /** start() never finishes on its own (waits for its signal), like a placement that never comes. */
  hangs: boolean;
  /** With `hangs`: once its signal aborts, start() resolves with an instance anyway (a host that ignores the abort). */
  finishesAfterAbort: boolean;
  /** The next this-many starts die as soon as they run, with this output. */
  crashingStarts: number;
  crashOutput: string[];
  /** start() rejects with this (retryable or not). */
  startError?: { message: string; retryable: boolean };
  /** After a conversation: health says busy for this many probes, then ready. */
  busyProbesAfterConversation: number;
  /** Ignores terminate() (a wedged sandbox); only `kill` ends it. */
  ignoresTerminate: boolean;
  /** dial() rejects with this (the provider cannot make a credential). */
  dialError?: string;
}

export class MemoryInstance implements HostedInstance {
  readonly url: string;
  readonly readinessTarget: string;
  readonly ended: Promise<string>;
  readonly startedAt = Date.now();
  /** Open conversations (set by the test harness's converse). */
  conversations = 0;
  probes = 0;
  dials: DialInfo[] = [];
  /** Dies before it ever listens (a start that crashes while loading). */
  crashing = false;
  #end!: (how: string) => void;
  #gone = false;
  #busyProbes = 0;
  #tokens = 0;

  constructor(
    readonly id: string,
    readonly serial: number,
    private readonly host: MemoryHost,
    private readonly behaviour: MemoryBehaviour,
    readonly gpu: string | undefined,
  ) {
    this.url = `memory://${id}.${serial}/api/chat`;
    this.readinessTarget = `memory://${id}.${serial}/health`;
    this.ended = new Promise((resolve) => (this.#end = resolve));
  }

  get running(): boolean {
    return !this.#gone;
  }

  async probe(): Promise<Probe> {
    await Promise.resolve();
    if (this.#gone || this.crashing) return { kind: 'down', reason: `${this.url}: connection refused (not listening yet, or not running)` };
    const answer = this.behaviour.startup[Math.min(this.probes++, this.behaviour.startup.length - 1)];
    if (answer !== 'ready' && answer !== 'no-endpoint') return toProbe(answer, this.probes);
    if (this.conversations > 0 || this.#busyProbes > 0) {
      if (this.#busyProbes > 0 && this.conversations === 0) this.#busyProbes--;
      return { kind: 'busy' };
    }
    return toProbe(answer, this.probes);
  }

  async dial(): Promise<DialInfo> {
    if (this.#gone) throw new Error(`${this.id} is gone`);
    if (this.behaviour.dialError) throw new Error(this.behaviour.dialError);
    const dial = { url: this.url, headers: { authorization: `Bearer ${this.id}.${this.serial}.${++this.#tokens}` } };
    this.dials.push(dial);
    return dial;
  }

  /** A conversation ends: our worker then says busy for a moment while it tears down. */
  endConversation(): void {
    this.conversations = Math.max(0, this.conversations - 1);
    if (this.conversations === 0) this.#busyProbes = this.behaviour.busyProbesAfterConversation;
  }

  terminate(): void {
    if (this.behaviour.ignoresTerminate) return;
    this.kill('it was terminated');
  }

  /** Ends it from outside (a crash, a sandbox exit, a pod deletion). */
  kill(how = 'it was killed'): void {
    if (this.#gone) return;
    this.#gone = true;
    this.host.live.delete(this);
    queueMicrotask(() => this.#end(how));
  }

  details(): WorkerDetails {
    return { instance: `${this.id}.${this.serial}`, ...(this.gpu && { gpuType: this.gpu }) };
  }

  lastOutput(lines: number): string[] {
    return this.behaviour.crashOutput.slice(-lines);
  }
}

function toProbe(answer: MemoryHealth, n: number): Probe {
  switch (answer) {
    case 'warming':
      return { kind: 'warming', progress: `loading (${n})` };
    case 'ready':
      return { kind: 'ready', healthEndpoint: true };
    case 'no-endpoint':
      return { kind: 'ready', healthEndpoint: false };
    case 'busy':
      return { kind: 'busy' };
    case 'failed':
      return { kind: 'failed', reason: 'it reports that its start-up failed: weights missing' };
    case 'down':
      return { kind: 'down', reason: 'connection refused (not listening yet, or not running)' };
  }
}

let serial = 0;

export class MemoryHost implements WorkerHost {
  readonly fixHint = 'Fix the memory host (a test stand-in).';
  readonly behaviour: MemoryBehaviour = {
    startup: ['ready'],
    hostProgress: [],
    hostProgressIntervalMs: 0,
    hangs: false,
    finishesAfterAbort: false,
    crashingStarts: 0,
    crashOutput: [],
    busyProbesAfterConversation: 1,
    ignoresTerminate: false,
  };
  /** Instances running now. */
  readonly live = new Set<MemoryInstance>();
  /** Every instance ever started, in order. */
  readonly started: MemoryInstance[] = [];
  /** Instances an "earlier gateway" left running, offered to adopt(). */
  leftBehind: MemoryInstance[] = [];
  readonly gpus: string[] = [];
  closed = false;

  constructor(behaviour: Partial<MemoryBehaviour> = {}) {
    Object.assign(this.behaviour, behaviour);
  }

  place(): Placement {
    const gpu = this.gpus.shift();
    return { gpu, release: () => gpu !== undefined && this.gpus.push(gpu) };
  }

  async start(request: StartRequest): Promise<MemoryInstance> {
    const { signal } = request;
    for (const message of this.behaviour.hostProgress) {
      request.progress(message);
      await new Promise((r) => (this.behaviour.hostProgressIntervalMs ? setTimeout(r, this.behaviour.hostProgressIntervalMs) : setImmediate(r)));
      if (signal.aborted) throw signal.reason;
    }
    if (this.behaviour.hangs) {
      await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      if (!this.behaviour.finishesAfterAbort) throw signal.reason;
    }
    if (this.behaviour.startError) throw new WorkerStartError(this.behaviour.startError.message, { retryable: this.behaviour.startError.retryable });
    const instance = this.#newInstance(request.workerId, request.placement?.gpu);
    if (this.behaviour.crashingStarts > 0) {
      this.behaviour.crashingStarts--;
      instance.crashing = true;
      setImmediate(() => instance.kill('its process exited with code 1'));
    }
    return instance;
  }

  /** An instance as an earlier gateway would have left it: running, not ours yet. */
  leaveBehind(id: string): MemoryInstance {
    const instance = this.#newInstance(id, undefined);
    this.leftBehind.push(instance);
    return instance;
  }

  async adopt(limit: number): Promise<MemoryInstance[]> {
    const kept = this.leftBehind.slice(0, limit);
    for (const extra of this.leftBehind.slice(limit)) extra.kill('terminated: more than this gateway may run');
    this.leftBehind = [];
    return kept;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The kind of metric a real provider adds (sandboxes by state, GPU-seconds). */
  registerMetrics(registry: Registry): void {
    const live = this.live;
    new Gauge({
      name: 'quillman_memory_instances',
      help: 'Instances the memory host runs (test stand-in)',
      registers: [registry],
      collect() {
        this.set(live.size);
      },
    });
  }

  instanceOf(url: string): MemoryInstance | undefined {
    return this.started.find((i) => i.url === url);
  }

  #newInstance(id: string, gpu: string | undefined): MemoryInstance {
    // Serials are unique across hosts, so an instance's URL names it alone.
    const instance = new MemoryInstance(id, ++serial, this, this.behaviour, gpu);
    this.live.add(instance);
    this.started.push(instance);
    return instance;
  }
}

const capabilities = { launches: true, fixedSet: false, gpus: true };

/**
 * A registry entry for the memory host: how any launching provider is
 * written, minus the real host. `hostFor` gives the host for each pool created.
 */
export function memoryProvider(hostFor: () => MemoryHost) {
  return defineProvider({
    name: 'memory',
    summary: 'test stand-in',
    description: 'In-memory host for tests.',
    capabilities,
    settings: z.strictObject({ ...hostedWorkerFields }),
    example: {},
    required: { key: 'slots', hint: 'settings for the memory host, e.g. {}' },
    maxWorkersText: '1',
    flags: [],
    resolve: (settings, pool) => ({ maxWorkers: pool.maxWorkers ?? 1, settings }),
    create: (context) => new HostedProvider({ name: 'memory', capabilities, host: hostFor(), settings: context.settings }, context),
  });
}
