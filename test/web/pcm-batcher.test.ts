import { describe, expect, it } from 'vitest';
import { PcmBatcher } from '../../web/src/audio/pcm-batcher.js';

function collect(size: number) {
  const batches: { pcm: number[]; frame: number }[] = [];
  const batcher = new PcmBatcher(size, (pcm, frame) => batches.push({ pcm: Array.from(pcm), frame }));
  return { batcher, batches };
}

const ramp = (from: number, n: number) => Float32Array.from({ length: n }, (_, i) => from + i);

describe('PcmBatcher', () => {
  it('cuts render quanta into fixed batches stamped with the frame of their first sample', () => {
    const { batcher, batches } = collect(300);
    for (let q = 0; q < 5; q++) batcher.add(ramp(q * 128, 128), 1000 + q * 128);
    expect(batches.map((b) => [b.frame, b.pcm.length])).toEqual([
      [1000, 300],
      [1300, 300],
    ]);
    expect(batches[1].pcm[0]).toBe(300);
    batcher.flush();
    expect(batches[2]).toEqual({ frame: 1600, pcm: Array.from(ramp(600, 40)) });
  });

  it('closes a batch where the clock jumps, so every batch is one contiguous run', () => {
    const { batcher, batches } = collect(1000);
    batcher.add(ramp(0, 128), 0);
    batcher.add(ramp(128, 128), 128);
    batcher.add(ramp(0, 128), 5000);
    batcher.flush();
    expect(batches.map((b) => [b.frame, b.pcm.length])).toEqual([
      [0, 256],
      [5000, 128],
    ]);
  });

  it('hands over batches it never writes to again, and flushes nothing when empty', () => {
    const kept: Float32Array[] = [];
    const batcher = new PcmBatcher(4, (pcm) => kept.push(pcm));
    batcher.add(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), 0);
    batcher.flush();
    expect(kept.map((k) => Array.from(k))).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(kept[0].buffer).not.toBe(kept[1].buffer);
  });
});
