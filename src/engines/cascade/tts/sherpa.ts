/**
 * Default voice: Piper (VITS) run by sherpa-onnx. Audio arrives in pieces via
 * generateAsync's progress callback, so a long sentence starts playing before
 * it is fully synthesised.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINE_SAMPLE_RATE } from '../../engine.js';
import { StreamResampler } from '../audio/resample.js';
import { loadSherpa } from '../sherpa.js';
import type { TtsStage } from './types.js';

export interface SherpaTtsOptions {
  /** Folder of an unpacked vits-piper-* model: <voice>.onnx, tokens.txt, espeak-ng-data/. */
  modelDir: string;
  speaker?: number;
  speed?: number;
  threads?: number;
}

export async function loadSherpaTts(opts: SherpaTtsOptions): Promise<TtsStage> {
  const onnx = existsSync(opts.modelDir) ? readdirSync(opts.modelDir).find((f) => f.endsWith('.onnx')) : undefined;
  const tokens = join(opts.modelDir, 'tokens.txt');
  const dataDir = join(opts.modelDir, 'espeak-ng-data');
  if (!onnx || !existsSync(tokens) || !existsSync(dataDir)) {
    throw new Error(`Voice model in ${opts.modelDir} is incomplete. Run \`quillman models pull piper-en_US-amy-medium\`.`);
  }
  const sherpa = loadSherpa();
  const tts = await sherpa.OfflineTts.createAsync({
    model: { vits: { model: join(opts.modelDir, onnx), tokens, dataDir }, numThreads: opts.threads ?? 2, provider: 'cpu', debug: 0 },
    maxNumSentences: 1,
  });
  return {
    name: `sherpa-piper-${onnx.replace(/\.onnx$/, '')}`,
    async *synthesize(text, signal) {
      if (!text.trim() || signal.aborted) return;
      const resampler = await StreamResampler.create(tts.sampleRate, ENGINE_SAMPLE_RATE);
      const queue: Float32Array[] = [];
      let wake: (() => void) | undefined;
      let finished = false;
      let failure: unknown;
      tts
        .generateAsync({
          text,
          sid: opts.speaker ?? 0,
          speed: opts.speed ?? 1,
          onProgress: (info) => {
            queue.push(Float32Array.from(info.samples));
            wake?.();
            // Returning 0 tells sherpa-onnx to stop generating.
            return signal.aborted ? 0 : 1;
          },
        })
        .catch((err: unknown) => (failure = err))
        .finally(() => {
          finished = true;
          wake?.();
        });
      try {
        while (!signal.aborted) {
          const chunk = queue.shift();
          if (chunk) {
            const out = resampler.process(chunk);
            if (out.length > 0) yield out;
            continue;
          }
          if (finished) break;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
        if (failure && !signal.aborted) throw failure;
      } finally {
        resampler.release();
      }
    },
  };
}
