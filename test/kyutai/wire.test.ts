/**
 * What Kyutai's real Python server does on the wire, checked against the
 * running server (moshi 0.2.13, its sphn Ogg/Opus). Our gateway, client and
 * web app are written to these facts; when a Kyutai release changes one of
 * them, this file says which.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { encodeAudio } from '../../src/protocol/frames.js';
import { parsePageAt, type OggPage } from '../../src/protocol/ogg.js';
import { readWav } from '../../src/audio/wav.js';
import { decodeOpusHead } from '../../src/protocol/opus-packet.js';
import { eventually } from '../helpers/gateway.js';
import { newMarker } from '../helpers/processes.js';
import { tempDir } from '../helpers/speech.js';
import { expectNoneLeft, requireTinyMoshi, startRealMoshi, type RealMoshi } from './real-moshi.js';

const run = promisify(execFile);
const marker = newMarker();
let server: RealMoshi;

beforeAll(async () => {
  server = await startRealMoshi(requireTinyMoshi(), marker);
}, 200_000);

afterAll(async () => {
  await server?.stop();
  await expectNoneLeft(marker);
});

interface Received {
  at: number;
  kind: number;
  pages: OggPage[];
  /** The payload after the kind byte, exactly as sent. */
  payload: Uint8Array;
  text?: string;
}

/** A raw client: records every message with its pages; streams a quiet tone as 20 ms Opus, two frames a page (Kyutai's client). */
function rawSession(url: string, options: { send?: boolean; query?: string } = {}) {
  const ws = new WebSocket(url + (options.query ?? ''), { perMessageDeflate: false });
  const opened = performance.now();
  const received: Received[] = [];
  let closed: { code: number; at: number } | undefined;
  ws.on('message', (data: Buffer) => {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const kind = bytes[0];
    const pages: OggPage[] = [];
    if (kind === 1) {
      for (let at = 1; at < bytes.length; ) {
        const r = parsePageAt(bytes, at);
        if (!('page' in r)) throw new Error(`unparseable page from the server: ${JSON.stringify(r)}`);
        pages.push(r.page);
        at += r.size;
      }
    }
    received.push({ at: performance.now() - opened, kind, pages, payload: Uint8Array.from(bytes.subarray(1)), text: kind === 2 ? Buffer.from(bytes.subarray(1)).toString('utf8') : undefined });
  });
  ws.on('close', (code) => (closed = { code, at: performance.now() - opened }));
  const encoder = new OggOpusEncoder({ frameMs: 20, packetsPerPage: 2 });
  let timer: NodeJS.Timeout | undefined;
  const startSending = () => {
    for (const page of encoder.headers()) ws.send(encodeAudio(page));
    const tone = new Float32Array(960).map((_, i) => 0.05 * Math.sin((2 * Math.PI * 220 * i) / 24_000));
    timer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      for (const page of encoder.encode(tone)) ws.send(encodeAudio(page));
    }, 40);
  };
  if (options.send !== false) ws.once('open', startSending);
  return {
    ws,
    received,
    closed: () => closed,
    startSending,
    async close() {
      clearInterval(timer);
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'done');
      await eventually(() => closed, 10_000, 'the socket to close');
    },
  };
}

