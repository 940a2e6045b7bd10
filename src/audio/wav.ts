/** WAV files in and out, through `wavefile`, normalised to mono Float32 at the rate asked for. */
import { readFile, writeFile } from 'node:fs/promises';
import wavefile from 'wavefile';

const { WaveFile } = wavefile;

export interface DecodedWav {
  samples: Float32Array;
  sampleRate: number;
}

function fourCc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + 4));
}

interface RiffChunk {
  id: string;
  /** Offset of the chunk header. */
  at: number;
  /** Offset of the chunk body. */
  body: number;
  /** As the header claims: may run past the end of the bytes. */
  size: number;
}

/** The chunks after the 12-byte RIFF/WAVE header, in order. */
function* riffChunks(bytes: Uint8Array, view: DataView): Generator<RiffChunk> {
  for (let at = 12; at + 8 <= bytes.length; ) {
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    yield { id: fourCc(bytes, at), at, body, size };
    at = body + size + (size % 2);
  }
}

/**
 * A WAV written to a pipe cannot go back to fill in its sizes: writers leave
 * 0 or a huge placeholder. Take the data chunk as running to the end.
 */
function withStreamedSizesRepaired(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12 || fourCc(bytes, 0) !== 'RIFF' || fourCc(bytes, 8) !== 'WAVE') return bytes;
  for (const { id, at, body, size } of riffChunks(bytes, view)) {
    if (id !== 'data') continue;
    if (size !== 0 && body + size <= bytes.length) return bytes;
    const fixed = Uint8Array.from(bytes);
    const fixedView = new DataView(fixed.buffer);
    fixedView.setUint32(at + 4, bytes.length - body, true);
    fixedView.setUint32(4, bytes.length - 8, true);
    return fixed;
  }
  return bytes;
}

/**
 * 16-bit PCM, what every synthesiser here writes, read directly: wavefile's
 * generic conversion takes ~60 ms for a 2 s sentence, which is reply latency.
 * Undefined when the file needs wavefile anyway (another format, or resampling).
 */
function decodePcm16(bytes: Uint8Array, targetRate: number | undefined): DecodedWav | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format = 0;
  let channels = 0;
  let bits = 0;
  let sampleRate = 0;
  for (const { id, body, size } of riffChunks(bytes, view)) {
    if (id === 'fmt ' && body + 16 <= bytes.length) {
      format = view.getUint16(body, true);
      channels = view.getUint16(body + 2, true);
      sampleRate = view.getUint32(body + 4, true);
      bits = view.getUint16(body + 14, true);
    } else if (id === 'data') {
      if (format !== 1 || bits !== 16 || channels < 1) return undefined;
      if (targetRate !== undefined && targetRate !== sampleRate) return undefined;
      const frames = Math.floor(Math.min(size, bytes.length - body) / (2 * channels));
      const samples = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += view.getInt16(body + (i * channels + c) * 2, true);
        samples[i] = sum / channels / 32768;
      }
      return { samples, sampleRate };
    }
  }
  return undefined;
}

/** Decodes any PCM/float WAV, mixes it to mono and, when asked, resamples it. */
export function decodeWav(bytes: Uint8Array, targetRate?: number): DecodedWav {
  const repaired = withStreamedSizesRepaired(bytes);
  const direct = decodePcm16(repaired, targetRate);
  if (direct) return direct;
  const wav = new WaveFile(repaired);
  wav.toBitDepth('32f');
  if (targetRate !== undefined && (wav.fmt as { sampleRate: number }).sampleRate !== targetRate) {
    wav.toSampleRate(targetRate, { method: 'sinc' });
  }
  const fmt = wav.fmt as { sampleRate: number; numChannels: number };
  const raw = wav.getSamples(false, Float32Array) as unknown as Float32Array | Float32Array[];
  const channels = Array.isArray(raw) ? raw : [raw];
  const length = channels[0]?.length ?? 0;
  const samples = new Float32Array(length);
  for (const ch of channels) for (let i = 0; i < length; i++) samples[i] += ch[i] / channels.length;
  return { samples, sampleRate: targetRate ?? fmt.sampleRate };
}

export async function readWav(path: string, targetRate?: number): Promise<DecodedWav> {
  return decodeWav(await readFile(path), targetRate);
}

export function encodeWav(samples: Float32Array, sampleRate: number): Uint8Array {
  const wav = new WaveFile();
  const int16 = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) int16[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767)));
  wav.fromScratch(1, sampleRate, '16', int16);
  return wav.toBuffer();
}

export async function writeWav(path: string, samples: Float32Array, sampleRate: number): Promise<void> {
  await writeFile(path, encodeWav(samples, sampleRate));
}
