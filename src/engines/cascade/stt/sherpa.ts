/**
 * Default recogniser: a streaming Zipformer transducer on sherpa-onnx. It
 * emits partial results as audio arrives (chunk 16 ≈ 320 ms of look-ahead).
 * The model is one process-wide recogniser; each conversation has its streams.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSherpa, type SherpaOnlineRecognizer, type SherpaOnlineStream } from '../sherpa.js';
import type { RecognizerSession, SttStage } from './types.js';

export interface SherpaSttOptions {
  /** Folder holding encoder.int8.onnx, decoder.onnx, joiner.int8.onnx, tokens.txt. */
  modelDir: string;
  threads?: number;
}

export function zipformerFiles(modelDir: string) {
  return {
    encoder: join(modelDir, 'encoder.int8.onnx'),
    decoder: join(modelDir, 'decoder.onnx'),
    joiner: join(modelDir, 'joiner.int8.onnx'),
    tokens: join(modelDir, 'tokens.txt'),
  };
}

export async function loadSherpaStt(opts: SherpaSttOptions): Promise<SttStage> {
  const files = zipformerFiles(opts.modelDir);
  for (const p of Object.values(files)) {
    if (!existsSync(p)) throw new Error(`Speech model file ${p} is missing. Run \`quillman models pull zipformer-en-2023-06-26\`.`);
  }
  const sherpa = loadSherpa();
  const recognizer = new sherpa.OnlineRecognizer({
    featConfig: { sampleRate: 16000, featureDim: 80 },
    modelConfig: {
      transducer: { encoder: files.encoder, decoder: files.decoder, joiner: files.joiner },
      tokens: files.tokens,
      numThreads: opts.threads ?? 2,
      provider: 'cpu',
      debug: 0,
    },
    decodingMethod: 'greedy_search',
    // Turn ends are the engine's (VAD + hang time), not the recogniser's.
    enableEndpoint: 0,
  });
  return {
    name: 'sherpa-zipformer',
    async create() {
      return new SherpaSession(recognizer);
    },
  };
}

/** Trailing silence so the last word leaves the model's look-ahead window. */
const TAIL_PADDING = new Float32Array(16000 * 0.4);

class SherpaSession implements RecognizerSession {
  private stream: SherpaOnlineStream | undefined;
  private hyp = '';

  constructor(private readonly recognizer: SherpaOnlineRecognizer) {}

  async begin(): Promise<void> {
    this.stream = this.recognizer.createStream();
    this.hyp = '';
  }

  private decode(): void {
    if (!this.stream) return;
    while (this.recognizer.isReady(this.stream)) this.recognizer.decode(this.stream);
    this.hyp = this.recognizer.getResult(this.stream).text.trim().toLowerCase();
  }

  async accept(pcm16k: Float32Array): Promise<void> {
    if (!this.stream || pcm16k.length === 0) return;
    this.stream.acceptWaveform({ samples: pcm16k, sampleRate: 16000 });
    this.decode();
  }

  partial(): string {
    return this.hyp;
  }

  async finish(): Promise<string> {
    if (!this.stream) return this.hyp;
    this.stream.acceptWaveform({ samples: TAIL_PADDING, sampleRate: 16000 });
    this.stream.inputFinished();
    this.decode();
    this.stream = undefined;
    return this.hyp;
  }

  async cancel(): Promise<void> {
    this.stream = undefined;
    this.hyp = '';
  }

  dispose(): void {
    this.stream = undefined;
  }
}
