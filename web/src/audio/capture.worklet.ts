/**
 * Microphone capture: cuts the input into encoder frames, each stamped with
 * the AudioContext frame of its first sample, and sends them straight to the
 * encoder worker, so a busy main thread never delays what the server hears.
 * The main thread only gets quarter-second batches for the recorder.
 */
/// <reference path="./worklet-scope.d.ts" />
import { FRAME_SAMPLES, RECORDED_BATCH_SAMPLES, type CaptureCommand, type CaptureReport, type MicFrame } from './messages.js';
import { PcmBatcher } from './pcm-batcher.js';

class CaptureProcessor extends AudioWorkletProcessor {
  private encoder: MessagePort | undefined;
  private muted = false;
  /** Never written: the silence sent while muted or before the track starts. */
  private zeros = new Float32Array(128);
  private readonly recording = new PcmBatcher(RECORDED_BATCH_SAMPLES, (pcm, frame) => {
    const report: CaptureReport = { type: 'recorded', pcm, frame };
    this.port.postMessage(report, [pcm.buffer]);
  });
  // currentFrame advances by exactly one quantum per process() call, so the
  // batcher never sees a clock jump and every frame it emits is whole.
  private readonly frames = new PcmBatcher(FRAME_SAMPLES, (pcm, frame) => {
    this.recording.add(pcm, frame);
    const message: MicFrame = { pcm, frame };
    this.encoder?.postMessage(message, [pcm.buffer]);
  });

  constructor(options: AudioWorkletNodeOptions) {
    super(options);
    this.port.onmessage = (e: MessageEvent<CaptureCommand>) => {
      const command = e.data;
      if (command.type === 'connect') this.encoder = command.encoder;
      else this.muted = command.muted;
    };
  }

  process(inputs: Float32Array[][]): boolean {
    // An input with no channels (track not started yet) still advances time as silence.
    const input = inputs[0]?.[0];
    const length = input?.length ?? 128;
    if (this.zeros.length !== length) this.zeros = new Float32Array(length);
    // Muting sends silence: the model needs a continuous input.
    this.frames.add(input && !this.muted ? input : this.zeros, currentFrame);
    return true;
  }
}

registerProcessor('quillman-capture', CaptureProcessor);
