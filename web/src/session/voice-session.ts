/**
 * One conversation at a time: the audio engine (which owns the websocket, in
 * a worker) and what the UI shows, as an external store for React's
 * useSyncExternalStore.
 */
import { isTypedEvent } from '../../../src/protocol/index.js';
import { AudioEngine, type AudioEngineOptions } from '../audio/audio-engine.js';
import { SAMPLE_RATE } from '../audio/messages.js';
import type { ConversationRecorder } from '../audio/recorder.js';
import type { ConnectionStats, ShownFrame } from '../connection/messages.js';
import type { PlayoutStats } from '../playout/playout-buffer.js';
import { queryFor, type Settings } from '../settings/settings.js';
import { closeProblem, insecureOrigin, microphoneProblem, unreachable, type Problem } from './problems.js';
import { takePageCredential, withCredential } from './page-credential.js';
import { socketUrl } from './server-url.js';
import type { Phase, SessionSnapshot } from './session-types.js';
import { addPiece, upsertUtterance } from './transcript.js';

/** Capture framing (one 20 ms Opus frame) plus libopus' 6.5 ms look-ahead. */
const CAPTURE_LATENCY_MS = 26.5;

export class VoiceSession {
  private snapshot: SessionSnapshot = { phase: { name: 'idle' }, muted: false, transcript: [], codecs: {}, hasRecording: false };
  private readonly listeners = new Set<() => void>();
  private audio: AudioEngine | undefined;
  private recorder: ConversationRecorder | undefined;
  private handshake = false;
  private userClosed = false;
  private lastServerError: string | undefined;
  private sawTextPieces = false;
  private connection: ConnectionStats = { sentKbps: 0, receivedKbps: 0 };
  /** Every playout arrival of the session, when tracing. */
  readonly arrivals: [number, number][] = [];
  lastPlayout: PlayoutStats | undefined;

  /** A key or token this page was opened with (#token=…), for its own gateway. */
  private readonly credential = takePageCredential(location, sessionStorage, (url) => history.replaceState(history.state, '', url));

  constructor(private readonly options: AudioEngineOptions) {}

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
    if (this.audio || this.snapshot.phase.name === 'connecting') return;
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
    let audio: AudioEngine;
    try {
      audio = await AudioEngine.start(this.options, {
        handshake: () => this.onHandshake(),
        frame: (frame) => this.onFrame(frame),
        connection: (stats) => (this.connection = stats),
        closed: (code, reason, opened) => audio === this.audio && this.onClosed(url, code, reason, opened),
        playout: (report) => this.onPlayout(report.stats, report.meanDelay),
        arrivals: (list) => this.arrivals.push(...list),
        backend: (side, name) => this.update({ codecs: { ...this.snapshot.codecs, [side]: name } }),
        error: (message) => this.fail({ title: 'The audio stopped', action: 'Disconnect and connect again.', detail: message }),
      });
    } catch (err) {
      return this.setPhase({ name: 'error', problem: microphoneProblem(err) });
    }
    // Disconnected, or the audio failed, while the microphone was starting.
    if (this.userClosed) return void audio.close();
    audio.setMuted(this.snapshot.muted);
    this.audio = audio;
    this.recorder = audio.recorder;
    this.update({ hasRecording: true, phase: { name: 'connecting', step: 'server' } });
    // A credential given to this page is for its own gateway only, never for a server typed in Settings.
    const own = settings.serverAddress.trim() === '' || settings.serverAddress.trim().startsWith('/');
    const target = withCredential(url, own ? this.credential : undefined);
    audio.open(target.url, target.protocols);
  }

  disconnect(): void {
    this.userClosed = true;
    void this.teardown(1000, 'user disconnected');
    this.setPhase({ name: 'ended', reason: 'You ended the conversation.' });
  }

  setMuted(muted: boolean): void {
    this.audio?.setMuted(muted);
    this.update({ muted });
  }

  private resetConversationState(): void {
    this.handshake = false;
    this.userClosed = false;
    this.lastServerError = undefined;
    this.sawTextPieces = false;
    this.connection = { sentKbps: 0, receivedKbps: 0 };
    this.arrivals.length = 0;
    this.lastPlayout = undefined;
  }

  private onClosed(url: string, code: number, reason: string, opened: boolean): void {
    void this.teardown();
    if (this.userClosed) return;
    if (!opened) return this.setPhase({ name: 'error', problem: unreachable(url.split('?')[0]) });
    const problem = closeProblem(code, reason, this.lastServerError);
    if (problem) this.setPhase({ name: 'error', problem });
    else if (this.snapshot.phase.name !== 'ended') this.setPhase({ name: 'ended', reason: reason || 'The conversation ended.' });
  }

  /** Ends the conversation's audio; `code` and `reason` close the socket if it is still open. */
  private async teardown(code?: number, reason?: string): Promise<void> {
    const audio = this.audio;
    this.audio = undefined;
    await audio?.close(code, reason);
  }

  private fail(problem: Problem): void {
    this.userClosed = true;
    void this.teardown(1000, 'client error');
    this.setPhase({ name: 'error', problem });
  }

  private onHandshake(): void {
    this.handshake = true;
    this.setPhase({ name: 'live' });
  }

  private onFrame(frame: ShownFrame): void {
    switch (frame.kind) {
      case 'text':
        this.sawTextPieces = true;
        this.update({ transcript: addPiece(this.snapshot.transcript, frame.text) });
        return;
      case 'metadata':
        this.onMetadata(frame.data);
        return;
      case 'error':
        this.lastServerError = frame.message;
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
      case 'ending_soon':
        this.update({ phase: { name: 'ending-soon' }, endsAt: performance.now() + Number(event.secondsLeft) * 1000 });
        return;
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
      // 'flush' went straight from the connection worker to the playout worklet.
    }
  }

  private onPlayout(stats: PlayoutStats, meanDelay: number): void {
    this.lastPlayout = stats;
    const rate = this.audio?.context.sampleRate ?? SAMPLE_RATE;
    const ms = (samples: number) => (samples * 1000) / rate;
    const { replyLagMs, sentKbps, receivedKbps } = this.connection;
    const outputLatencyMs = (this.audio?.outputLatency ?? 0) * 1000;
    const playoutDelayMs = ms(meanDelay);
    this.update({
      stats: {
        replyLagMs,
        latencyMs: replyLagMs === undefined ? undefined : replyLagMs + CAPTURE_LATENCY_MS + playoutDelayMs + outputLatencyMs,
        bufferMs: ms(stats.depth),
        targetMs: ms(stats.target),
        playoutDelayMs,
        outputLatencyMs,
        missedMs: ms(stats.missed),
        playedMs: ms(stats.played),
        underruns: stats.underruns,
        sentKbps,
        receivedKbps,
      },
    });
  }
}
