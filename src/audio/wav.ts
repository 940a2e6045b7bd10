/** WAV files in and out, through `wavefile`, normalised to mono Float32 at the rate asked for. */
import { readFile, writeFile } from 'node:fs/promises';
import wavefile from 'wavefile';

const { WaveFile } = wavefile;

export interface DecodedWav {
  samples: Float32Array;
  sampleRate: number;
}

/** Decodes any PCM/float WAV, mixes it to mono and, when asked, resamples it. */
export function decodeWav(bytes: Uint8Array, targetRate?: number): DecodedWav {
  const wav = new WaveFile(bytes);
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
