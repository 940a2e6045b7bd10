/**
 * One conversation at a time: the websocket, the audio engine and what the
 * UI shows, as an external store for React's useSyncExternalStore.
 */
import { decodeFrame, encodeAudio, isTypedEvent } from '../../../src/protocol/index.js';
import { AudioEngine } from '../audio/audio-engine.js';
import { isBosPage, pageGranule } from '../audio/ogg-page-writer.js';
import type { ConversationRecorder } from '../audio/recorder.js';
import type { PolicyName } from '../playout/create-policy.js';
import type { PlayoutStats } from '../playout/playout-buffer.js';
import { queryFor, type Settings } from '../settings/settings.js';
import { closeProblem, insecureOrigin, microphoneProblem, unreachable, type Problem } from './problems.js';
import { socketUrl } from './server-url.js';
import type { Phase, SessionSnapshot } from './session-types.js';
import { addPiece, upsertUtterance } from './transcript.js';

export interface SessionOptions {
  policy: PolicyName;
  forceWasm: boolean;
  traceArrivals: boolean;
}

/** Capture framing (one 20 ms Opus frame) plus libopus' 6.5 ms look-ahead. */
const CAPTURE_LATENCY_MS = 26.5;

export class VoiceSession {
  private snapshot: SessionSnapshot = { phase: { name: 'idle' }, muted: false, transcript: [], codecs: {}, hasRecording: false };
  private readonly listeners = new Set<() => void>();
  private socket: WebSocket | undefined;
  private audio: AudioEngine | undefined;
  private recorder: ConversationRecorder | undefined;
  private handshake = false;
  private userClosed = false;
  private lastServerError: string | undefined;
  private sawTextPieces = false;
  /** Send time of each of our pages, by granule, for the reply lag. */
  private sent: { granule: number; at: number }[] = [];
  private receivedBos = false;
  private replyLag: number | undefined;
  private bytes = { sent: 0, received: 0, since: 0, sentKbps: 0, receivedKbps: 0 };
  /** Every playout arrival of the session, when tracing. */
  readonly arrivals: [number, number][] = [];
  lastPlayout: PlayoutStats | undefined;

