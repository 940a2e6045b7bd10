/**
 * Builds the browser's audio and network path and keeps the main thread out
 * of it: microphone and speaker in one 24 kHz AudioContext (the browser
 * resamples both ends), the capture and playout worklets, the encoder
 * worker and the connection worker (the websocket), wired with
 * MessageChannels.
 *
 *   mic → capture worklet → encoder worker → connection worker → websocket
 *   websocket → connection worker (decode) → playout worklet → speaker
 *
 * The main thread gets what it shows: the server's non-audio frames, stats,
 * and quarter-second batches of both sides for the recorder.
 */
import type { ConnectionCommand, ConnectionReport, ConnectionStats, ShownFrame } from '../connection/messages.js';
import type { PolicyName } from '../playout/create-policy.js';
import captureWorkletUrl from './capture.worklet.ts?worker&url';
import playoutWorkletUrl from './playout.worklet.ts?worker&url';
import type { CaptureCommand, CaptureReport, EncoderCommand, EncoderReport, PlayoutCommand, PlayoutOptions, PlayoutReport } from './messages.js';
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
  /** The server's handshake: the conversation is live, audio flows both ways. */
  handshake(): void;
  frame(frame: ShownFrame): void;
  connection(stats: ConnectionStats): void;
  closed(code: number, reason: string, opened: boolean): void;
  playout(report: Extract<PlayoutReport, { type: 'stats' }>): void;
  arrivals(arrivals: [number, number][]): void;
  backend(side: 'encoder' | 'decoder', name: string): void;
  error(message: string): void;
}

const MIC_CONSTRAINTS: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };

/** How long a closing socket may take to say goodbye before its worker is stopped anyway. */
const CLOSE_GRACE_MS = 2000;

export class AudioEngine {
  readonly micAnalyser: AnalyserNode;
  readonly outputAnalyser: AnalyserNode;
  /** Between open() and the socket's close event. */
  private socketInUse = false;

  private constructor(
    readonly context: AudioContext,
    private readonly stream: MediaStream,
    private readonly capture: AudioWorkletNode,
    private readonly playout: AudioWorkletNode,
    private readonly encoder: Worker,
    private readonly connection: Worker,
    readonly recorder: ConversationRecorder,
    events: AudioEngineEvents,
  ) {
    this.micAnalyser = new AnalyserNode(context, { fftSize: 512 });
    this.outputAnalyser = new AnalyserNode(context, { fftSize: 512 });
    const mic = context.createMediaStreamSource(stream);
    mic.connect(capture);
    mic.connect(this.micAnalyser);
    playout.connect(context.destination);
    playout.connect(this.outputAnalyser);

    capture.port.onmessage = (e: MessageEvent<CaptureReport>) => recorder.addMic(e.data.pcm, e.data.frame);
    playout.port.onmessage = (e: MessageEvent<PlayoutReport>) => {
      const report = e.data;
      if (report.type === 'stats') events.playout(report);
      else if (report.type === 'recorded') recorder.addPlayed(report.pcm, report.frame);
      else events.arrivals(report.arrivals);
    };
    encoder.onmessage = (e: MessageEvent<EncoderReport>) => {
      const report = e.data;
      if (report.type === 'ready') events.backend('encoder', report.backend);
      else events.error(report.message);
    };
    connection.onmessage = (e: MessageEvent<ConnectionReport>) => {
      const report = e.data;
      switch (report.type) {
        case 'ready':
          return events.backend('decoder', report.backend);
        case 'error':
          return events.error(report.message);
        case 'handshake':
          return events.handshake();
        case 'frame':
          return events.frame(report.frame);
        case 'stats':
          return events.connection(report);
        case 'closed':
          this.socketInUse = false;
          return events.closed(report.code, report.reason, report.opened);
      }
    };
    encoder.onerror = () => events.error('The audio encoder stopped unexpectedly.');
    connection.onerror = () => events.error('The connection worker stopped unexpectedly.');
  }

  /** Asks for the microphone and builds the graph. Rejects with the getUserMedia error as is. */
  static async start(options: AudioEngineOptions, events: AudioEngineEvents): Promise<AudioEngine> {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: MIC_CONSTRAINTS });
    const context = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
    try {
      await Promise.all([context.audioWorklet.addModule(captureWorkletUrl), context.audioWorklet.addModule(playoutWorkletUrl)]);
      const capture = new AudioWorkletNode(context, 'quillman-capture', { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: 'explicit' });
      const playoutOptions: PlayoutOptions = { policy: options.policy, reportArrivals: options.traceArrivals };
      const playout = new AudioWorkletNode(context, 'quillman-playout', {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: playoutOptions,
      });
      const encoder = new Worker(new URL('./encoder.worker.ts', import.meta.url), { type: 'module', name: 'quillman-encoder' });
      const connection = new Worker(new URL('../connection/connection.worker.ts', import.meta.url), { type: 'module', name: 'quillman-connection' });
      const engine = new AudioEngine(context, stream, capture, playout, encoder, connection, new ConversationRecorder(), events);

      const micToEncoder = new MessageChannel();
      const pagesToConnection = new MessageChannel();
      const pcmToPlayout = new MessageChannel();
      const connectCapture: CaptureCommand = { type: 'connect', encoder: micToEncoder.port1 };
      capture.port.postMessage(connectCapture, [micToEncoder.port1]);
      const initEncoder: EncoderCommand = { type: 'init', forceWasm: options.forceWasm, capture: micToEncoder.port2, connection: pagesToConnection.port1 };
      encoder.postMessage(initEncoder, [micToEncoder.port2, pagesToConnection.port1]);
      engine.command({ type: 'init', forceWasm: options.forceWasm, playout: pcmToPlayout.port1, encoder: pagesToConnection.port2 }, [pcmToPlayout.port1, pagesToConnection.port2]);
      const connectPlayout: PlayoutCommand = { type: 'connect', port: pcmToPlayout.port2 };
      playout.port.postMessage(connectPlayout, [pcmToPlayout.port2]);
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

  /** Muted, the server hears silence: the stream never stops. */
  setMuted(muted: boolean): void {
    const command: CaptureCommand = { type: 'mute', muted };
    this.capture.port.postMessage(command);
  }

  /** Opens the websocket; everything after comes back through the events. */
  open(url: string, protocols: string[] = []): void {
    this.socketInUse = true;
    this.command({ type: 'open', url, protocols });
  }

  /**
   * Stops the audio now, and closes the socket (if open) with `code` and
   * `reason`; the connection worker goes once the close handshake is done.
   */
  async close(code = 1000, reason = ''): Promise<void> {
    this.stream.getTracks().forEach((t) => t.stop());
    this.encoder.terminate();
    this.capture.port.onmessage = null;
    this.playout.port.onmessage = null;
    this.connection.onerror = null;
    if (!this.socketInUse) this.connection.terminate();
    else {
      this.command({ type: 'close', code, reason });
      // Terminating now could cut the connection before the close handshake: the server would see an error, not a goodbye.
      const timer = setTimeout(() => this.connection.terminate(), CLOSE_GRACE_MS);
      this.connection.onmessage = (e: MessageEvent<ConnectionReport>) => {
        if (e.data.type !== 'closed') return;
        clearTimeout(timer);
        this.connection.terminate();
      };
    }
    await this.context.close();
  }

  private command(command: ConnectionCommand, transfer: Transferable[] = []): void {
    this.connection.postMessage(command, transfer);
  }
}
