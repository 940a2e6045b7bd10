/**
 * What the connection worker does with each websocket message and each
 * encoded page, free of Worker and WebSocket APIs so that Node tests can
 * drive it. Audio stays on this side: pages are decoded here and the PCM
 * goes straight to the playout worklet, flushes too; the main thread only
 * hears about the handshake, the frames it shows and a stats line a second.
 */
import { decodeFrame, encodeAudio, isTypedEvent } from '../../../src/protocol/index.js';
import type { EncoderControl, PlayoutCommand } from '../audio/messages.js';
import type { ConnectionReport } from './messages.js';
import { ReplyLag } from './reply-lag.js';

/** Where the core's output goes; the worker wires these to the socket and the ports. */
export interface ConnectionIo {
  /** Sends a frame to the server; false when the socket cannot take it. */
  send(frame: Uint8Array): boolean;
  report(report: ConnectionReport): void;
  playout(command: PlayoutCommand): void;
  encoder(control: EncoderControl): void;
  /** Milliseconds on a monotonic clock. */
  now(): number;
}

/** The server's Ogg stream in; `reset` forgets the current stream until the next BOS page. */
export interface StreamDecoder {
  push(bytes: Uint8Array): void;
  reset(): void;
}

export class ConnectionCore {
  private handshake = false;
  private readonly replyLag = new ReplyLag();
  private sentBytes = 0;
  private receivedBytes = 0;
  private since: number;

  constructor(
    private readonly io: ConnectionIo,
    private readonly decoder: StreamDecoder,
  ) {
    this.since = io.now();
  }

  /** A binary websocket message. */
  onMessage(bytes: Uint8Array): void {
    this.receivedBytes += bytes.length;
    const decoded = decodeFrame(bytes);
    if (!decoded.ok) return; // a malformed frame is the server's bug; the stream goes on
    const frame = decoded.frame;
    switch (frame.kind) {
      case 'handshake':
        if (this.handshake) return;
        this.handshake = true;
        // A new conversation: fresh streams both ways, and a playout buffer that forgets the last one.
        this.decoder.reset();
        this.io.playout({ type: 'reset' });
        this.io.encoder({ type: 'start' });
        this.io.report({ type: 'handshake' });
        return;
      case 'audio':
        if (!this.handshake) return;
        this.replyLag.onReceived(frame.data, this.io.now());
        this.decoder.push(frame.data);
        return;
      case 'metadata':
        // Barge-in: drop the queued reply now, not after a trip through the main thread.
        if (isTypedEvent(frame.data) && frame.data.type === 'flush') this.io.playout({ type: 'flush' });
        this.io.report({ type: 'frame', frame });
        return;
      case 'text':
      case 'error':
        this.io.report({ type: 'frame', frame });
        return;
      default:
      // control, ping and kinds newer than this client carry nothing to show
    }
  }

  /** An Ogg page of the microphone from the encoder; `granule` is its end in 48 kHz samples. */
  onPage(page: Uint8Array, granule: number): void {
    // The server expects our stream to begin after its handshake, header pages first.
    if (!this.handshake) return;
    const frame = encodeAudio(page);
    if (!this.io.send(frame)) return;
    this.sentBytes += frame.length;
    this.replyLag.onSent(granule, this.io.now());
  }

  /** Reports bitrates since the last call, and the reply lag. */
  reportStats(): void {
    const now = this.io.now();
    const seconds = (now - this.since) / 1000;
    if (seconds <= 0) return;
    const kbps = (bytes: number) => (bytes * 8) / 1000 / seconds;
    this.io.report({ type: 'stats', sentKbps: kbps(this.sentBytes), receivedKbps: kbps(this.receivedBytes), replyLagMs: this.replyLag.value });
    this.sentBytes = 0;
    this.receivedBytes = 0;
    this.since = now;
  }

  /** The conversation is over: the encoder stops until a new one begins. */
  end(): void {
    if (this.handshake) this.io.encoder({ type: 'stop' });
    this.handshake = false;
  }
}
