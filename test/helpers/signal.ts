/** Signal comparisons for asserting that audio came back as it was sent. */

/** Normalised cross-correlation of `b` against `a` at each lag in [minLag, maxLag] (samples); returns the best. */
export function bestLag(a: Float32Array, b: Float32Array, minLag: number, maxLag: number, step = 1): { lag: number; correlation: number } {
  let best = { lag: 0, correlation: -Infinity };
  for (let lag = minLag; lag <= maxLag; lag += step) {
    const c = correlationAtLag(a, b, lag);
    if (c > best.correlation) best = { lag, correlation: c };
  }
  return best;
}

/** Pearson correlation of a[i] with b[i + lag] over their overlap. */
export function correlationAtLag(a: Float32Array, b: Float32Array, lag: number): number {
  const start = Math.max(0, -lag);
  const end = Math.min(a.length, b.length - lag);
  if (end - start < 100) return -Infinity;
  let sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  const n = end - start;
  for (let i = start; i < end; i++) {
    const x = a[i], y = b[i + lag];
    sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y;
  }
  const cov = sab - (sa * sb) / n;
  const va = saa - (sa * sa) / n;
  const vb = sbb - (sb * sb) / n;
  return va > 0 && vb > 0 ? cov / Math.sqrt(va * vb) : 0;
}

/** Coarse lag search on decimated envelopes, then a fine search around it: cheap for long signals. */
export function findDelay(sent: Float32Array, received: Float32Array, maxLag: number): { lag: number; correlation: number } {
  const coarse = bestLag(sent, received, 0, maxLag, 24);
  return bestLag(sent, received, Math.max(0, coarse.lag - 48), coarse.lag + 48);
}

export function rmsOf(samples: Float32Array): number {
  let s = 0;
  for (let i = 0; i < samples.length; i++) s += samples[i] * samples[i];
  return samples.length ? Math.sqrt(s / samples.length) : 0;
}

/**
 * Best correlation of each `windowSamples` window of `sent` (where it holds
 * sound) against `received` at lags in [minLag, maxLag], with the window's
 * start and the lag it matched at. Matching window by window keeps one
 * playout trim or underrun, which shifts the alignment, from spoiling the
 * whole comparison.
 */
export function windowedCorrelations(
  sent: Float32Array,
  received: Float32Array,
  minLag: number,
  maxLag: number,
  windowSamples: number,
): { at: number; lag: number; correlation: number }[] {
  const out: { at: number; lag: number; correlation: number }[] = [];
  for (let at = 0; at + windowSamples <= sent.length; at += windowSamples) {
    const a = sent.subarray(at, at + windowSamples);
    if (rmsOf(a) < 0.02) continue;
    const b = received.subarray(at, Math.min(received.length, at + windowSamples + maxLag));
    const coarse = bestLag(a, b, minLag, Math.min(maxLag, b.length - 200), 24);
    const { lag, correlation } = bestLag(a, b, coarse.lag - 48, coarse.lag + 48);
    out.push({ at, lag, correlation });
  }
  return out;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
}
