/**
 * Load generator for the relay benchmark, in a process of its own so that it
 * can be pinned beside the workers, away from the relay under test. Each
 * conversation sends one Ogg page per 80 ms frame (12.5 frames/s) and gets
 * one back per frame; a frame's round trip runs from sending page k to
 * receiving reply page k.
 *
 * The relay's CPU time is read here, at the instants the measured window
 * opens and closes, and the frames relayed are counted between the same two
 * instants: CPU per frame then needs no clock shared between processes.
 *
 * Usage: node --import tsx bench/relay-clients.ts '<ClientsSpec as JSON>'; prints one ClientsResult as JSON.
 */
import { loadavg } from 'node:os';
import * as opus from '@evan/opus';
import WebSocket from 'ws';
import { floatToInt16 } from '../src/audio/pcm.js';
import { encodeAudio, Kind } from '../src/protocol/frames.js';
import { OggOpusMuxer } from '../src/protocol/ogg.js';
import { coreBusy, coreTimes, processCpuTimes, processRssBytes, threadTimes, type ThreadTimes } from './relay-procfs.js';

export interface ClientsSpec {
  /** One URL per conversation (straight to workers), or one relay URL for all. */
  urls: string[];
  sessions: number;
  seconds: number;
  /** Dropped from every figure: connecting, JIT, the relay's first allocations. */
  warmupSeconds: number;
  /** The relay's pid, whose CPU time and memory are read; none when going straight to the workers. */
  relayPid?: number;
}

export interface ClientsResult {
  sessions: number;
  connected: number;
  /** Round trips sampled in the window. */
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Frames through the relay in the window, both directions: pages sent plus pages received. */
  relayed: number;
  windowSeconds: number;
  /** CPU seconds the relay used in the window, user plus kernel; NaN without relayPid. */
  relayCpuSeconds: number;
  /** The kernel's part of relayCpuSeconds: socket reads and writes, loopback TCP. */
  relaySystemSeconds: number;
  /** The relay's threads over the window (differences), from schedstat; NaN without relayPid. */
  relayThreads: ThreadTimes;
  /** Highest RSS of the relay seen during the run. */
  relayPeakRssBytes: number;
  /** Busy fraction of every core in the window, whoever used it. */
  coreBusy: number[];
  loadAverage: number;
  errors: string[];
}

export const FRAME_MS = 80;

