/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): every sandbox
 * ever created, and the scheduler that places queued ones. Tests steer it:
 * a scheduling delay (per GPU type or for all), and GPU capacity. A GPU type
 * without capacity either keeps its sandboxes queued, as Modal does (the SDK
 * then gives up after 21 minutes with ResourceExhaustedError), or fails them
 * after a bounded time: SandboxGetTaskId then answers RESOURCE_EXHAUSTED.
 */
import { StandInSandbox, type SandboxDefinition, type SandboxRuntime, type SandboxSnapshot, type SandboxState } from './sandbox.js';
import { OwnedTimers } from './timers.js';

export interface CapacityRule {
  /** GPUs of this type that may run at once (0: none at all). */
  slots: number;
  /** When full: keep waiting (Modal's behaviour) or fail after `failAfterMs` in the queue. */
  whenFull: 'queue' | 'fail';
  failAfterMs: number;
}

export interface SandboxFilter {
  appId?: string;
  tags?: Record<string, string>;
  state?: SandboxState | 'live';
  name?: string;
}

const ANY_GPU = '*';

export class Fleet {
  readonly #sandboxes = new Map<string, StandInSandbox>();
  readonly #delays = new Map<string, number>();
  readonly #capacity = new Map<string, CapacityRule>();
  /** Queued sandboxes whose scheduling delay has passed. */
  readonly #eligible = new Set<StandInSandbox>();
  readonly #timers = new OwnedTimers();
  #lastCreatedAt = 0;
  /** Called once when a sandbox starts stopping (or finishes without stopping). */
  onStopped?: (sandboxId: string) => void;

  constructor(defaultDelayMs: number) {
    this.#delays.set(ANY_GPU, defaultDelayMs);
  }

  create(definition: SandboxDefinition, runtime: SandboxRuntime): StandInSandbox {
    // Listing pages by creation time ("before this timestamp"): keep the times distinct.
    const createdAt = Math.max(Date.now() / 1000, this.#lastCreatedAt + 1e-6);
    this.#lastCreatedAt = createdAt;
    const sb = new StandInSandbox(definition, runtime, createdAt);
    this.#sandboxes.set(sb.sandboxId, sb);
    let stopped = false;
    sb.events.on('change', () => {
      if (!stopped && (sb.state === 'stopping' || sb.state === 'finished')) {
        stopped = true;
        this.onStopped?.(sb.sandboxId);
      }
      if (sb.state === 'finished') {
        this.#eligible.delete(sb);
        this.pump();
      }
    });
    const delay = this.#delays.get(definition.gpu) ?? this.#delays.get(ANY_GPU) ?? 0;
    this.#timers.after(delay, () => {
      if (sb.state !== 'queued') return;
      this.#eligible.add(sb);
      this.pump();
    });
    const rule = this.#capacity.get(definition.gpu);
    if (rule?.whenFull === 'fail') this.#armCapacityFailure(sb, rule);
    return sb;
  }

  get(sandboxId: string): StandInSandbox | undefined {
    return this.#sandboxes.get(sandboxId);
  }

  all(): StandInSandbox[] {
    return [...this.#sandboxes.values()];
  }

  find(filter: SandboxFilter = {}): StandInSandbox[] {
    return this.all().filter((sb) => {
      if (filter.appId && sb.definition.appId !== filter.appId) return false;
      if (filter.name !== undefined && sb.definition.name !== filter.name) return false;
      if (filter.state === 'live' ? !sb.isLive : filter.state && sb.state !== filter.state) return false;
      return Object.entries(filter.tags ?? {}).every(([k, v]) => sb.tags[k] === v);
    });
  }

  snapshots(filter?: SandboxFilter): SandboxSnapshot[] {
    return this.find(filter).map((sb) => sb.snapshot());
  }

  setSchedulingDelay(ms: number, gpuType?: string): void {
    this.#delays.set(gpuType ? gpuType.toUpperCase() : ANY_GPU, ms);
  }

  setCapacity(gpuType: string, rule: CapacityRule): void {
    const type = gpuType.toUpperCase();
    this.#capacity.set(type, rule);
    if (rule.whenFull === 'fail') for (const sb of this.find({ state: 'queued' })) if (sb.definition.gpu === type) this.#armCapacityFailure(sb, rule);
    this.pump();
  }

  clearCapacity(gpuTypes?: readonly string[]): void {
    if (!gpuTypes) this.#capacity.clear();
    else for (const t of gpuTypes) this.#capacity.delete(t.toUpperCase());
    this.pump();
  }

  /** Starts every eligible queued sandbox that fits, oldest first. */
  pump(): void {
    const used = new Map<string, number>();
    for (const sb of this.all()) {
      if (sb.state === 'running' || sb.state === 'stopping') used.set(sb.definition.gpu, (used.get(sb.definition.gpu) ?? 0) + sb.definition.gpuCount);
    }
    const waiting = [...this.#eligible].filter((sb) => sb.state === 'queued').sort((a, b) => a.createdAt - b.createdAt);
    for (const sb of waiting) {
      const gpu = sb.definition.gpu;
      const rule = this.#capacity.get(gpu);
      const inUse = used.get(gpu) ?? 0;
      if (gpu && rule && inUse + sb.definition.gpuCount > rule.slots) continue;
      this.#eligible.delete(sb);
      used.set(gpu, inUse + sb.definition.gpuCount);
      sb.start();
    }
  }

  #armCapacityFailure(sb: StandInSandbox, rule: CapacityRule): void {
    const waited = Date.now() - sb.createdAt * 1000;
    this.#timers.after(Math.max(0, rule.failAfterMs - waited), () => {
      const current = this.#capacity.get(sb.definition.gpu);
      if (sb.state !== 'queued' || current?.whenFull !== 'fail') return;
      const count = sb.definition.gpuCount > 1 ? `${sb.definition.gpuCount} × ` : '';
      sb.failNoCapacity(`No capacity for GPU ${count}${sb.definition.gpu} after ${(rule.failAfterMs / 1000).toFixed(1)}s in the queue (Modal stand-in)`);
    });
  }

  close(): void {
    this.#timers.clear();
  }
}
