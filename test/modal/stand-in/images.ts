/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): image "builds".
 * Nothing is pulled or built. Each layer the SDK asks for (`FROM <tag>` or
 * `FROM base`, then the dockerfile commands) gets an id derived from its
 * content, so an unchanged image is built once and found again, as in Modal.
 * A build takes a configurable time and writes Docker-like log lines that
 * ImageJoinStreaming streams, resumable by entry id; it can be told to fail.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { status } from '@grpc/grpc-js';
import { RpcError } from './rpc-error.js';
import { OwnedTimers } from './timers.js';

export const GenericStatus = { Unspecified: 0, Success: 1, Failure: 2, Terminated: 3, Timeout: 4, InitFailure: 5, InternalFailure: 6, IdleTimeout: 7 } as const;
const TaskState = { Active: 4, Completed: 5 } as const;
const STDOUT = 1;

export interface GenericResult {
  status: number;
  exception: string;
  exitcode: number;
}

export interface ImageBuildSettings {
  /** How long each fresh build takes. */
  durationMs: number;
  /** When set, fresh builds fail with this message (the SDK throws `Image build for im-… failed with the exception: …`). */
  failWith?: string;
}

interface LogEntry {
  entryId: string;
  data: string;
  timestamp: number;
  taskState: number;
}

export interface ImageLayerRequest {
  dockerfileCommands: string[];
  baseImages: { imageId: string; dockerTag: string }[];
  builderVersion: string;
  gpuType: string;
  forceBuild: boolean;
}

class ImageRecord {
  readonly events = new EventEmitter();
  state: 'building' | 'ready' | 'failed' = 'building';
  result?: GenericResult;
  log: LogEntry[] = [];
  #seq = 0;
  builds = 0;

  constructor(
    readonly imageId: string,
    readonly dockerfileCommands: string[],
  ) {}

  append(data: string, taskState: number = TaskState.Active): void {
    this.log.push({ entryId: String(++this.#seq), data, timestamp: Date.now() / 1000, taskState });
    this.events.emit('change');
  }

  finish(result: GenericResult): void {
    this.result = result;
    this.state = result.status === GenericStatus.Success ? 'ready' : 'failed';
    this.events.emit('change');
  }
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function contentId(parts: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(parts)).digest();
  let suffix = '';
  for (let i = 0; i < 22; i++) suffix += BASE62[digest[i]! % 62];
  return `im-${suffix}`;
}

export interface JoinItem {
  result?: GenericResult;
  taskLogs: { data: string; taskState: number; timestamp: number; fileDescriptor: number }[];
  entryId: string;
  eof: boolean;
}

export class ImageBuilder {
  readonly #images = new Map<string, ImageRecord>();
  readonly #timers = new OwnedTimers();

  constructor(public settings: ImageBuildSettings) {}

  /** Starts (or finds) the build of one layer. Returns the result at once when the layer is already built. */
  getOrCreate(layer: ImageLayerRequest): { imageId: string; result?: GenericResult } {
    for (const base of layer.baseImages) {
      const parent = this.#images.get(base.imageId);
      if (!parent) throw new RpcError(status.NOT_FOUND, `Could not find image with ID ${base.imageId}`);
      if (parent.state !== 'ready') throw new RpcError(status.FAILED_PRECONDITION, `Base image ${base.imageId} is not built`);
    }
    const imageId = contentId([layer.dockerfileCommands, layer.baseImages, layer.builderVersion, layer.gpuType]);
    const existing = this.#images.get(imageId);
    if (existing && !layer.forceBuild && existing.state !== 'failed') {
      return existing.state === 'ready' ? { imageId, result: existing.result } : { imageId };
    }
    const image = existing ?? new ImageRecord(imageId, layer.dockerfileCommands);
    this.#images.set(imageId, image);
    this.#build(image);
    return { imageId };
  }

  ready(imageId: string): boolean {
    return this.#images.get(imageId)?.state === 'ready';
  }

  /** Ids of every layer built, in creation order, with their Dockerfile lines. */
  list(): { imageId: string; state: string; dockerfileCommands: string[]; builds: number }[] {
    return [...this.#images.values()].map((i) => ({ imageId: i.imageId, state: i.state, dockerfileCommands: [...i.dockerfileCommands], builds: i.builds }));
  }

  #build(image: ImageRecord): void {
    image.state = 'building';
    image.result = undefined;
    image.builds++;
    const { durationMs, failWith } = this.settings;
    const steps = image.dockerfileCommands;
    const started = Date.now();
    image.append(`Building image ${image.imageId}\n`);
    // Steps are spread over the build time so a client sees progress arrive.
    steps.forEach((command, i) => {
      this.#timers.after(((i + 1) * durationMs) / (steps.length + 1), () => image.append(`=> Step ${i + 1}/${steps.length} : ${command}\n`));
    });
    this.#timers.after(durationMs, () => {
      if (failWith !== undefined) {
        image.append(`Build failed: ${failWith}\n`, TaskState.Completed);
        image.finish({ status: GenericStatus.Failure, exception: failWith, exitcode: 1 });
        return;
      }
      image.append(`Saving image...\nBuilt image ${image.imageId} in ${((Date.now() - started) / 1000).toFixed(2)}s\n`, TaskState.Completed);
      image.finish({ status: GenericStatus.Success, exception: '', exitcode: 0 });
    });
  }

  /**
   * ImageJoinStreaming: log entries after `lastEntryId`, then the result with
   * eof. Returns without a result when `timeoutS` passes first; the SDK then
   * joins again from the last entry id it saw.
   */
  async join(imageId: string, lastEntryId: string, timeoutS: number, write: (item: JoinItem) => void, cancelled: AbortSignal): Promise<void> {
    const image = this.#images.get(imageId);
    if (!image) throw new RpcError(status.NOT_FOUND, `Could not find image with ID ${imageId}`);
    let sent = Number(lastEntryId || 0);
    const deadline = Date.now() + Math.max(1, Math.min(timeoutS || 55, 55)) * 1000;
    for (;;) {
      const fresh = image.log.filter((e) => Number(e.entryId) > sent);
      for (const entry of fresh) {
        write({ taskLogs: [{ data: entry.data, taskState: entry.taskState, timestamp: entry.timestamp, fileDescriptor: STDOUT }], entryId: entry.entryId, eof: false });
        sent = Number(entry.entryId);
      }
      if (image.result) {
        write({ result: image.result, taskLogs: [], entryId: '', eof: true });
        return;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || cancelled.aborted) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          image.events.off('change', done);
          cancelled.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, remaining);
        image.events.on('change', done);
        cancelled.addEventListener('abort', done);
      });
    }
  }

  close(): void {
    this.#timers.clear();
  }
}
