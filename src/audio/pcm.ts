/** PCM helpers shared by the worker, engines and the terminal client. */

/** Cuts a stream of arbitrary-length chunks into fixed-size frames. */
export class FrameChunker {
  private buffer: Float32Array;
  private filled = 0;

  constructor(readonly frameSize: number) {
    this.buffer = new Float32Array(frameSize);
  }

  push(samples: Float32Array): Float32Array[] {
    const frames: Float32Array[] = [];
    let at = 0;
    while (at < samples.length) {
      const take = Math.min(this.frameSize - this.filled, samples.length - at);
      this.buffer.set(samples.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled === this.frameSize) {
        frames.push(this.buffer);
        this.buffer = new Float32Array(this.frameSize);
        this.filled = 0;
      }
    }
    return frames;
  }

  /** Samples waiting for a full frame. */
  get pending(): number {
    return this.filled;
  }

  /** The partial frame padded with silence, or nothing if empty. */
  drainPadded(): Float32Array | undefined {
    if (this.filled === 0) return undefined;
    const out = this.buffer;
    out.fill(0, this.filled);
    this.buffer = new Float32Array(this.frameSize);
    this.filled = 0;
    return out;
  }

  clear(): void {
    this.filled = 0;
  }
}

export function floatToInt16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    out[i] = s >= 1 ? 32767 : s <= -1 ? -32768 : Math.round(s * 32767);
  }
  return out;
}

export function int16ToFloat(samples: Int16Array): Float32Array {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i] / 32768;
  return out;
}

export function rms(samples: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return samples.length ? Math.sqrt(sum / samples.length) : 0;
}

export function concatFloat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
