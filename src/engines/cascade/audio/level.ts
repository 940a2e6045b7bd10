import { rms } from '../../../audio/pcm.js';

export function dbToGain(db: number): number {
  return 10 ** (db / 20);
}

/**
 * Index of the first `window`-sample block whose RMS reaches `threshold`, or
 * -1 when the whole clip is quieter. Blocks, not single samples, so a click
 * or dither does not count as sound.
 */
export function firstSoundIndex(pcm: Float32Array, threshold: number, window = 120): number {
  for (let i = 0; i < pcm.length; i += window) {
    if (rms(pcm.subarray(i, Math.min(pcm.length, i + window))) >= threshold) return i;
  }
  return -1;
}
