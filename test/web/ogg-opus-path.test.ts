/**
 * The browser's Ogg side, run in Node: encoder packets muxed into pages the
 * way the encoder worker does it, and the connection worker's demux logic, with
 * libopus (@evan/opus) standing in for WebCodecs.
 */
import * as opus from '@evan/opus';
import { describe, expect, it } from 'vitest';
import { OggOpusDecoder } from '../../src/audio/opus-stream.js';
import { floatToInt16 } from '../../src/audio/pcm.js';
import { isBosPage, pageGranule } from '../../src/protocol/index.js';
import { OggOpusStreamDecoder } from '../../web/src/audio/ogg-opus-stream-decoder.js';
import { OPUS_PRE_SKIP_48K, OggPageWriter } from '../../web/src/audio/ogg-page-writer.js';
import { bestLag } from '../helpers/signal.js';
import { libopus } from './libopus.js';

const RATE = 24_000;
const FRAME = 480;

function tone(seconds: number, hz = 330): Float32Array {
  const out = new Float32Array(Math.round(seconds * RATE));
  for (let i = 0; i < out.length; i++) out[i] = 0.4 * Math.sin((2 * Math.PI * hz * i) / RATE) * Math.sin((Math.PI * i) / out.length);
  return out;
}

function encodePages(pcm: Float32Array): Uint8Array[] {
  const encoder = new opus.Encoder({ channels: 1, sample_rate: RATE, application: 'audio' });
  const writer = new OggPageWriter('test');
  const pages: Uint8Array[] = [];
  for (let at = 0; at + FRAME <= pcm.length; at += FRAME) pages.push(...writer.write(encoder.encode(floatToInt16(pcm.subarray(at, at + FRAME)))));
  return pages;
}


function decodeAll(chunks: Uint8Array[], decoder?: OggOpusStreamDecoder): { pcm: Float32Array; decoder: OggOpusStreamDecoder } {
  const parts: Float32Array[] = [];
  const d = decoder ?? new OggOpusStreamDecoder(libopus, (pcm) => parts.push(pcm.slice()));
  for (const c of chunks) d.push(c);
  const pcm = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (pcm.set(p, at), (at += p.length));
  return { pcm, decoder: d };
}

describe('OggPageWriter', () => {
  it('emits the two header pages first, then one page per packet with running granules', () => {
    const pages = encodePages(tone(0.2));
    expect(isBosPage(pages[0])).toBe(true);
    expect(pages.filter(isBosPage)).toHaveLength(1);
    expect(pages).toHaveLength(2 + 10);
    // 20 ms per packet is 960 samples at 48 kHz.
    expect(pages.slice(2).map(pageGranule)).toEqual(Array.from({ length: 10 }, (_, i) => 960 * (i + 1)));
  });

  it('produces a stream the project’s Node decoder reads back, pre-skip applied', () => {
    const input = tone(1);
    const pages = encodePages(input);
    const decoder = new OggOpusDecoder();
    const out = pages.flatMap((p) => decoder.decode(p));
    const total = out.reduce((n, p) => n + p.length, 0);
    expect(total).toBe(input.length - OPUS_PRE_SKIP_48K / 2);
  });
});

describe('OggOpusStreamDecoder', () => {
  it('decodes pages in any chunking, aligned with the input once pre-skip is dropped', () => {
    const input = tone(1);
    const pages = encodePages(input);
    const bytes = new Uint8Array(pages.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of pages) (bytes.set(p, at), (at += p.length));
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 77) chunks.push(bytes.subarray(i, i + 77));
    const { pcm } = decodeAll(chunks);
    expect(pcm.length).toBe(input.length - OPUS_PRE_SKIP_48K / 2);
    const { lag, correlation } = bestLag(input, pcm, -40, 40);
    expect(Math.abs(lag)).toBeLessThanOrEqual(2);
    expect(correlation).toBeGreaterThan(0.95);
  });

  it('ignores stale pages until a BOS page, as after a reconnect', () => {
    const old = encodePages(tone(0.4, 200)).slice(5);
    const fresh = encodePages(tone(0.4));
    const { pcm, decoder } = decodeAll([...old, ...fresh]);
    expect(decoder.streams).toBe(1);
    expect(pcm.length).toBe(0.4 * RATE - OPUS_PRE_SKIP_48K / 2);
  });

  it('starts a fresh decoder, with its own pre-skip, for each new stream', () => {
    const parts: Float32Array[] = [];
    const decoder = new OggOpusStreamDecoder(libopus, (pcm) => parts.push(pcm));
    for (const p of encodePages(tone(0.2))) decoder.push(p);
    for (const p of encodePages(tone(0.2))) decoder.push(p);
    expect(decoder.streams).toBe(2);
    expect(parts.reduce((n, p) => n + p.length, 0)).toBe(2 * (0.2 * RATE - OPUS_PRE_SKIP_48K / 2));
  });

  it('after reset() waits for the next BOS page', () => {
    const parts: Float32Array[] = [];
    const decoder = new OggOpusStreamDecoder(libopus, (pcm) => parts.push(pcm));
    const pages = encodePages(tone(0.4));
    for (const p of pages.slice(0, 8)) decoder.push(p);
    const before = parts.length;
    decoder.reset();
    for (const p of pages.slice(8)) decoder.push(p);
    expect(parts.length).toBe(before);
  });
});