describe("Kyutai's moshi.server on the wire", () => {
  it('sends the one-byte handshake, then Ogg serial 42 with 40 ms packets, one per page, the first message holding four pages', async () => {
    const s = rawSession(server.url);
    await eventually(() => s.received.filter((m) => m.kind === 1).length >= 3, 60_000, 'three audio messages');
    await s.close();
    expect(s.received[0].kind).toBe(0);
    expect(s.received[0].pages).toEqual([]);
    const audio = s.received.filter((m) => m.kind === 1);
    expect(audio[0].pages).toHaveLength(4);
    const [head, tags, ...first] = audio[0].pages;
    expect(head.flags & 0x02).toBe(0x02); // beginning of stream
    expect(decodeOpusHead(head.body)).toMatchObject({ ok: true, head: { channels: 1, preSkip: 3840, inputSampleRate: 48_000 } });
    expect(Buffer.from(tags.body.subarray(0, 8)).toString('latin1')).toBe('OpusTags');
    expect(Buffer.from(tags.body).toString('latin1')).toContain('KyutaiMoshi');
    const pages = [...first, ...audio.slice(1).flatMap((m) => m.pages)];
    for (const page of [head, tags, ...pages]) expect(page.serial).toBe(42);
    for (const m of audio.slice(1)) expect(m.pages).toHaveLength(2);
    // One 40 ms packet per page; granules step by 1920, which is 40 ms at 48 kHz: RFC 7845's clock.
    for (const page of pages) expect(page.segments.length).toBe(1);
    const steps = pages.slice(1).map((p, i) => p.granule - pages[i].granule);
    expect(new Set(steps)).toEqual(new Set([1920]));
    expect(pages[0].granule).toBe(1920);
  });

  it('gives opusinfo and opusdec a stream whose granule clock matches the decoded length', async () => {
    const s = rawSession(server.url);
    await eventually(() => s.received.filter((m) => m.kind === 1).length >= 20, 60_000, 'twenty audio messages');
    await s.close();
    const dir = await tempDir('quillman-kyutai-');
    try {
      const ogg = join(dir.path, 'reply.ogg');
      await writeFile(ogg, Buffer.concat(s.received.filter((m) => m.kind === 1).map((m) => m.payload)));
      // opusinfo exits non-zero on the missing end-of-stream flag of a live stream; its report is what counts.
      const info = await run('opusinfo', [ogg]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
      const playback = info.stdout.match(/Playback length: (\d+)m:([\d.]+)s/);
      expect(playback).not.toBeNull();
      const seconds = Number(playback![1]) * 60 + Number(playback![2]);
      await run('opusdec', ['--rate', '24000', ogg, join(dir.path, 'reply.wav')]);
      const wav = await readWav(join(dir.path, 'reply.wav'), 24_000);
      const decoded = wav.samples.length / 24_000;
      // opusinfo's length comes from the last granule; opusdec's from the packets. They agree only on a 48 kHz clock.
      expect(Math.abs(decoded - seconds)).toBeLessThan(0.05);
    } finally {
      await dir.cleanup();
    }
  });

  it('upgrades a second caller at once but sends it nothing until the first conversation ends; its queued audio is then used', async () => {
    const first = rawSession(server.url);
    await eventually(() => first.received.some((m) => m.kind === 1), 60_000, 'the first caller to hear audio');
    const second = rawSession(server.url);
    await eventually(() => second.ws.readyState === WebSocket.OPEN, 10_000, 'the second upgrade');
    // While the first conversation goes on the second hears nothing at all.
    await eventually(() => first.received.filter((m) => m.kind === 1).length >= 25, 60_000, 'the first conversation to go on');
    expect(second.received).toEqual([]);
    await first.close();
    await eventually(() => second.received.some((m) => m.kind === 1), 60_000, 'the second caller to be served');
    expect(second.received[0].kind).toBe(0);
    await second.close();
  });

  it('survives a waiting caller that gives up before its turn (what our gateway does to a busy server)', async () => {
    const first = rawSession(server.url);
    await eventually(() => first.received.some((m) => m.kind === 1), 60_000, 'the first caller to hear audio');
    const quitter = rawSession(server.url, { send: false });
    await eventually(() => quitter.ws.readyState === WebSocket.OPEN, 10_000, 'the waiting upgrade');
    // A waiting handler does not read, so a close frame is never answered: the gateway cuts the connection.
    quitter.ws.close(1000, 'busy');
    await new Promise((r) => setTimeout(r, 2000));
    expect(quitter.closed()).toBeUndefined();
    quitter.ws.terminate();
    await first.close();
    const next = rawSession(server.url);
    await eventually(() => next.received.filter((m) => m.kind === 1).length >= 2, 60_000, 'the next caller to be served');
    expect(next.received[0].kind).toBe(0);
    await next.close();
    expect(server.child.exitCode).toBeNull();
  });

  it('ignores query parameters and unknown kinds', async () => {
    const s = rawSession(server.url, { query: '?text_temperature=5&nonsense=1' });
    s.ws.once('open', () => s.ws.send(Buffer.from([6])));
    s.ws.once('open', () => s.ws.send(Buffer.from([42, 1, 2, 3])));
    await eventually(() => s.received.filter((m) => m.kind === 1).length >= 2, 60_000, 'audio despite the odd input');
    await s.close();
  });

  it('drops the connection without a close frame (1006) when audio does not start with "OggS", and serves the next caller', async () => {
    const s = rawSession(server.url, { send: false });
    await eventually(() => s.received.some((m) => m.kind === 0), 60_000, 'the handshake');
    s.ws.send(Buffer.from([1, ...Buffer.from('this is not an ogg page at all, not even close')]));
    await eventually(() => s.closed(), 30_000, 'the server to drop the session');
    expect(s.closed()!.code).toBe(1006);
    const next = rawSession(server.url);
    await eventually(() => next.received.some((m) => m.kind === 1), 60_000, 'the next caller to be served');
    await next.close();
  });

  it('never ends a conversation by itself', async () => {
    const s = rawSession(server.url);
    await eventually(() => s.received.filter((m) => m.kind === 1).length >= 60, 90_000, 'about five seconds of conversation');
    expect(s.closed()).toBeUndefined();
    await s.close();
  });
});
