/**
 * A terminal client for any Moshi-protocol server: ours or Kyutai's. Streams
 * PCM in real time as Ogg Opus, collects the reply's audio, text and events,
 * and times the handshake and the first reply audio. Tests, benchmarks and
 * anyone checking a deployment use it.
 */
import WebSocket from 'ws';
import { OggOpusDecoder, OggOpusEncoder, OPUS_RATE } from '../audio/opus-stream.js';
import { concatFloat, rms } from '../audio/pcm.js';
import { CloseCode } from '../protocol/close-codes.js';
import { decodeFrame, encodeAudio } from '../protocol/frames.js';
import { samplingToQuery, type SamplingParams } from '../protocol/sampling.js';

export interface ChatOptions {
  /** ws:// or wss:// URL of a /api/chat endpoint; query parameters in it are kept. */
  url: string;
  params?: SamplingParams;
  /** 24 kHz mono PCM: a whole clip (sent paced in real time) or a live stream (sent as it arrives). */
  input: Float32Array | AsyncIterable<Float32Array>;
  /** Silence streamed after the input ends, so the reply can finish. */
  lingerMs?: number;
  /** Send a clip as fast as possible instead of in real time. */
  fast?: boolean;
  /** Opus frame length of what we send. */
  frameMs?: 10 | 20 | 40;
  /** Gives up if no handshake comes; reset by each queue update, since waiting in line is not a failure. */
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
  onText?: (piece: string) => void;
  onEvent?: (event: unknown) => void;
  onError?: (message: string) => void;
  /** Each decoded chunk of reply audio, with the ms since streaming began. */
  onAudio?: (pcm: Float32Array, atMs: number) => void;
  /** Each kind-1 payload exactly as the server sent it (Ogg pages), e.g. to save the stream for opusdec. */
  onOggBytes?: (bytes: Uint8Array) => void;
}

export interface ChatResult {
  audio: Float32Array;
  text: string;
  events: unknown[];
  errors: string[];
  /** ms from opening the socket to the server's handshake. */
  timeToHandshakeMs?: number;
  /** ms from the first audio sent to the first reply audio received. */
  timeToFirstAudioMs?: number;
  /** ms from the first audio sent to the first reply audio that is not silence. */
  timeToFirstSoundMs?: number;
  closeCode?: number;
  closeReason?: string;
  pagesSent: number;
  pagesReceived: number;
}

const SILENCE_RMS = 0.003;

