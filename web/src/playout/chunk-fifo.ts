/**
 * Audio waiting to be played, kept in the chunks it arrived in so that every
 * sample still knows when it arrived: that is what the delay a listener
 * hears is measured from.
 */
interface Chunk {
  data: Float32Array;
  read: number;
  /** Sample clock at which the chunk arrived. */
  arrival: number;
}

export class ChunkFifo {
  private chunks: Chunk[] = [];
  private head = 0;
  /** Samples buffered. */
  size = 0;

  push(data: Float32Array, arrival: number): void {
    if (data.length === 0) return;
    this.chunks.push({ data, read: 0, arrival });
    this.size += data.length;
  }

  /**
   * Moves up to `count` samples into `out` from index `at`. `onRun` hears each
   * contiguous run with its arrival clock and its index in `out`.
   */
  read(out: Float32Array, at: number, count: number, onRun?: (arrival: number, index: number, length: number) => void): number {
    return this.consume(count, out, at, onRun);
  }

  /** Copies up to `count` of the oldest samples into `out`, without consuming them. */
  peek(out: Float32Array, count: number): number {
    let done = 0;
    for (let i = this.head; i < this.chunks.length && done < count; i++) {
      const chunk = this.chunks[i];
      const take = Math.min(count - done, chunk.data.length - chunk.read);
      out.set(chunk.data.subarray(chunk.read, chunk.read + take), done);
      done += take;
    }
    return done;
  }

  /** Discards up to `count` of the oldest samples; returns how many went. */
  drop(count: number): number {
    return this.consume(count);
  }

  clear(): number {
    const dropped = this.size;
    this.chunks = [];
    this.head = 0;
    this.size = 0;
    return dropped;
  }

  private compact(): void {
    // Amortised: shifting on every read would be O(n) per quantum.
    if (this.head > 32 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Takes up to `count` of the oldest samples out, copying them to `out` from
   * `at` when given. Plain arguments, not a visitor: read() runs every render
   * quantum on the audio thread, where a closure per call is garbage.
   */
  private consume(count: number, out?: Float32Array, at = 0, onRun?: (arrival: number, index: number, length: number) => void): number {
    let done = 0;
    while (done < count && this.head < this.chunks.length) {
      const chunk = this.chunks[this.head];
      const take = Math.min(count - done, chunk.data.length - chunk.read);
      if (out) {
        out.set(chunk.data.subarray(chunk.read, chunk.read + take), at + done);
        onRun?.(chunk.arrival, at + done, take);
      }
      chunk.read += take;
      done += take;
      if (chunk.read === chunk.data.length) this.head++;
    }
    this.size -= done;
    this.compact();
    return done;
  }
}
