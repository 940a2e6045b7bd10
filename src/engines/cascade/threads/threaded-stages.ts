/**
 * The recogniser and the voice, run on threads of their own. Both block for
 * tens of milliseconds at a time where they run (PocketSphinx's FFI calls,
 * ONNX inference, a synthesised sentence's WAV decoding and resampling, a
 * fresh WebAssembly resampler per sentence): on the main thread that held up
 * the output clock, and the reply audio with it. Here they only cost a
 * message each way.
 *
 * One thread per stage and engine, shared by its conversations; each
 * conversation's recogniser is a session on it. The thread starts when the
 * stage is selected (its load errors surface there, as before) and stops
 * with the engine.
 */
import { Worker } from 'node:worker_threads';
import type { RecognizerSession, SttStage } from '../stt/types.js';
import type { TtsStage } from '../tts/types.js';
import { ThreadClient } from './rpc.js';
import type { StageSpec, SttSpec, TtsSpec } from './specs.js';

/**
 * The thread's entry module. Run from source (the tests, or the CLI under
 * tsx) it is TypeScript, and the thread registers tsx itself before loading
 * it: a worker does not inherit the parent's module hooks.
 */
function startThread(data: StageSpec): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './stage-host.ts' : './stage-host.js', import.meta.url);
  if (!fromSource) return new Worker(entry, { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(entry.href)}))`;
  return new Worker(boot, { eval: true, workerData: data });
}

/**
 * A stage's thread, started afresh should it die (a crash in native code
 * takes the thread, not the worker): the conversations that were on it see
 * their calls fail, later ones get a new thread.
 */
class StageThread {
  private constructor(
    private client: ThreadClient,
    readonly name: string,
    private readonly data: StageSpec,
    private readonly what: string,
  ) {}

  static async start(data: StageSpec, what: string): Promise<StageThread> {
    const { client, name } = await StageThread.connect(data, what);
    return new StageThread(client, name, data, what);
  }

  private static async connect(data: StageSpec, what: string): Promise<{ client: ThreadClient; name: string }> {
    const client = new ThreadClient(startThread(data), what);
    try {
      return { client, name: await client.call<string>('name') };
    } catch (err) {
      await client.terminate();
      throw err;
    }
  }

  /** A live thread: this one, or a new one if it died. */
  async live(): Promise<ThreadClient> {
    if (this.client.broken) this.client = (await StageThread.connect(this.data, this.what)).client;
    return this.client;
  }

  async stop(): Promise<void> {
    await this.client.call('close').catch(() => undefined);
    await this.client.terminate();
  }
}

/** A recogniser on its own thread; rejects with the loader's reason if it cannot load there. */
export async function threadedStt(spec: SttSpec): Promise<SttStage> {
  const thread = await StageThread.start({ stage: 'stt', spec }, 'speech recogniser');
  return {
    name: thread.name,
    async create() {
      const client = await thread.live();
      return new ThreadedRecognizer(client, await client.call<number>('create'));
    },
    dispose: () => thread.stop(),
  };
}

class ThreadedRecognizer implements RecognizerSession {
  private hyp = '';
  private disposed = false;

  constructor(
    private readonly client: ThreadClient,
    private readonly id: number,
  ) {}

  async begin(): Promise<void> {
    this.hyp = await this.client.call<string>('begin', [this.id]);
  }

  async accept(pcm16k: Float32Array): Promise<void> {
    // A copy moves to the thread: the caller may still hold this audio (pre-roll).
    const copy = Float32Array.from(pcm16k);
    this.hyp = await this.client.call<string>('accept', [this.id, copy], [copy.buffer]);
  }

  partial(): string {
    return this.hyp;
  }

  async finish(): Promise<string> {
    this.hyp = await this.client.call<string>('finish', [this.id]);
    return this.hyp;
  }

  async cancel(): Promise<void> {
    await this.client.call('cancel', [this.id]);
    this.hyp = '';
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    void this.client.call('dispose', [this.id]).catch(() => undefined);
  }
}

/** A voice on its own thread; rejects with the loader's reason if it cannot load there. */
export async function threadedTts(spec: TtsSpec): Promise<TtsStage> {
  const thread = await StageThread.start({ stage: 'tts', spec }, 'speech synthesiser');
  return {
    name: thread.name,
    async *synthesize(text, signal) {
      yield* (await thread.live()).stream<Float32Array>('synthesize', [text], signal);
    },
    dispose: () => thread.stop(),
  };
}
