/**
 * Local language model through node-llama-cpp (llama.cpp, prebuilt CPU
 * binaries from npm). The model is loaded once per process; each
 * conversation gets its own context (KV cache) so users never share state.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { ChatHistoryItem, Llama, LlamaModel } from 'node-llama-cpp';
import { pushIterable, type ChatMessage, type LmSession, type LmStage } from './types.js';

export interface LlamaLmOptions {
  modelPath: string;
  contextSize?: number;
  /** 0 = automatic: see autoThreads. */
  threads?: number;
  /** 'cpu' keeps to the CPU binaries (the laptop promise); 'auto' may use a GPU build when present. */
  gpu?: 'cpu' | 'auto';
}

/**
 * One thread per core less one, at most 8; llama.cpp's own default takes
 * every core. Its threads spin while they wait for each other, so one of
 * them descheduled stalls the rest: in a voice loop, where the same process
 * decodes the microphone every 80 ms and a synthesiser runs beside it, that
 * happens all the time. Measured on a 2-core box (docs/cascade.md): in the
 * benchmark's conversation the tiny test model made 325 ms per piece with 2
 * threads against 2 ms with 1; a stand-in as heavy as Qwen2.5-0.5B decoded
 * at 191 ms per piece with 2 threads and one core busy, 44 ms with 1. Two
 * threads only win on an idle machine's prompt (-35%).
 */
export function autoThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(8, cores - 1));
}

let llamaPromise: Promise<Llama> | undefined;

async function sharedLlama(gpu: 'cpu' | 'auto'): Promise<Llama> {
  if (!llamaPromise) {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    // build:'never': never try to compile llama.cpp at run time (no toolchain, no network).
    llamaPromise = getLlama({ gpu: gpu === 'cpu' ? false : 'auto', build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
    llamaPromise.catch(() => (llamaPromise = undefined));
  }
  return llamaPromise;
}

function toHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  return messages.map((m): ChatHistoryItem =>
    m.role === 'system' ? { type: 'system', text: m.content } : m.role === 'user' ? { type: 'user', text: m.content } : { type: 'model', response: [m.content] },
  );
}

export async function loadLlamaLm(opts: LlamaLmOptions): Promise<LmStage> {
  if (!existsSync(opts.modelPath)) throw new Error(`GGUF model ${opts.modelPath} not found`);
  const llama = await sharedLlama(opts.gpu ?? 'cpu');
  const model: LlamaModel = await llama.loadModel({ modelPath: opts.modelPath, gpuLayers: opts.gpu === 'auto' ? 'auto' : 0 });
  const { LlamaChat } = await import('node-llama-cpp');
  const contextSize = Math.min(opts.contextSize ?? 4096, model.trainContextSize);
  const name = `llama.cpp:${model.fileInfo.metadata.general?.name ?? opts.modelPath.split('/').pop()}`;

  return {
    name,
    countTokens: (text) => model.tokenize(text).length,
    async createSession(): Promise<LmSession> {
      const context = await model.createContext({ contextSize, threads: opts.threads || autoThreads() });
      const chat = new LlamaChat({ contextSequence: context.getSequence() });
      let disposed = false;
      return {
        generate(messages, gen) {
          return pushIterable<string>(async (push) => {
            if (gen.signal.aborted || disposed) return;
            await chat.generateResponse(toHistory(messages), {
              signal: gen.signal,
              // Barge-in aborts: return what was generated rather than throwing.
              stopOnAbortSignal: true,
              onTextChunk: (text) => push(text),
              maxTokens: gen.maxTokens,
              temperature: gen.temperature,
              topK: gen.topK,
              seed: gen.seed,
            });
          });
        },
        async dispose() {
          if (disposed) return;
          disposed = true;
          chat.dispose();
          await context.dispose();
        },
      };
    },
    async dispose() {
      await model.dispose();
    },
  };
}