/** Header pages, then one page per 80 ms frame; pre-skip 0 keeps frame k on page k. */
function preEncode(frames: number): { headers: Uint8Array[]; pages: Uint8Array[] } {
  const encoder = new opus.Encoder({ channels: 1, sample_rate: 24_000, application: 'audio' });
  const muxer = new OggOpusMuxer({ serial: 1, preSkip: 0, packetsPerPage: 4 });
  const headers = muxer.headerPages().map(encodeAudio);
  const pages: Uint8Array[] = [];
  for (let f = 0; f < frames * 4; f++) {
    const pcm = new Float32Array(480).map((_, i) => 0.2 * Math.sin((f * 480 + i) / 9));
    for (const page of muxer.writePacket(encoder.encode(floatToInt16(pcm)), 960)) pages.push(encodeAudio(page));
  }
  return { headers, pages };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

export async function runClients(spec: ClientsSpec): Promise<ClientsResult> {
  const stream = preEncode(Math.ceil(((spec.warmupSeconds + spec.seconds) * 1000) / FRAME_MS) + 10);
  const samples: number[] = [];
  const errors: string[] = [];
  let connected = 0;
  let counting = false;
  let relayed = 0;
  const t0 = performance.now();
  const windowStart = t0 + spec.warmupSeconds * 1000;
  const windowEnd = windowStart + spec.seconds * 1000;
  const pid = spec.relayPid;
  let peakRss = pid ? processRssBytes(pid) : NaN;
  const rssTimer = pid ? setInterval(() => (peakRss = Math.max(peakRss, processRssBytes(pid))), 500) : undefined;

  const sessions = Array.from({ length: spec.sessions }, (_, i) => {
    const ws = new WebSocket(spec.urls[i % spec.urls.length], { perMessageDeflate: false });
    const sentAt: number[] = [];
    let replies = -stream.headers.length; // echo workers return the header pages first
    let next = 0;
    let start = NaN;
    let settled: (() => void) | undefined;
    // Spread conversations across a frame: real callers do not send in lockstep.
    const offset = (i / spec.sessions) * FRAME_MS;
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      if (data[0] === Kind.Handshake && Number.isNaN(start)) {
        connected++;
        start = now + offset;
        for (const h of stream.headers) ws.send(h);
      } else if (data[0] === Kind.Audio) {
        if (counting) relayed++;
        const k = replies++;
        if (k >= 0 && k < next && sentAt[k] >= windowStart && sentAt[k] < windowEnd) samples.push(now - sentAt[k]);
        if (k === next - 1) settled?.();
      }
    });
    ws.on('error', (err) => errors.length < 20 && errors.push(err.message));
    ws.on('close', (code, reason) => {
      if (performance.now() < windowEnd && errors.length < 20) errors.push(`closed early: ${code} ${reason.toString()}`);
    });
    return {
      ws,
      /** Resolves once every page sent has come back, so the slowest round trips of the window are not cut off. */
      drained: () => new Promise<void>((r) => (replies >= next || ws.readyState !== WebSocket.OPEN ? r() : (settled = r))),
      tick(now: number) {
        if (Number.isNaN(start) || ws.readyState !== WebSocket.OPEN) return;
        while (next < stream.pages.length && start + next * FRAME_MS <= now) {
          ws.send(stream.pages[next]);
          sentAt[next++] = performance.now();
          if (counting) relayed++;
        }
      },
    };
  });

  const none = { user: NaN, system: NaN };
  let cpu0 = none;
  let cores0 = coreTimes();
  let opened = NaN;
  const noThreads = { mainRunNs: NaN, mainWaitNs: NaN, helpersRunNs: NaN };
  let threads0 = noThreads;
  const result = await new Promise<Omit<ClientsResult, 'p50' | 'p90' | 'p99' | 'max' | 'samples' | 'connected' | 'errors'>>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      if (!counting && Number.isNaN(opened) && now >= windowStart) {
        cores0 = coreTimes();
        cpu0 = pid ? processCpuTimes(pid) : none;
        threads0 = pid ? threadTimes(pid) : noThreads;
        opened = performance.now();
        counting = true;
      }
      for (const s of sessions) s.tick(now);
      if (now >= windowEnd) {
        counting = false;
        const cpu1 = pid ? processCpuTimes(pid) : none;
        const threads1 = pid ? threadTimes(pid) : noThreads;
        const closed = performance.now();
        clearInterval(timer);
        resolve({
          sessions: spec.sessions,
          relayed,
          windowSeconds: (closed - opened) / 1000,
          relayCpuSeconds: cpu1.user + cpu1.system - cpu0.user - cpu0.system,
          relaySystemSeconds: cpu1.system - cpu0.system,
          relayThreads: {
            mainRunNs: threads1.mainRunNs - threads0.mainRunNs,
            mainWaitNs: threads1.mainWaitNs - threads0.mainWaitNs,
            helpersRunNs: threads1.helpersRunNs - threads0.helpersRunNs,
          },
          relayPeakRssBytes: 0,
          coreBusy: coreBusy(cores0, coreTimes()),
          loadAverage: loadavg()[0],
        });
      }
    }, 2);
  });
  clearInterval(rssTimer);
  await Promise.race([Promise.all(sessions.map((s) => s.drained())), new Promise((r) => setTimeout(r, 2000))]);
  for (const s of sessions) s.ws.close(1000);
  // Let the closes reach the relay and the workers, so the next run finds them free.
  await Promise.all(
    sessions.map(
      (s) =>
        new Promise<void>((r) => {
          if (s.ws.readyState === WebSocket.CLOSED) return r();
          const t = setTimeout(() => (s.ws.terminate(), r()), 3000);
          s.ws.once('close', () => (clearTimeout(t), r()));
        }),
    ),
  );
  samples.sort((a, b) => a - b);
  return {
    ...result,
    relayPeakRssBytes: peakRss,
    connected,
    samples: samples.length,
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    max: samples.at(-1) ?? NaN,
    errors,
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  runClients(JSON.parse(process.argv[2]) as ClientsSpec).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err) => {
      process.stderr.write(String(err) + '\n');
      process.exit(1);
    },
  );
}
