/** A raw Moshi-protocol client for tests: records every frame and the close. */
import WebSocket from 'ws';
import { OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { decodeFrame, encodeAudio, type Frame } from '../../src/protocol/frames.js';

export interface RecordingClient {
  ws: WebSocket;
  frames: Frame[];
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves with the first frame (already received or future) matching `predicate`. */
  waitFor(predicate: (f: Frame) => boolean, timeoutMs?: number, what?: string): Promise<Frame>;
  events(): Record<string, unknown>[];
  errors(): string[];
}

export function connectClient(url: string, options: WebSocket.ClientOptions = {}): RecordingClient {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    const r = decodeFrame(new Uint8Array(data));
    frames.push(r.ok ? r.frame : { kind: 'error', message: `undecodable: ${r.error}` });
    for (const w of waiters) w();
  });
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return {
    ws,
    frames,
    closed,
    waitFor(predicate, timeoutMs = 15_000, what = 'frame') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.find(predicate);
          if (found) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(frames.map((f) => (f.kind === 'audio' ? 'audio' : f)).slice(-8))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
        void closed.then(() => setTimeout(check, 0));
      });
    },
    events: () => frames.flatMap((f) => (f.kind === 'metadata' ? [f.data as Record<string, unknown>] : [])),
    errors: () => frames.flatMap((f) => (f.kind === 'error' ? [f.message] : [])),
  };
}

export const isHandshake = (f: Frame) => f.kind === 'handshake';
export const isAudio = (f: Frame) => f.kind === 'audio';
export const isError = (f: Frame) => f.kind === 'error';
export const isEvent = (type: string) => (f: Frame) => f.kind === 'metadata' && (f.data as { type?: string })?.type === type;

/** Streams a quiet tone in real time, as a microphone would, until the returned function is called. */
export function streamTone(client: RecordingClient): () => void {
  const encoder = new OggOpusEncoder();
  const frame = new Float32Array(480).map((_, i) => 0.1 * Math.sin(i / 6));
  const timer = setInterval(() => {
    if (client.ws.readyState !== client.ws.OPEN) return;
    for (const page of encoder.encode(frame)) client.ws.send(encodeAudio(page));
  }, 20);
  return () => clearInterval(timer);
}
