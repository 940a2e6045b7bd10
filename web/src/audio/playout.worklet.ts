/**
 * The playout buffer on the audio thread. PCM arrives from the decoder
 * worker through a MessagePort of its own, so a busy main thread never
 * delays it; reports go to the main thread about ten times a second.
 */
/// <reference path="./worklet-scope.d.ts" />
import { createPolicy } from '../playout/create-policy.js';
import { PlayoutBuffer } from '../playout/playout-buffer.js';
import type { PlayoutCommand, PlayoutOptions, PlayoutReport } from './messages.js';

const REPORT_EVERY = 20; // quanta: about 107 ms at 24 kHz

class PlayoutProcessor extends AudioWorkletProcessor {
  private buffer: PlayoutBuffer;
  private readonly options: PlayoutOptions;
  private quanta = 0;
  private output: Float32Array;
  private outputFilled = 0;
  private outputStart = 0;
  private arrivals: [number, number][] = [];
  private delaySum = 0;
  private delayCount = 0;

  constructor(nodeOptions: AudioWorkletNodeOptions) {
    super(nodeOptions);
    this.options = nodeOptions.processorOptions as PlayoutOptions;
    this.buffer = this.newBuffer();
    this.output = new Float32Array(128 * REPORT_EVERY);
    this.port.onmessage = (e: MessageEvent<PlayoutCommand>) => this.onCommand(e.data);
  }

  private newBuffer(): PlayoutBuffer {
    return new PlayoutBuffer(createPolicy(this.options.policy, sampleRate), { sampleRate });
  }

  private onCommand(command: PlayoutCommand): void {
    switch (command.type) {
      case 'audio':
        if (this.options.reportArrivals) this.arrivals.push([this.buffer.now, command.pcm.length]);
        this.buffer.push(command.pcm);
        return;
      case 'flush':
        this.buffer.flush();
        return;
      case 'reset':
        // A new conversation: fresh policy state, nothing carried over.
        this.buffer = this.newBuffer();
        return;
      case 'connect':
        command.port.onmessage = (e: MessageEvent<PlayoutCommand>) => this.onCommand(e.data);
    }
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const channel = outputs[0][0];
    this.buffer.pull(channel);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(channel);
    if (this.buffer.lastPullDelay > 0) {
      this.delaySum += this.buffer.lastPullDelay;
      this.delayCount++;
    }
    if (this.options.reportOutput) {
      if (this.outputFilled === 0) this.outputStart = currentFrame;
      this.output.set(channel, this.outputFilled);
      this.outputFilled += channel.length;
    }
    if (++this.quanta % REPORT_EVERY === 0) this.report();
    return true;
  }

  private report(): void {
    const stats: PlayoutReport = {
      type: 'stats',
      stats: this.buffer.stats(),
      frame: currentFrame,
      meanDelay: this.delayCount > 0 ? this.delaySum / this.delayCount : 0,
    };
    this.delaySum = 0;
    this.delayCount = 0;
    this.port.postMessage(stats);
    if (this.outputFilled > 0) {
      const out: PlayoutReport = { type: 'output', pcm: this.output.subarray(0, this.outputFilled), frame: this.outputStart };
      this.port.postMessage(out, [this.output.buffer]);
      this.output = new Float32Array(128 * REPORT_EVERY);
      this.outputFilled = 0;
    }
    if (this.arrivals.length > 0) {
      const arrivals: PlayoutReport = { type: 'arrivals', arrivals: this.arrivals };
      this.port.postMessage(arrivals);
      this.arrivals = [];
    }
  }
}

registerProcessor('quillman-playout', PlayoutProcessor);
