export function rms(pcm: Float32Array): number {
  if (pcm.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i] * pcm[i];
  return Math.sqrt(sum / pcm.length);
}

export function dbToGain(db: number): number {
  return 10 ** (db / 20);
}

/** Float [-1,1] → int16, clamped, for recognisers that take 16-bit PCM. */
export function toInt16(pcm: Float32Array): Int16Array {
  const out = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) {
    const v = pcm[i];
    out[i] = v >= 1 ? 32767 : v <= -1 ? -32768 : Math.round(v * 32767);
  }
  return out;
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
