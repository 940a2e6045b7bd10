/**
 * Microphone capture: cuts the input into encoder frames, each stamped with
 * the AudioContext frame of its first sample, so that what was spoken can be
 * lined up with what was played on the same clock.
 */
/// <reference path="./worklet-scope.d.ts" />
import { FRAME_SAMPLES, type MicFrame } from './messages.js';

class CaptureProcessor extends AudioWorkletProcessor {
  private frame = new Float32Array(FRAME_SAMPLES);
  private filled = 0;
  private frameStart = 0;

  process(inputs: Float32Array[][]): boolean {
    // An input with no channels (track not started yet) still advances time as silence.
    const input = inputs[0]?.[0];
    const length = input?.length ?? 128;
    for (let i = 0; i < length; i++) {
      if (this.filled === 0) this.frameStart = currentFrame + i;
      this.frame[this.filled++] = input ? input[i] : 0;
      if (this.filled === FRAME_SAMPLES) {
        const message: MicFrame = { pcm: this.frame, frame: this.frameStart };
        this.port.postMessage(message, [this.frame.buffer]);
        this.frame = new Float32Array(FRAME_SAMPLES);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor('quillman-capture', CaptureProcessor);
