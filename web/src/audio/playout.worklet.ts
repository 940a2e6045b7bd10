/**
 * The playout buffer on the audio thread. PCM and flushes arrive from the
 * connection worker through a MessagePort of their own, so a busy main
 * thread never delays them. The main thread gets counters four times a
 * second and what was played in quarter-second batches, for the recorder.
 */
/// <reference path="./worklet-scope.d.ts" />
import { createPolicy } from '../playout/create-policy.js';
import { PlayoutBuffer } from '../playout/playout-buffer.js';
import { RECORDED_BATCH_SAMPLES, type PlayoutCommand, type PlayoutOptions, type PlayoutReport } from './messages.js';
import { PcmBatcher } from './pcm-batcher.js';

const STATS_EVERY = 47; // quanta: about 250 ms at 24 kHz, often enough for a readable stats panel

class PlayoutProcessor extends AudioWorkletProcessor {
  private buffer: PlayoutBuffer;
  private readonly options: PlayoutOptions;
  private quanta = 0;
  private arrivals: [number, number][] = [];
  private delaySum = 0;
  private delayCount = 0;
  private readonly recording = new PcmBatcher(RECORDED_BATCH_SAMPLES, (pcm, frame) => this.send({ type: 'recorded', pcm, frame }, [pcm.buffer]));

  constructor(nodeOptions: AudioWorkletNodeOptions) {
    super(nodeOptions);
    this.options = nodeOptions.processorOptions as PlayoutOptions;
    this.buffer = this.newBuffer();
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
    // Mono only: the node is built with outputChannelCount [1].
    const channel = outputs[0][0];
    this.buffer.pull(channel);
    if (this.buffer.lastPullDelay > 0) {
      this.delaySum += this.buffer.lastPullDelay;
      this.delayCount++;
    }
    this.recording.add(channel, currentFrame);
    if (++this.quanta % STATS_EVERY === 0) this.report();
    return true;
  }

  private report(): void {
    this.send({
      type: 'stats',
      stats: this.buffer.stats(),
      meanDelay: this.delayCount > 0 ? this.delaySum / this.delayCount : 0,
    });
    this.delaySum = 0;
    this.delayCount = 0;
    if (this.arrivals.length > 0) {
      this.send({ type: 'arrivals', arrivals: this.arrivals });
      this.arrivals = [];
    }
  }

  private send(report: PlayoutReport, transfer: Transferable[] = []): void {
    this.port.postMessage(report, transfer);
  }
}

registerProcessor('quillman-playout', PlayoutProcessor);
