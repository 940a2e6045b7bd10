/**
 * The websocket lives here, off the main thread: a long task there (React,
 * layout, the level meters, garbage collection) can no longer hold back the
 * server's audio or ours. Server pages are decoded in this worker and the
 * PCM goes straight to the playout worklet; the encoder worker's pages come
 * in through their own port.
 */
import type { EncodedPage, PlayoutCommand } from '../audio/messages.js';
import { OggOpusStreamDecoder } from '../audio/ogg-opus-stream-decoder.js';
import { createDecoderFactory } from '../audio/opus-codecs.js';
import { ConnectionCore, type StreamDecoder } from './connection-core.js';
import type { ConnectionCommand, ConnectionReport } from './messages.js';

const STATS_INTERVAL_MS = 1000;

const report = (message: ConnectionReport) => postMessage(message);
const fail = (message: string) => report({ type: 'error', message });

let playout: MessagePort | undefined;
let encoder: MessagePort | undefined;
let socket: WebSocket | undefined;

/** Server audio that arrives while the codec is still loading is decoded once it is ready. */
class PendingStreamDecoder implements StreamDecoder {
  private stream: OggOpusStreamDecoder | undefined;
  private pending: Uint8Array[] = [];

  load(forceWasm: boolean): void {
    createDecoderFactory(fail, forceWasm).then(
      ({ backend, create }) => {
        // The stream decoder emits whole arrays of their own, so each can be transferred without a copy.
        this.stream = new OggOpusStreamDecoder(create, (pcm) => toPlayout({ type: 'audio', pcm }));
        for (const bytes of this.pending) this.stream.push(bytes);
        this.pending = [];
        report({ type: 'ready', backend });
      },
      (err: Error) => fail(`No Opus decoder could be loaded: ${err.message}`),
    );
  }

  push(bytes: Uint8Array): void {
    if (this.stream) this.stream.push(bytes);
    else this.pending.push(bytes);
  }

  reset(): void {
    this.stream?.reset();
    this.pending = [];
  }
}

function toPlayout(command: PlayoutCommand): void {
  if (command.type === 'audio') playout?.postMessage(command, [command.pcm.buffer]);
  else playout?.postMessage(command);
}

const decoder = new PendingStreamDecoder();
const core = new ConnectionCore(
  {
    send: (frame) => {
      if (socket?.readyState !== WebSocket.OPEN) return false;
      socket.send(frame);
      return true;
    },
    report,
    playout: toPlayout,
    encoder: (control) => encoder?.postMessage(control),
    now: () => performance.now(),
  },
  decoder,
);

function open(url: string, protocols: string[] = []): void {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = 'arraybuffer';
  socket = ws;
  let opened = false;
  const stats = setInterval(() => core.reportStats(), STATS_INTERVAL_MS);
  ws.onopen = () => (opened = true);
  ws.onmessage = (e: MessageEvent<unknown>) => {
    if (e.data instanceof ArrayBuffer) core.onMessage(new Uint8Array(e.data)); // the protocol is binary only
  };
  ws.onclose = (e) => {
    clearInterval(stats);
    core.end();
    socket = undefined;
    report({ type: 'closed', code: e.code, reason: e.reason, opened });
  };
}

onmessage = (e: MessageEvent<ConnectionCommand>) => {
  const command = e.data;
  switch (command.type) {
    case 'init':
      playout = command.playout;
      encoder = command.encoder;
      encoder.onmessage = (m: MessageEvent<EncodedPage>) => core.onPage(m.data.page, m.data.granule);
      decoder.load(command.forceWasm);
      return;
    case 'open':
      open(command.url, command.protocols);
      return;
    case 'close':
      socket?.close(command.code, command.reason);
  }
};
