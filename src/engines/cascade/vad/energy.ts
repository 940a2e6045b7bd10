/**
 * Last-resort detector when onnxruntime cannot load on a platform: an adaptive
 * energy threshold. Much worse than Silero in noise, so 'auto' only picks it
 * when Silero is unavailable.
 */
import { FrameChunker, rms } from '../../../audio/pcm.js';
import type { VadStage, VoiceActivityDetector } from './types.js';

const WINDOW = 512;

class EnergyDetector implements VoiceActivityDetector {
  readonly name = 'energy';
  readonly windowSamples = WINDOW;
  private readonly windows = new FrameChunker(WINDOW);
  private noiseFloor = 0.003;

  async process(pcm16k: Float32Array): Promise<number[]> {
    const probs: number[] = [];
    for (const window of this.windows.push(pcm16k)) {
      const level = rms(window);
      // Track the floor quickly downwards, slowly upwards, so speech does not raise it.
      this.noiseFloor = level < this.noiseFloor ? 0.9 * this.noiseFloor + 0.1 * level : 0.999 * this.noiseFloor + 0.001 * level;
      const snrDb = 20 * Math.log10((level + 1e-9) / (Math.max(this.noiseFloor, 1e-4) + 1e-9));
      probs.push(Math.max(0, Math.min(1, (snrDb - 6) / 12)));
    }
    return probs;
  }

  reset(): void {
    this.windows.clear();
    this.noiseFloor = 0.003;
  }

  dispose(): void {}
}

export function energyVad(): VadStage {
  return { name: 'energy', create: () => new EnergyDetector() };
}