export async function runChat(options: ChatOptions): Promise<ChatResult> {
  const url = new URL(options.url);
  if (options.params) for (const [k, v] of samplingToQuery(options.params)) url.searchParams.set(k, v);
  const frameMs = options.frameMs ?? 20;
  const encoder = new OggOpusEncoder({ frameMs, packetsPerPage: 1 });
  const decoder = new OggOpusDecoder({ skipUntilBos: true });
  const received: Float32Array[] = [];
  const result: ChatResult = { audio: new Float32Array(0), text: '', events: [], errors: [], pagesSent: 0, pagesReceived: 0 };
  const openedAt = performance.now();
  let streamStart = 0;

  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.binaryType = 'nodebuffer';
  const closed = new Promise<void>((resolve) => {
    ws.on('close', (code, reason) => {
      result.closeCode = code;
      result.closeReason = reason.toString();
      resolve();
    });
    ws.on('error', (err) => {
      result.errors.push(err.message);
      options.onError?.(err.message);
      resolve();
    });
  });

  let handshakeTimer: NodeJS.Timeout | undefined;
  const handshake = new Promise<boolean>((resolve) => {
    const arm = () => {
      clearTimeout(handshakeTimer);
      handshakeTimer = setTimeout(() => {
        result.errors.push('no handshake from the server in time');
        resolve(false);
      }, options.handshakeTimeoutMs ?? 60_000);
    };
    arm();
    void closed.then(() => resolve(false));
    ws.on('message', (data: Buffer) => {
      const decoded = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (!decoded.ok) {
        result.errors.push(`malformed frame from server: ${decoded.error}`);
        return;
      }
      const frame = decoded.frame;
      switch (frame.kind) {
        case 'handshake':
          if (result.timeToHandshakeMs === undefined) result.timeToHandshakeMs = performance.now() - openedAt;
          clearTimeout(handshakeTimer);
          resolve(true);
          break;
        case 'audio': {
          result.pagesReceived++;
          options.onOggBytes?.(frame.data);
          let chunks: Float32Array[];
          try {
            chunks = decoder.decode(frame.data);
          } catch (err) {
            result.errors.push(`bad audio from server: ${(err as Error).message}`);
            return;
          }
          const at = performance.now() - streamStart;
          for (const pcm of chunks) {
            if (streamStart && result.timeToFirstAudioMs === undefined) result.timeToFirstAudioMs = at;
            if (streamStart && result.timeToFirstSoundMs === undefined && rms(pcm) > SILENCE_RMS) result.timeToFirstSoundMs = at;
            received.push(pcm);
            options.onAudio?.(pcm, at);
          }
          break;
        }
        case 'text':
          result.text += frame.text;
          options.onText?.(frame.text);
          break;
        case 'metadata':
          result.events.push(frame.data);
          options.onEvent?.(frame.data);
          if (typeof frame.data === 'object' && frame.data && (frame.data as { type?: string }).type === 'queue') arm();
          break;
        case 'error':
          result.errors.push(frame.message);
          options.onError?.(frame.message);
          break;
        default:
          break;
      }
    });
  });

  const abort = () => ws.close(CloseCode.Normal, 'client aborted');
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    if (await handshake) {
      streamStart = performance.now();
      await streamInput(ws, encoder, options, frameMs, () => result.pagesSent++);
      if (ws.readyState === ws.OPEN) ws.close(CloseCode.Normal, 'done');
    } else if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
      ws.close(CloseCode.Normal, 'no handshake');
    }
    const forced = setTimeout(() => ws.terminate(), 3000);
    await closed;
    clearTimeout(forced);
  } finally {
    clearTimeout(handshakeTimer);
    options.signal?.removeEventListener('abort', abort);
  }
  result.audio = concatFloat(received);
  return result;
}

async function streamInput(ws: WebSocket, encoder: OggOpusEncoder, options: ChatOptions, frameMs: number, sent: () => void): Promise<void> {
  const send = (pcm: Float32Array) => {
    for (const page of encoder.encode(pcm)) {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(encodeAudio(page));
      sent();
    }
  };
  const step = (OPUS_RATE * frameMs) / 1000;
  const linger = new Float32Array(Math.round(((options.lingerMs ?? 2000) / 1000) * OPUS_RATE));
  const open = () => ws.readyState === ws.OPEN && !options.signal?.aborted;
  if (options.input instanceof Float32Array) {
    await paced(concatFloat([options.input, linger]), step, frameMs, !!options.fast, send, open);
  } else {
    for await (const chunk of options.input) {
      if (!open()) return;
      send(chunk);
    }
    await paced(linger, step, frameMs, !!options.fast, send, open);
  }
  if (open()) for (const page of encoder.end()) ws.send(encodeAudio(page));
}

/** Sends `pcm` one Opus frame at a time on a wall-clock schedule, catching up after timer lateness. */
async function paced(pcm: Float32Array, step: number, frameMs: number, fast: boolean, send: (pcm: Float32Array) => void, open: () => boolean): Promise<void> {
  const start = performance.now();
  for (let at = 0, n = 0; at < pcm.length; at += step, n++) {
    if (!open()) return;
    if (!fast) {
      const due = start + n * frameMs - performance.now();
      if (due > 1) await new Promise((r) => setTimeout(r, due));
    } else if (n % 50 === 0) {
      await new Promise((r) => setImmediate(r));
    }
    send(pcm.subarray(at, Math.min(pcm.length, at + step)));
  }
}