  constructor(private readonly options: SessionOptions) {}

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): SessionSnapshot => this.snapshot;

  get audioEngine(): AudioEngine | undefined {
    return this.audio;
  }

  get conversation(): ConversationRecorder | undefined {
    return this.recorder;
  }

  private update(patch: Partial<SessionSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const l of this.listeners) l();
  }

  private setPhase(phase: Phase): void {
    this.update({ phase });
  }

  async connect(settings: Settings): Promise<void> {
    if (this.socket || this.snapshot.phase.name === 'connecting') return;
    const query = queryFor(settings);
    if (!query.ok) {
      return this.setPhase({
        name: 'error',
        problem: { title: 'A setting is out of range', action: 'Fix it in Settings, then connect again.', detail: query.issues.map((i) => i.message).join('; ') },
      });
    }
    let url: string;
    try {
      url = socketUrl(settings.serverAddress, location, query.query);
    } catch (err) {
      return this.setPhase({ name: 'error', problem: { title: 'The server address is not valid', action: 'Correct it in Settings, then connect again.', detail: (err as Error).message } });
    }
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) return this.setPhase({ name: 'error', problem: insecureOrigin() });

    this.resetConversationState();
    this.update({ phase: { name: 'connecting', step: 'microphone' }, transcript: [], stats: undefined, engine: undefined, endsAt: undefined, hasRecording: false });
    try {
      this.audio = await AudioEngine.start(this.options, {
        page: (page, granule) => this.sendPage(page, granule),
        playout: (report) => this.onPlayout(report.stats, report.meanDelay),
        arrivals: (list) => this.arrivals.push(...list),
        backend: (side, name) => this.update({ codecs: { ...this.snapshot.codecs, [side]: name } }),
        error: (message) => this.fail({ title: 'The audio stopped', action: 'Disconnect and connect again.', detail: message }),
      });
      this.audio.muted = this.snapshot.muted;
    } catch (err) {
      return this.setPhase({ name: 'error', problem: microphoneProblem(err) });
    }
    this.recorder = this.audio.recorder;
    this.update({ hasRecording: true });
    this.open(url);
  }

  disconnect(): void {
    this.userClosed = true;
    this.socket?.close(1000, 'user disconnected');
    void this.teardown();
    this.setPhase({ name: 'ended', reason: 'You ended the conversation.' });
  }

  setMuted(muted: boolean): void {
    if (this.audio) this.audio.muted = muted;
    this.update({ muted });
  }

  private resetConversationState(): void {
    this.handshake = false;
    this.userClosed = false;
    this.lastServerError = undefined;
    this.sawTextPieces = false;
    this.sent = [];
    this.receivedBos = false;
    this.replyLag = undefined;
    this.bytes = { sent: 0, received: 0, since: performance.now(), sentKbps: 0, receivedKbps: 0 };
    this.arrivals.length = 0;
    this.lastPlayout = undefined;
  }

  private open(url: string): void {
    this.setPhase({ name: 'connecting', step: 'server' });
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    let opened = false;
    socket.onopen = () => (opened = true);
    socket.onmessage = (e) => {
      if (!(e.data instanceof ArrayBuffer)) return; // the protocol is binary only
      this.bytes.received += e.data.byteLength;
      this.onFrame(new Uint8Array(e.data));
    };
    socket.onclose = (e) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      void this.teardown();
      if (this.userClosed) return;
      if (!opened) return this.setPhase({ name: 'error', problem: unreachable(url.split('?')[0]) });
      const problem = closeProblem(e.code, e.reason, this.lastServerError);
      if (problem) this.setPhase({ name: 'error', problem });
      else if (this.snapshot.phase.name !== 'ended') this.setPhase({ name: 'ended', reason: e.reason || 'The conversation ended.' });
    };
  }

  private async teardown(): Promise<void> {
    const audio = this.audio;
    this.audio = undefined;
    if (!audio) return;
    audio.endStream();
    await audio.close();
  }

  private fail(problem: Problem): void {
    this.userClosed = true;
    this.socket?.close(1000, 'client error');
    this.socket = undefined;
    void this.teardown();
    this.setPhase({ name: 'error', problem });
  }

  private onFrame(bytes: Uint8Array): void {
    const decoded = decodeFrame(bytes);
    if (!decoded.ok) return; // a malformed frame is the server's bug; the stream goes on
    const frame = decoded.frame;
    switch (frame.kind) {
      case 'handshake':
        if (this.handshake) return;
        this.handshake = true;
        this.audio?.beginStream();
        this.setPhase({ name: 'live' });
        return;
      case 'audio':
        if (!this.handshake) return;
        this.trackReplyLag(frame.data);
        this.audio?.receive(frame.data);
        return;
      case 'text':
        this.sawTextPieces = true;
        this.update({ transcript: addPiece(this.snapshot.transcript, frame.text) });
        return;
      case 'metadata':
        this.onMetadata(frame.data);
        return;
      case 'error':
        this.lastServerError = frame.message;
        return;
      default:
      // control, ping and kinds newer than this client carry nothing to show
    }
  }

  private onMetadata(data: unknown): void {
    if (!isTypedEvent(data)) return; // Kyutai's Rust server opens with free-form JSON
    const event = data as { type: string; [k: string]: unknown };
    switch (event.type) {
      case 'queue':
        if (!this.handshake) this.setPhase({ name: 'queued', position: Number(event.position), queued: Number(event.queued) });
        return;
      case 'warming_up':
        if (!this.handshake) this.setPhase({ name: 'warming-up', message: event.message as string | undefined, fraction: event.fraction as number | undefined });
        return;
      case 'session':
        this.update({ endsAt: performance.now() + Number(event.maxSeconds) * 1000 });
        return;
      case 'ending_soon': {
        const endsAt = performance.now() + Number(event.secondsLeft) * 1000;
        this.update({ phase: { name: 'ending-soon', endsAt }, endsAt });
        return;
      }
      case 'ended':
        this.lastServerError = undefined;
        this.update({ phase: { name: 'ended', reason: String(event.reason) } });
        return;
      case 'error':
        this.lastServerError = String(event.message);
        return;
      case 'engine':
        this.update({ engine: String(event.name) });
        return;
      case 'transcript':
        // Engines that stream the model's words as pieces need not repeat them here.
        if (event.role === 'assistant' && this.sawTextPieces) return;
        if (event.role !== 'user' && event.role !== 'assistant') return;
        this.update({ transcript: upsertUtterance(this.snapshot.transcript, event.role, String(event.text), event.final === true) });
        return;
      case 'flush':
        this.audio?.flush();
        return;
    }
  }

  private sendPage(page: Uint8Array, granule: number): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN || !this.handshake) return;
    const frame = encodeAudio(page);
    socket.send(frame);
    this.bytes.sent += frame.length;
    if (granule >= 0) this.sent.push({ granule, at: performance.now() });
    if (this.sent.length > 4000) this.sent.splice(0, 2000);
  }

  /**
   * Engines that answer in lockstep (Moshi, the loopback) send reply position
   * p while hearing position p; the time since we sent p is the reply lag.
   */
  private trackReplyLag(page: Uint8Array): void {
    if (isBosPage(page)) this.receivedBos = true;
    const granule = pageGranule(page);
    if (!this.receivedBos || granule <= 0) return;
    const i = this.sent.findIndex((s) => s.granule >= granule);
    if (i < 0) return;
    const lag = performance.now() - this.sent[i].at;
    this.replyLag = this.replyLag === undefined ? lag : this.replyLag * 0.9 + lag * 0.1;
  }

  private onPlayout(stats: PlayoutStats, meanDelay: number): void {
    this.lastPlayout = stats;
    const rate = this.audio?.context.sampleRate ?? 24_000;
    const ms = (samples: number) => (samples * 1000) / rate;
    const now = performance.now();
    const elapsed = (now - this.bytes.since) / 1000;
    if (elapsed >= 1) {
      this.bytes = { sent: 0, received: 0, since: now, sentKbps: (this.bytes.sent * 8) / 1000 / elapsed, receivedKbps: (this.bytes.received * 8) / 1000 / elapsed };
    }
    const outputLatencyMs = (this.audio?.outputLatency ?? 0) * 1000;
    const playoutDelayMs = ms(meanDelay);
    this.update({
      stats: {
        replyLagMs: this.replyLag,
        latencyMs: this.replyLag === undefined ? undefined : this.replyLag + CAPTURE_LATENCY_MS + playoutDelayMs + outputLatencyMs,
        bufferMs: ms(stats.depth),
        targetMs: ms(stats.target),
        playoutDelayMs,
        outputLatencyMs,
        missedMs: ms(stats.missed),
        playedMs: ms(stats.played),
        underruns: stats.underruns,
        sentKbps: this.bytes.sentKbps,
        receivedKbps: this.bytes.receivedKbps,
      },
    });
  }
}
