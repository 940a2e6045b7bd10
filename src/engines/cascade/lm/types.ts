export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface GenerateOptions {
  signal: AbortSignal;
  temperature?: number;
  topK?: number;
  maxTokens?: number;
  seed?: number;
}

/** One conversation's use of a language model. */
export interface LmSession {
  /** Streams the reply's text pieces; ends early (without throwing) when `signal` aborts. */
  generate(messages: ChatMessage[], opts: GenerateOptions): AsyncIterable<string>;
  dispose(): Promise<void>;
}

export interface LmStage {
  readonly name: string;
  /** Token count of a text for the memory budget (exact where the stage has a tokenizer). */
  countTokens(text: string): number;
  createSession(): Promise<LmSession>;
  dispose?(): Promise<void>;
}

/** ~4 characters per token for English: used where no tokenizer is at hand. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * Turns a callback-driven producer into an async iterable with a bounded
 * hand-off: pieces are tiny (tokens), so the bound only guards against a
 * consumer that stopped reading.
 */
export function pushIterable<T>(
  start: (push: (item: T) => void) => Promise<void>,
  limit = 10_000,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const queue: T[] = [];
      let done = false;
      let failure: unknown;
      let wake: (() => void) | undefined;
      start((item) => {
        if (queue.length < limit) queue.push(item);
        wake?.();
      })
        .catch((err: unknown) => (failure = err))
        .finally(() => {
          done = true;
          wake?.();
        });
      return {
        async next(): Promise<IteratorResult<T>> {
          for (;;) {
            if (queue.length > 0) return { value: queue.shift()!, done: false };
            if (failure) throw failure;
            if (done) return { value: undefined, done: true };
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        },
        async return(): Promise<IteratorResult<T>> {
          done = true;
          return { value: undefined, done: true };
        },
      };
    },
  };
}
