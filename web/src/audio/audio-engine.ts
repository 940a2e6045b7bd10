/**
 * The browser's audio path on the main thread: microphone and speaker in one
 * 24 kHz AudioContext (the browser resamples both ends), the capture and
 * playout worklets, and the encoder and decoder workers wired together.
 *
 *   mic → capture worklet → (main: mute, record) → encoder worker → Ogg pages → websocket
 *   websocket → decoder worker → playout worklet (direct MessagePort) → speaker
 */
import type { PolicyName } from '../playout/create-policy.js';
import captureWorkletUrl from './capture.worklet.ts?worker&url';
import playoutWorkletUrl from './playout.worklet.ts?worker&url';
import type { DecoderCommand, DecoderReport, EncoderCommand, EncoderReport, MicFrame, PlayoutCommand, PlayoutOptions, PlayoutReport } from './messages.js';
import { SAMPLE_RATE } from './messages.js';
import { ConversationRecorder } from './recorder.js';

export interface AudioEngineOptions {
  policy: PolicyName;
  /** Use the wasm codecs even where WebCodecs exists. */
  forceWasm: boolean;
  /** Report each playout arrival, for offline policy comparison. */
  traceArrivals: boolean;
}

export interface AudioEngineEvents {
  /** An Ogg page of microphone audio, ready to send; `granule` is its end in 48 kHz samples. */
  page(page: Uint8Array, granule: number): void;
  playout(report: Extract<PlayoutReport, { type: 'stats' }>): void;
  arrivals(arrivals: [number, number][]): void;
  backend(side: 'encoder' | 'decoder', name: string): void;
  error(message: string): void;
}

const MIC_CONSTRAINTS: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };

export class AudioEngine {
  readonly micAnalyser: AnalyserNode;
  readonly outputAnalyser: AnalyserNode;
  muted = false;

  private constructor(
    readonly context: AudioContext,
    private readonly stream: MediaStream,
    private readonly capture: AudioWorkletNode,
    private readonly playout: AudioWorkletNode,
    private readonly encoder: Worker,
    private readonly decoder: Worker,
    readonly recorder: ConversationRecorder,
    events: AudioEngineEvents,
  ) {
    this.micAnalyser = new AnalyserNode(context, { fftSize: 512 });
    this.outputAnalyser = new AnalyserNode(context, { fftSize: 512 });
    context.createMediaStreamSource(stream).connect(capture);
    context.createMediaStreamSource(stream).connect(this.micAnalyser);
    playout.connect(context.destination);
    playout.connect(this.outputAnalyser);

    capture.port.onmessage = (e: MessageEvent<MicFrame>) => this.onMicFrame(e.data);
    playout.port.onmessage = (e: MessageEvent<PlayoutReport>) => {
      const report = e.data;
      if (report.type === 'stats') events.playout(report);
      else if (report.type === 'output') recorder.addPlayed(report.pcm, report.frame);
      else events.arrivals(report.arrivals);
    };
    encoder.onmessage = (e: MessageEvent<EncoderReport>) => {
      const report = e.data;
      if (report.type === 'page') events.page(report.page, report.granule);
      else if (report.type === 'ready') events.backend('encoder', report.backend);
      else events.error(report.message);
    };
    decoder.onmessage = (e: MessageEvent<DecoderReport>) => {
      const report = e.data;
      if (report.type === 'ready') events.backend('decoder', report.backend);
      else events.error(report.message);
    };
    encoder.onerror = () => events.error('The audio encoder stopped unexpectedly.');
    decoder.onerror = () => events.error('The audio decoder stopped unexpectedly.');
  }

  /** Asks for the microphone and builds the graph. Rejects with the getUserMedia error as is. */
  static async start(options: AudioEngineOptions, events: AudioEngineEvents): Promise<AudioEngine> {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: MIC_CONSTRAINTS });
    const context = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
    try {
      await Promise.all([context.audioWorklet.addModule(captureWorkletUrl), context.audioWorklet.addModule(playoutWorkletUrl)]);
      const capture = new AudioWorkletNode(context, 'quillman-capture', { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: 'explicit' });
      const playoutOptions: PlayoutOptions = { policy: options.policy, reportOutput: true, reportArrivals: options.traceArrivals };
      const playout = new AudioWorkletNode(context, 'quillman-playout', {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: playoutOptions,
      });
      const encoder = new Worker(new URL('./encoder.worker.ts', import.meta.url), { type: 'module', name: 'quillman-encoder' });
      const decoder = new Worker(new URL('./decoder.worker.ts', import.meta.url), { type: 'module', name: 'quillman-decoder' });
      const engine = new AudioEngine(context, stream, capture, playout, encoder, decoder, new ConversationRecorder(), events);
      engine.post(encoder, { type: 'init', forceWasm: options.forceWasm });
      engine.post(decoder, { type: 'init', forceWasm: options.forceWasm });
      // The decoder feeds the playout worklet directly.
      const channel = new MessageChannel();
      engine.post(decoder, { type: 'connect', port: channel.port1 }, [channel.port1]);
      const connect: PlayoutCommand = { type: 'connect', port: channel.port2 };
      playout.port.postMessage(connect, [channel.port2]);
      await context.resume();
      return engine;
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      await context.close();
      throw err;
    }
  }

  /** Seconds between a sample leaving the playout worklet and reaching the speaker. */
  get outputLatency(): number {
    return (this.context.outputLatency || 0) + (this.context.baseLatency || 0);
  }

  /** A new conversation begins (the server's handshake): fresh streams both ways. */
  beginStream(): void {
    this.post(this.encoder, { type: 'start' });
    this.post(this.decoder, { type: 'reset' });
    this.sendPlayout({ type: 'reset' });
  }

  endStream(): void {
    this.post(this.encoder, { type: 'stop' });
  }

  /** The payload of a kind-1 frame: Ogg pages of the model's voice. */
  receive(ogg: Uint8Array): void {
    this.post(this.decoder, { type: 'ogg', bytes: ogg }, [ogg.buffer]);
  }

  /** Barge-in: drop whatever reply audio is still queued. */
  flush(): void {
    this.sendPlayout({ type: 'flush' });
  }

  async close(): Promise<void> {
    this.stream.getTracks().forEach((t) => t.stop());
    this.encoder.terminate();
    this.decoder.terminate();
    this.capture.port.onmessage = null;
    this.playout.port.onmessage = null;
    await this.context.close();
  }

  private onMicFrame(frame: MicFrame): void {
    // Muting keeps the stream going with silence: the model needs a continuous input.
    if (this.muted) frame.pcm.fill(0);
    this.recorder.addMic(frame.pcm, frame.frame);
    this.post(this.encoder, { type: 'pcm', pcm: frame.pcm }, [frame.pcm.buffer]);
  }

  private sendPlayout(command: PlayoutCommand): void {
    this.playout.port.postMessage(command);
  }

  private post(worker: Worker, command: EncoderCommand | DecoderCommand, transfer: Transferable[] = []): void {
    worker.postMessage(command, transfer);
  }
}
