/**
 * Calls into a worker thread: requests that answer once, and streams that
 * answer item by item and can be cancelled. Just what the stage threads
 * need (stateful sessions, streamed audio, abort), over the thread's own
 * message port; typed arrays in items and arguments are transferred, not
 * copied, wherever the caller says so.
 */
import type { MessagePort, Worker } from 'node:worker_threads';

type Request = { id: number; op: string; args: unknown[] } | { cancel: number };
type Response = { id: number; result: unknown } | { id: number; item: unknown } | { id: number; end: true } | { id: number; error: string };

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  /** Streams only. */
  item?(value: unknown): void;
}

/** The main thread's end. */
export class ThreadClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly what: string,
  ) {
    // An idle thread does not keep the process alive; a call waiting on it does (see track).
    worker.unref();
    worker.on('message', (msg: Response) => this.onMessage(msg));
    worker.on('error', (err) => this.fail(new Error(`${what} thread failed: ${err.message}`)));
    worker.on('exit', (code) => this.fail(new Error(`${what} thread stopped (exit code ${code})`)));
  }

  /** The thread died: every call since fails with this. */
  get broken(): Error | undefined {
    return this.failure;
  }

  call<T>(op: string, args: unknown[] = [], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.track(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, args } satisfies Request, transfer);
    });
  }

  /** Items as the thread produces them; aborting `signal` (or leaving the loop) cancels the thread's work. */
  async *stream<T>(op: string, args: unknown[], signal: AbortSignal): AsyncGenerator<T> {
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    const queue: T[] = [];
    let done = false;
    let error: Error | undefined;
    let wake: (() => void) | undefined;
    const settle = () => {
      wake?.();
      wake = undefined;
    };
    this.track(id, {
      item: (v) => {
        queue.push(v as T);
        settle();
      },
      resolve: () => {
        done = true;
        settle();
      },
      reject: (err) => {
        error = err;
        settle();
      },
    });
    const cancel = () => {
      if (this.untrack(id)) this.worker.postMessage({ cancel: id } satisfies Request);
      done = true;
      settle();
    };
    signal.addEventListener('abort', cancel, { once: true });
    this.worker.postMessage({ id, op, args } satisfies Request);
    try {
      for (;;) {
        if (queue.length > 0) {
          yield queue.shift()!;
          continue;
        }
        if (error) throw error;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      signal.removeEventListener('abort', cancel);
      cancel();
    }
  }

  private track(id: number, p: Pending): void {
    if (this.pending.size === 0) this.worker.ref();
    this.pending.set(id, p);
  }

  private untrack(id: number): boolean {
    const had = this.pending.delete(id);
    if (had && this.pending.size === 0) this.worker.unref();
    return had;
  }

  private onMessage(msg: Response): void {
    const p = this.pending.get(msg.id);
    if (!p) return; // cancelled meanwhile
    if ('item' in msg) return p.item?.(msg.item);
    this.untrack(msg.id);
    if ('error' in msg) p.reject(new Error(msg.error));
    else p.resolve('result' in msg ? msg.result : undefined);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.worker.unref();
    for (const p of pending) p.reject(err);
  }

  async terminate(): Promise<void> {
    this.failure ??= new Error(`${this.what} thread was stopped`);
    await this.worker.terminate();
  }
}

export type Handler = (args: unknown[], signal: AbortSignal) => Promise<unknown> | AsyncIterable<unknown>;

/**
 * The thread's end: answers requests with `handlers` (once they are ready:
 * a thread may still be loading its model; if that fails, every request
 * hears why). `transferOf` names the buffers of a result or item to move
 * rather than copy.
 */
export function serveThread(port: MessagePort, handlers: Record<string, Handler> | Promise<Record<string, Handler>>, transferOf: (value: unknown) => ArrayBuffer[] = () => []): void {
  const running = new Map<number, AbortController>();
  port.on('message', (msg: Request) => {
    if ('cancel' in msg) return void running.get(msg.cancel)?.abort();
    void answer(msg);
  });

  async function answer(msg: { id: number; op: string; args: unknown[] }): Promise<void> {
    const controller = new AbortController();
    running.set(msg.id, controller);
    try {
      const handler = (await handlers)[msg.op];
      if (!handler) throw new Error(`unknown operation ${msg.op}`);
      const out = handler(msg.args, controller.signal);
      if (isAsyncIterable(out)) {
        for await (const item of out) {
          if (controller.signal.aborted) break;
          port.postMessage({ id: msg.id, item } satisfies Response, transferOf(item));
        }
        port.postMessage({ id: msg.id, end: true } satisfies Response);
      } else {
        const result = await out;
        port.postMessage({ id: msg.id, result } satisfies Response, transferOf(result));
      }
    } catch (err) {
      port.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) } satisfies Response);
    } finally {
      running.delete(msg.id);
    }
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
