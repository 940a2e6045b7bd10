/**
 * Gathers consecutive PCM into fixed-size batches, each stamped with the
 * AudioContext frame of its first sample. The worklets use it so that the
 * recorder on the main thread gets a few messages a second, not hundreds.
 */
export class PcmBatcher {
  private batch: Float32Array;
  private filled = 0;
  private start = 0;

  constructor(
    private readonly size: number,
    /** Receives a batch it may keep or transfer: the batcher never touches it again. */
    private readonly emit: (pcm: Float32Array, frame: number) => void,
  ) {
    this.batch = new Float32Array(size);
  }

  add(pcm: Float32Array, frame: number): void {
    // A batch is one contiguous run: a jump in the clock closes it.
    if (this.filled > 0 && frame !== this.start + this.filled) this.flush();
    let at = 0;
    while (at < pcm.length) {
      if (this.filled === 0) this.start = frame + at;
      const n = Math.min(pcm.length - at, this.size - this.filled);
      this.batch.set(pcm.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.size) this.flush();
    }
  }

  /** Emits what is gathered so far, if anything. */
  flush(): void {
    if (this.filled === 0) return;
    const full = this.batch;
    const length = this.filled;
    this.batch = new Float32Array(this.size);
    this.filled = 0;
    this.emit(length === full.length ? full : full.subarray(0, length), this.start);
  }
}
