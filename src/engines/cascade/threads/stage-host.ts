/**
 * Entry point of a stage thread (node:worker_threads): loads one recogniser
 * or one voice, described by workerData (specs.ts), and serves it to the
 * main thread (threaded-stages.ts). Whatever the stage blocks on (FFI calls
 * into PocketSphinx, ONNX inference, WAV decoding, resampling) blocks this
 * thread, never the one that keeps the reply audio on time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { RecognizerSession, SttStage } from '../stt/types.js';
import type { TtsStage } from '../tts/types.js';
import { serveThread, type Handler } from './rpc.js';
import { loadStt, loadTts, type StageSpec } from './specs.js';

const { stage: which, spec } = workerData as StageSpec;
const port = parentPort!;

function transferOf(value: unknown): ArrayBuffer[] {
  return value instanceof Float32Array && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && value.buffer instanceof ArrayBuffer ? [value.buffer] : [];
}

function sttHandlers(stage: SttStage): Record<string, Handler> {
  const sessions = new Map<number, RecognizerSession>();
  let next = 1;
  const session = (id: unknown) => {
    const s = sessions.get(id as number);
    if (!s) throw new Error(`no recogniser session ${String(id)}`);
    return s;
  };
  return {
    name: async () => stage.name,
    create: async () => {
      const id = next++;
      sessions.set(id, await stage.create());
      return id;
    },
    // Each step answers with the hypothesis so far, which the main thread keeps for partial().
    begin: async ([id]) => {
      await session(id).begin();
      return session(id).partial();
    },
    accept: async ([id, pcm]) => {
      await session(id).accept(pcm as Float32Array);
      return session(id).partial();
    },
    finish: async ([id]) => session(id).finish(),
    cancel: async ([id]) => session(id).cancel(),
    dispose: async ([id]) => {
      sessions.get(id as number)?.dispose();
      sessions.delete(id as number);
    },
    close: async () => {
      for (const s of sessions.values()) s.dispose();
      sessions.clear();
      await stage.dispose?.();
    },
  };
}

function ttsHandlers(stage: TtsStage): Record<string, Handler> {
  return {
    name: async () => stage.name,
    synthesize: ([text], signal) => stage.synthesize(String(text), signal),
    close: async () => stage.dispose?.(),
  };
}

/** A word spoken and thrown away at load: the first reply then finds the program, the decoder and a resampler warm. */
async function warm(stage: TtsStage): Promise<TtsStage> {
  try {
    for await (const chunk of stage.synthesize('Ready.', new AbortController().signal)) void chunk;
  } catch {
    // A voice that cannot speak fails its first real sentence too, and says why there.
  }
  return stage;
}

// Loading may fail (a missing package): the main thread hears why from its first call.
const handlers = which === 'stt' ? loadStt(spec).then(sttHandlers) : loadTts(spec).then(warm).then(ttsHandlers);
handlers.catch(() => undefined);
serveThread(port, handlers, transferOf);
