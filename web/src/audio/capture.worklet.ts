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
  private frame = new Float32Array(FRAME_SAMPLES);
  private filled = 0;
  private frameStart = 0;
  private encoder: MessagePort | undefined;
  private muted = false;
  private readonly recording = new PcmBatcher(RECORDED_BATCH_SAMPLES, (pcm, frame) => {
    const report: CaptureReport = { type: 'recorded', pcm, frame };
    this.port.postMessage(report, [pcm.buffer]);
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
    for (let i = 0; i < length; i++) {
      if (this.filled === 0) this.frameStart = currentFrame + i;
      // Muting sends silence: the model needs a continuous input.
      this.frame[this.filled++] = input && !this.muted ? input[i] : 0;
      if (this.filled === FRAME_SAMPLES) this.sendFrame();
    }
    return true;
  }

  private sendFrame(): void {
    this.recording.add(this.frame, this.frameStart);
    const message: MicFrame = { pcm: this.frame, frame: this.frameStart };
    this.encoder?.postMessage(message, [this.frame.buffer]);
    this.frame = new Float32Array(FRAME_SAMPLES);
    this.filled = 0;
  }
}

registerProcessor('quillman-capture', CaptureProcessor);
