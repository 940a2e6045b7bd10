/**
 * Kyutai's playout policy as their Moshi web client describes it, kept as the
 * baseline ours is measured against (see docs/web.md). Written from the
 * published figures; the fades and accounting are our PlayoutBuffer's, so
 * the comparison is between the decisions alone.
 *
 * - Start once `initial + partial` is buffered (80 ms + 10 ms).
 * - On underrun, `partial` grows by 5 ms, up to 80 ms, then re-buffer.
 * - When the buffer exceeds `initial + partial + max`, drop the oldest audio
 *   back to `initial + partial`; `max` starts at 10 ms and grows by 5 ms per
 *   drop, up to 80 ms.
 */
import type { PlayoutPolicy } from './playout-buffer.js';

export class KyutaiPolicy implements PlayoutPolicy {
  readonly name = 'kyutai';
  private readonly ms: (ms: number) => number;
  private readonly initial: number;
  private partial: number;
  private max: number;

  constructor(sampleRate: number) {
    this.ms = (ms) => Math.round((ms * sampleRate) / 1000);
    this.initial = this.ms(80);
    this.partial = this.ms(10);
    this.max = this.ms(10);
  }

  onArrival(): void {}

  shouldStart(_clock: number, depth: number): boolean {
    return depth >= this.initial + this.partial;
  }

  onUnderrun(): void {
    this.partial = Math.min(this.partial + this.ms(5), this.ms(80));
  }

  trimAmount(_clock: number, depth: number): number {
    if (depth <= this.initial + this.partial + this.max) return 0;
    this.max = Math.min(this.max + this.ms(5), this.ms(80));
    return depth - (this.initial + this.partial);
  }

  onFlush(): void {}

  targetDepth(): number {
    return this.initial + this.partial;
  }
}
