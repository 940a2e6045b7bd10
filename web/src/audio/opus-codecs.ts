/**
 * Opus encoders and decoders for the browser: WebCodecs where the browser
 * has it, libopus compiled to wasm (@evan/wasm) where it does not. Both run
 * inside workers; the wasm build compiles synchronously, which browsers only
 * allow off the main thread for modules of its size.
 */
import { int16ToFloat } from '../../../src/audio/pcm.js';
import type { PacketDecoder, PacketDecoderFactory } from './ogg-opus-stream-decoder.js';
import { FRAME_SAMPLES, SAMPLE_RATE } from './messages.js';

export interface PacketEncoder {
  /** Exactly FRAME_SAMPLES samples at 24 kHz. */
  encode(pcm: Float32Array): void;
  close(): void;
}

export interface Codec<T> {
  backend: 'webcodecs' | 'wasm';
  create: T;
}

export type PacketEncoderFactory = (emit: (packet: Uint8Array) => void, onError: (message: string) => void) => PacketEncoder;

const BITRATE = 32_000;

/** WebCodecs' Opus settings; TypeScript's DOM library does not describe `opus` yet. */
const encoderConfig = {
  codec: 'opus',
  sampleRate: SAMPLE_RATE,
  numberOfChannels: 1,
  bitrate: BITRATE,
  opus: { frameDuration: (FRAME_SAMPLES / SAMPLE_RATE) * 1e6, application: 'audio' },
} as AudioEncoderConfig;

const decoderConfig: AudioDecoderConfig = { codec: 'opus', sampleRate: SAMPLE_RATE, numberOfChannels: 1 };

/** A WebCodecs configuration check; a browser without WebCodecs, or one that throws on the question, does not support it. */
async function webCodecsSupports(api: unknown, check: () => Promise<{ supported?: boolean }>): Promise<boolean> {
  if (typeof api === 'undefined') return false;
  try {
    return (await check()).supported === true;
  } catch {
    return false;
  }
}

const webCodecsEncoderSupported = () =>
  webCodecsSupports(globalThis.AudioEncoder, () => AudioEncoder.isConfigSupported(encoderConfig));
const webCodecsDecoderSupported = () =>
  webCodecsSupports(globalThis.AudioDecoder, () => AudioDecoder.isConfigSupported(decoderConfig));

function webCodecsEncoder(emit: (packet: Uint8Array) => void, onError: (message: string) => void): PacketEncoder {
  const encoder = new AudioEncoder({
    output: (chunk) => {
      const packet = new Uint8Array(chunk.byteLength);
      chunk.copyTo(packet);
      emit(packet);
    },
    error: (e) => onError(`Opus encoder failed: ${e.message}`),
  });
  encoder.configure(encoderConfig);
  let timestamp = 0;
  return {
    encode(pcm) {
      const data = new AudioData({ format: 'f32-planar', sampleRate: SAMPLE_RATE, numberOfFrames: pcm.length, numberOfChannels: 1, timestamp, data: pcm as Float32Array<ArrayBuffer> });
      timestamp += (pcm.length / SAMPLE_RATE) * 1e6;
      encoder.encode(data);
      data.close();
    },
    close: () => encoder.state !== 'closed' && encoder.close(),
  };
}

/**
 * Chromium's AudioDecoder ignores the requested rate for Opus and always
 * gives 48 kHz. Our streams are encoded from 24 kHz, so Opus has coded
 * nothing above 12 kHz: keeping every other sample loses nothing.
 * Either way the result is a fresh array of its own, so it can be transferred.
 */
function toTargetRate(data: AudioData): Float32Array | undefined {
  const pcm = new Float32Array(data.numberOfFrames);
  data.copyTo(pcm, { planeIndex: 0, format: 'f32-planar' });
  if (data.sampleRate === SAMPLE_RATE) return pcm;
  if (data.sampleRate !== 2 * SAMPLE_RATE) return undefined;
  const out = new Float32Array(pcm.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = pcm[2 * i];
  return out;
}

function webCodecsDecoder(emit: (pcm: Float32Array) => void, onError: (message: string) => void): PacketDecoder {
  const decoder = new AudioDecoder({
    output: (data) => {
      const pcm = toTargetRate(data);
      data.close();
      if (pcm) emit(pcm);
      else onError(`the browser's Opus decoder gave ${data.sampleRate} Hz audio, which this app cannot play`);
    },
    error: (e) => onError(`Opus decoder failed: ${e.message}`),
  });
  decoder.configure(decoderConfig);
  // Timestamps only have to increase; the demuxer already keeps packets in order.
  let timestamp = 0;
  return {
    decode(packet) {
      decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp, data: packet }));
      timestamp += 20_000;
    },
    close: () => decoder.state !== 'closed' && decoder.close(),
  };
}

async function loadWasm() {
  return import('@evan/wasm/target/opus/deno.js');
}

/** `forceWasm` exercises the fallback in browsers that have WebCodecs (tests, `?codec=wasm`). */
export async function createEncoderFactory(forceWasm = false): Promise<Codec<PacketEncoderFactory>> {
  if (!forceWasm && (await webCodecsEncoderSupported())) return { backend: 'webcodecs', create: webCodecsEncoder };
  const { Encoder } = await loadWasm();
  return {
    backend: 'wasm',
    create: (emit, onError) => {
      const encoder = new Encoder({ channels: 1, sample_rate: SAMPLE_RATE, application: 'audio' });
      encoder.bitrate = BITRATE;
      const int16 = new Int16Array(FRAME_SAMPLES);
      return {
        encode(pcm) {
          for (let i = 0; i < pcm.length; i++) int16[i] = Math.max(-32768, Math.min(32767, Math.round(pcm[i] * 32767)));
          try {
            emit(encoder.encode(int16.subarray(0, pcm.length)));
          } catch (e) {
            onError(`Opus encoder failed: ${(e as Error).message}`);
          }
        },
        close: () => encoder.drop(),
      };
    },
  };
}

export async function createDecoderFactory(onError: (message: string) => void, forceWasm = false): Promise<Codec<PacketDecoderFactory>> {
  if (!forceWasm && (await webCodecsDecoderSupported())) return { backend: 'webcodecs', create: (emit) => webCodecsDecoder(emit, onError) };
  const { Decoder } = await loadWasm();
  return {
    backend: 'wasm',
    create: (emit) => {
      const decoder = new Decoder({ channels: 1, sample_rate: SAMPLE_RATE });
      return {
        decode(packet) {
          try {
            const bytes = decoder.decode(packet);
            emit(int16ToFloat(new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1)));
          } catch (e) {
            onError(`Opus decoder failed: ${(e as Error).message}`);
          }
        },
        close: () => decoder.drop(),
      };
    },
  };
}
