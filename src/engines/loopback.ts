/**
 * Returns the caller's audio after a fixed delay and emits text pieces on a
 * timer. For tests and latency calibration: with a known engine delay, what
 * remains of a measured round trip is the transport's own latency.
 */
import { ENGINE_FRAME_SAMPLES, ENGINE_SAMPLE_RATE, type Conversation, type ConversationOptions, type Engine, type EngineSink } from './engine.js';

export interface LoopbackOptions {
  /**
   * Delay from a sample entering to it leaving, in stream time. At least one
   * 80 ms frame, since the engine only sees whole frames; larger values pad
   * with silence at the start.
   */
  delayMs: number;
  /** Interval between text pieces, in stream time. 0 disables text. */
  textIntervalMs: number;
  text: string;
}

export const LOOPBACK_DEFAULTS: LoopbackOptions = {
  delayMs: 80,
  textIntervalMs: 240,
  text: 'This is the loopback engine. It plays back what you say after a fixed delay, to test the audio path and measure latency. Start the cascade engine for a real conversation.',
};

export const MIN_LOOPBACK_DELAY_MS = (ENGINE_FRAME_SAMPLES / ENGINE_SAMPLE_RATE) * 1000;

export function createLoopbackEngine(options: Partial<LoopbackOptions> = {}): Engine {
  const opts = { ...LOOPBACK_DEFAULTS, ...options };
  if (!(opts.delayMs >= MIN_LOOPBACK_DELAY_MS)) {
    throw new Error(`loopback delay must be at least ${MIN_LOOPBACK_DELAY_MS} ms (one 80 ms frame), got ${opts.delayMs}`);
  }
  return {
    info: { name: 'loopback', stages: { audio: `echo after ${opts.delayMs} ms` } },
    openConversation: (conv, sink) => new LoopbackConversation(opts, conv, sink),
  };
}

class LoopbackConversation implements Conversation {
  /** Samples delayed beyond the frame itself, as silence primed at the start. */
  private readonly fifo: Float32Array;
  private readIndex = 0;
  private writeIndex: number;
  private samplesSinceText = 0;
  private words: string[];
  private wordIndex = 0;
  private closed = false;
  private readonly textIntervalSamples: number;

  constructor(opts: LoopbackOptions, _conv: ConversationOptions, private readonly sink: EngineSink) {
    const extra = Math.round(((opts.delayMs - MIN_LOOPBACK_DELAY_MS) / 1000) * ENGINE_SAMPLE_RATE);
    this.fifo = new Float32Array(extra + ENGINE_FRAME_SAMPLES);
    this.writeIndex = extra; // primed with zeros
    this.words = opts.text.split(/\s+/).filter(Boolean);
    this.textIntervalSamples = Math.round((opts.textIntervalMs / 1000) * ENGINE_SAMPLE_RATE);
    sink.metadata({ type: 'engine', name: 'loopback', delayMs: opts.delayMs });
  }

  pushFrame(frame: Float32Array): void {
    if (this.closed) return;
    // Ring buffer holding exactly delay + one frame: write the frame, read one frame out.
    const size = this.fifo.length;
    for (let i = 0; i < frame.length; i++) this.fifo[(this.writeIndex + i) % size] = frame[i];
    this.writeIndex = (this.writeIndex + frame.length) % size;
    const out = new Float32Array(ENGINE_FRAME_SAMPLES);
    for (let i = 0; i < out.length; i++) out[i] = this.fifo[(this.readIndex + i) % size];
    this.readIndex = (this.readIndex + out.length) % size;
    this.sink.audio(out);
    this.emitText(frame.length);
  }

  private emitText(samples: number): void {
    if (this.textIntervalSamples <= 0 || this.words.length === 0) return;
    this.samplesSinceText += samples;
    while (this.samplesSinceText >= this.textIntervalSamples) {
      this.samplesSinceText -= this.textIntervalSamples;
      // Moshi's pieces carry their own leading space; keep that shape.
      this.sink.text((this.wordIndex === 0 ? '' : ' ') + this.words[this.wordIndex % this.words.length]);
      this.wordIndex++;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
