/** Drives a cascade conversation frame by frame, like a microphone would, faster than real time. */
import { createCascadeEngine, type CascadeConfigInput, type CascadeConversation, type CascadeStages, type LmStage } from '../../src/engines/cascade/index.js';
import { ENGINE_FRAME_SAMPLES } from '../../src/engines/engine.js';
import { quietLogger, RecordingSink, sleep } from './helpers.js';

export interface Harness {
  conv: CascadeConversation;
  sink: RecordingSink;
  close(): Promise<void>;
}

export async function openHarness(lm: LmStage, config: CascadeConfigInput = {}, persona?: string, stages: Partial<CascadeStages> = {}): Promise<Harness> {
  const engine = await createCascadeEngine(
    { stt: 'pocketsphinx', tts: 'flite', vad: 'silero', autoDownload: false, idlePromptAfterMs: 0, ...config },
    { logger: quietLogger, stages: { lm, ...stages } },
  );
  const sink = new RecordingSink();
  const controller = new AbortController();
  const conv = (await engine.openConversation({ sampling: {}, persona, signal: controller.signal }, sink)) as CascadeConversation;
  return {
    conv,
    sink,
    async close() {
      controller.abort();
      await conv.close();
      await engine.dispose?.();
    },
  };
}

export interface RunOptions {
  /** Stop early once this holds (checked after each frame). */
  until?: () => boolean;
  /** Wall-clock pause per frame so the language model and synthesiser make progress in stream time. */
  paceMs?: number;
}

/**
 * Feeds `steps` frames; `input(i)` gives frame i (undefined → silence).
 * Each step processes input frame i, then pulls output frame i, as the
 * worker's output clock would 80 ms later: the two streams stay in step.
 */
export async function run(h: Harness, steps: number, input: (i: number) => Float32Array | undefined, opts: RunOptions = {}): Promise<number> {
  const start = h.sink.frames.length;
  for (let s = 0; s < steps; s++) {
    const i = start + s;
    h.conv.pushFrame(input(i) ?? new Float32Array(ENGINE_FRAME_SAMPLES));
    await h.conv.whenIdle();
    h.sink.audio(h.conv.pullFrame());
    await sleep(opts.paceMs ?? 3);
    if (opts.until?.()) return s + 1;
  }
  return steps;
}

/** Echo path: what the bot emitted `delayFrames` ago, at `gainDb`, as a microphone would hear it. */
export function echoOf(h: Harness, i: number, delayFrames: number, gainDb: number): Float32Array | undefined {
  const src = h.sink.frames[i - delayFrames];
  if (!src) return undefined;
  const g = 10 ** (gainDb / 20);
  return src.map((v) => v * g);
}

export function mix(a: Float32Array | undefined, b: Float32Array | undefined): Float32Array | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.map((v, k) => v + b[k]);
}
