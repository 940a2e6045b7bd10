/** The browser decoders' packet interface, served by libopus in Node so the web audio path can be tested here. */
import * as opus from '@evan/opus';
import { int16ToFloat } from '../../src/audio/pcm.js';
import type { PacketDecoderFactory } from '../../web/src/audio/ogg-opus-stream-decoder.js';

export const libopus: PacketDecoderFactory = (emit) => {
  const decoder = new opus.Decoder({ channels: 1, sample_rate: 24_000 });
  return {
    decode: (packet) => {
      const bytes = decoder.decode(packet);
      emit(int16ToFloat(new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1)));
    },
    close: () => {},
  };
};
