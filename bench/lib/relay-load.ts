/**
 * Load generator for the relay benchmark, run in its own process so the
 * gateway's CPU and memory can be read alone. Each session streams one Ogg
 * page per 80 ms frame (12.5 frames/s) to a loopback worker, which answers
 * with one page per frame; the time from sending the page that completes
 * frame k to receiving reply page k is that frame's round trip.
 *
 * Usage: node --import tsx bench/lib/relay-load.ts '<json {urls, sessions, seconds}>'
 * Prints one JSON line with the round-trip samples' percentiles.
 */
import * as opus from '@evan/opus';
import WebSocket from 'ws';
import { floatToInt16 } from '../../src/audio/pcm.js';
import { encodeAudio } from '../../src/protocol/frames.js';
import { OggOpusMuxer } from '../../src/protocol/ogg.js';

export interface LoadSpec {
  /** One URL per session (direct to workers), or a single gateway URL shared by all. */
  urls: string[];
  sessions: number;
  seconds: number;
  /** Seconds at the start whose samples are dropped (connection set-up, JIT). */
  warmupSeconds: number;
}

export interface LoadResult {
  sessions: number;
  connected: number;
  frames: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: string[];
}

const FRAME_MS = 80;

/** A pre-encoded stream: header pages, then one page per 80 ms frame. Pre-skip 0 keeps frames aligned to pages. */
function preEncode(frames: number): { headers: Uint8Array[]; pages: Uint8Array[] } {
  const encoder = new opus.Encoder({ channels: 1, sample_rate: 24_000, application: 'audio' });
  const muxer = new OggOpusMuxer({ serial: 1, preSkip: 0, packetsPerPage: 4 });
  const headers = muxer.headerPages().map(encodeAudio);
  const pages: Uint8Array[] = [];
  for (let f = 0; f < frames; f++) {
    for (let p = 0; p < 4; p++) {
      const pcm = new Float32Array(480).map((_, i) => 0.2 * Math.sin(((f * 4 + p) * 480 + i) / 9));
      for (const page of muxer.writePacket(encoder.encode(floatToInt16(pcm)), 960)) pages.push(encodeAudio(page));
    }
  }
  return { headers, pages };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const totalFrames = Math.ceil((spec.seconds * 1000) / FRAME_MS) + 10;
  const stream = preEncode(totalFrames);
  const samples: number[] = [];
  const errors: string[] = [];
  let connected = 0;
  const benchStart = performance.now();
  const warmupEnd = benchStart + spec.warmupSeconds * 1000;

  const sessions = Array.from({ length: spec.sessions }, (_, i) => {
    const url = spec.urls[i % spec.urls.length];
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const sentAt: number[] = [];
    let replies = -2; // the worker's two header pages come first
    let next = 0;
    let live = false;
    // Stagger sessions across one frame so sends do not arrive in lockstep bursts.
    const offset = (i / spec.sessions) * FRAME_MS;
    let start = 0;
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      if (data[0] === 0 && !live) {
        live = true;
        connected++;
        start = now + offset;
        for (const h of stream.headers) ws.send(h);
      } else if (data[0] === 1) {
        const k = replies++;
        if (k >= 0 && k < sentAt.length && sentAt[k] > warmupEnd) samples.push(now - sentAt[k]);
      }
    });
    ws.on('error', (err) => errors.length < 20 && errors.push(err.message));
    return {
      ws,
      tick(now: number) {
        if (!live || ws.readyState !== ws.OPEN) return;
        while (next < stream.pages.length && start + next * FRAME_MS <= now) {
          ws.send(stream.pages[next]);
          sentAt[next++] = performance.now();
        }
      },
    };
  });

  const end = benchStart + (spec.warmupSeconds + spec.seconds) * 1000;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      for (const s of sessions) s.tick(now);
      if (now > end) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  for (const s of sessions) s.ws.close(1000);
  await new Promise((r) => setTimeout(r, 500));
  samples.sort((a, b) => a - b);
  return {
    sessions: spec.sessions,
    connected,
    frames: samples.length,
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    max: samples.at(-1) ?? NaN,
    errors,
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const spec = JSON.parse(process.argv[2]) as LoadSpec;
  runLoad(spec).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err) => {
      process.stderr.write(String(err) + '\n');
      process.exit(1);
    },
  );
}
