/**
 * Returns the caller's audio after a fixed delay and emits text pieces as its
 * audio goes out. For tests and latency calibration: with a known engine
 * delay, what remains of a measured round trip is the transport's own latency.
 *
 * Input and output run on different clocks (the worker pulls output on its
 * own steady clock), so the audio waits in a FIFO primed with the delay. The
 * FIFO also absorbs input frames that arrive a little late: up to the delay
 * beyond one frame, plus the output clock's phase, without a gap.
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

/**
 * Frames the FIFO may hold beyond its delay before the oldest is dropped: the
 * input ran ahead (a burst after a network stall, or a sender whose clock
 * runs fast), and playing all of it would keep the latency up for good.
 */
const MAX_EXTRA_FRAMES = 3;
/**
 * A late input frame leaves the FIFO a frame fuller than its delay. When it
 * stayed that full for this many pulls (2 s), the spare frame is dropped, so
 * the configured delay holds again.
 */
const TRIM_AFTER_PULLS = 25;

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
  private readonly fifo: SampleFifo;
  /** Samples the FIFO holds before a pull when input and output keep pace: the delay. */
  private readonly steadySamples: number;
  private samplesSinceText = 0;
  private words: string[];
  private wordIndex = 0;
  private closed = false;
  private readonly textIntervalSamples: number;
  /** Pulls in a row that found a spare frame beyond the delay. */
  private spareRun = 0;

  constructor(opts: LoopbackOptions, _conv: ConversationOptions, private readonly sink: EngineSink) {
    const extra = Math.round(((opts.delayMs - MIN_LOOPBACK_DELAY_MS) / 1000) * ENGINE_SAMPLE_RATE);
    this.steadySamples = extra + ENGINE_FRAME_SAMPLES;
    this.fifo = new SampleFifo(this.steadySamples + MAX_EXTRA_FRAMES * ENGINE_FRAME_SAMPLES);
    this.fifo.write(new Float32Array(extra)); // primed with the delay, as silence
    this.words = opts.text.split(/\s+/).filter(Boolean);
    this.textIntervalSamples = Math.round((opts.textIntervalMs / 1000) * ENGINE_SAMPLE_RATE);
    sink.metadata({ type: 'engine', name: 'loopback', delayMs: opts.delayMs });
  }

  pushFrame(frame: Float32Array): void {
    if (this.closed) return;
    const over = this.fifo.length + frame.length - this.fifo.capacity;
    if (over > 0) this.fifo.drop(over);
    this.fifo.write(frame);
  }

  pullFrame(): Float32Array {
    const out = new Float32Array(ENGINE_FRAME_SAMPLES);
    // Too little input for a whole frame: the next one is late. Silence now keeps what there is in order for later.
    if (this.closed || this.fifo.length < out.length) return out;
    this.spareRun = this.fifo.length >= this.steadySamples + ENGINE_FRAME_SAMPLES ? this.spareRun + 1 : 0;
    if (this.spareRun >= TRIM_AFTER_PULLS) {
      this.fifo.drop(ENGINE_FRAME_SAMPLES);
      this.spareRun = 0;
    }
    this.fifo.read(out);
    this.emitText(out.length);
    return out;
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

/** A bounded ring of samples. */
class SampleFifo {
  private readonly buf: Float32Array;
  private start = 0;
  length = 0;

  constructor(readonly capacity: number) {
    this.buf = new Float32Array(capacity);
  }

  write(samples: Float32Array): void {
    const size = this.buf.length;
    for (let i = 0; i < samples.length; i++) this.buf[(this.start + this.length + i) % size] = samples[i];
    this.length += samples.length;
  }

  read(into: Float32Array): void {
    const size = this.buf.length;
    for (let i = 0; i < into.length; i++) into[i] = this.buf[(this.start + i) % size];
    this.drop(into.length);
  }

  drop(n: number): void {
    const k = Math.min(n, this.length);
    this.start = (this.start + k) % this.buf.length;
    this.length -= k;
  }
}
