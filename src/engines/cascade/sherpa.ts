/**
 * Typed access to sherpa-onnx-node (which ships no TypeScript types). Only the
 * parts QuiLLMan calls are described.
 */
import { createRequire } from 'node:module';

export interface SherpaOnlineStream {
  acceptWaveform(obj: { samples: Float32Array; sampleRate: number }): void;
  inputFinished(): void;
}

export interface SherpaOnlineRecognizer {
  createStream(): SherpaOnlineStream;
  isReady(stream: SherpaOnlineStream): boolean;
  decode(stream: SherpaOnlineStream): void;
  getResult(stream: SherpaOnlineStream): { text: string };
}

export interface SherpaOfflineTts {
  sampleRate: number;
  generateAsync(obj: {
    text: string;
    sid?: number;
    speed?: number;
    onProgress?: (info: { samples: Float32Array; progress: number }) => number | boolean | void;
  }): Promise<{ samples: Float32Array; sampleRate: number }>;
}

export interface SherpaModule {
  version: string;
  OnlineRecognizer: new (config: unknown) => SherpaOnlineRecognizer;
  OfflineTts: { createAsync(config: unknown): Promise<SherpaOfflineTts> };
}

let cached: SherpaModule | undefined;

/** Loads the native addon; throws with the reason when this platform has no prebuilt binary. */
export function loadSherpa(): SherpaModule {
  if (cached) return cached;
  try {
    cached = createRequire(import.meta.url)('sherpa-onnx-node') as SherpaModule;
    return cached;
  } catch (err) {
    throw new Error(`sherpa-onnx-node cannot load on this machine: ${err instanceof Error ? err.message : String(err)}`);
  }
}
