import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OggOpusDecoder, OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { concatFloat } from '../../src/audio/pcm.js';
import { decodeWav, readWav, writeWav } from '../../src/audio/wav.js';
import { oggCrc32 } from '../../src/protocol/ogg-crc.js';
import { encodePage, OggError, OggOpusDemuxer, OggOpusMuxer, PageFlag, parsePageAt, type DemuxEvent } from '../../src/protocol/ogg.js';
import { decodeOpusHead, encodeOpusHead, opusPacketDuration } from '../../src/protocol/opus-packet.js';
import { findDelay } from '../helpers/signal.js';
import { speak, tempDir } from '../helpers/speech.js';

const run = promisify(execFile);

/** A TOC byte for CELT fullband 20 ms, one frame (config 31, code 0). */
const TOC_20MS = 31 << 3;

function fakePacket(length: number, seed: number): Uint8Array {
  const p = new Uint8Array(length);
  p[0] = TOC_20MS;
  for (let i = 1; i < length; i++) p[i] = (seed * 31 + i * 7) & 0xff;
  return p;
}

function packetsOf(events: DemuxEvent[]): Uint8Array[] {
  return events.flatMap((e) => (e.type === 'packet' ? [e.data] : []));
}


describe('Ogg CRC', () => {
  it('matches the reference check value', () => {
    // CRC-32/POSIX (same polynomial and initial value, but with a final xor) gives 0x765E7680 for "123456789".
    expect(oggCrc32(new TextEncoder().encode('123456789'))).toBe(~0x765e7680 >>> 0);
  });
});

describe('Opus TOC', () => {
  it('reads durations for SILK, hybrid and CELT configurations and frame codes', () => {
    expect(opusPacketDuration(new Uint8Array([(1 << 3) | 0]))).toEqual({ ok: true, samples48k: 960 });
    expect(opusPacketDuration(new Uint8Array([(3 << 3) | 1, 0, 0]))).toEqual({ ok: true, samples48k: 5760 });
    expect(opusPacketDuration(new Uint8Array([(13 << 3) | 0]))).toEqual({ ok: true, samples48k: 960 });
    expect(opusPacketDuration(new Uint8Array([(16 << 3) | 3, 3]))).toEqual({ ok: true, samples48k: 360 });
  });
  it('rejects framings no encoder can produce', () => {
    expect(opusPacketDuration(new Uint8Array([(3 << 3) | 3, 3])).ok).toBe(false); // 3 × 60 ms > 120 ms
    expect(opusPacketDuration(new Uint8Array([(16 << 3) | 3, 0])).ok).toBe(false); // zero frames
    expect(opusPacketDuration(new Uint8Array([(16 << 3) | 1, 1, 2, 3])).ok).toBe(false); // odd code-1 payload
    expect(opusPacketDuration(new Uint8Array([(16 << 3) | 2, 200])).ok).toBe(false); // first frame past the end
  });
  it('round-trips OpusHead', () => {
    const r = decodeOpusHead(encodeOpusHead({ channels: 1, preSkip: 312, inputSampleRate: 24000, outputGain: -3 }));
    expect(r).toEqual({ ok: true, head: { channels: 1, preSkip: 312, inputSampleRate: 24000, outputGain: -3, mappingFamily: 0 } });
  });
});

describe('Ogg Opus muxer and demuxer', () => {
  const sizes = [1, 100, 254, 255, 256, 510, 511, 765, 1275, 4000, 255 * 255, 255 * 255 + 7, 70_000];

  it.each([1, 2, 3])('round-trips awkward packet sizes with %i packet(s) per page, fed in odd chunks', (perPage) => {
    const muxer = new OggOpusMuxer({ serial: 42, packetsPerPage: perPage });
    const packets = sizes.map((n, i) => fakePacket(n, i));
    const pages = [...muxer.headerPages(), ...packets.flatMap((p) => muxer.writePacket(p, 960)), ...muxer.end()];
    const stream = Buffer.concat(pages);
    const demuxer = new OggOpusDemuxer({ maxPacketBytes: 128 * 1024 });
    const events: DemuxEvent[] = [];
    for (let at = 0, step = 1; at < stream.length; at += step, step = (step * 7 + 3) % 997 + 1) {
      events.push(...demuxer.push(stream.subarray(at, Math.min(stream.length, at + step))));
    }
    expect(events[0]).toMatchObject({ type: 'head', serial: 42 });
    expect(events[1]).toEqual({ type: 'tags' });
    const back = packetsOf(events);
    expect(back.map((p) => p.length)).toEqual(sizes);
    back.forEach((p, i) => expect(Buffer.from(p).equals(Buffer.from(packets[i]))).toBe(true));
    expect(events.at(-1)).toEqual({ type: 'end' });
  });

  it('writes granule positions, sequence numbers, BOS/EOS and continuation flags as RFC 7845 requires', () => {
    const muxer = new OggOpusMuxer({ serial: 7, packetsPerPage: 2 });
    const pages = [
      ...muxer.headerPages(),
      ...muxer.writePacket(fakePacket(10, 1), 960),
      ...muxer.writePacket(fakePacket(10, 2), 960),
      ...muxer.writePacket(fakePacket(255 * 255 + 1, 3), 960), // spans two pages
      ...muxer.end(),
    ].map((bytes) => {
      const r = parsePageAt(bytes, 0);
      if (!('page' in r)) throw new Error('unparseable page');
      return r.page;
    });
    expect(pages.map((p) => p.sequence)).toEqual([0, 1, 2, 3, 4]);
    expect(pages[0].flags).toBe(PageFlag.BeginningOfStream);
    expect(pages[0].granule).toBe(0);
    expect(pages[2].granule).toBe(1920);
    expect(pages[3].granule).toBe(-1); // no packet ends on the first half of the big packet
    expect(pages[4].flags).toBe(PageFlag.Continued | PageFlag.EndOfStream);
    expect(pages[4].granule).toBe(2880);
  });

  function validStream(): Uint8Array[] {
    const muxer = new OggOpusMuxer({ serial: 1 });
    return [...muxer.headerPages(), ...muxer.writePacket(fakePacket(50, 1), 960), ...muxer.writePacket(fakePacket(60, 2), 960)];
  }

  it('rejects a page whose CRC does not match', () => {
    const pages = validStream();
    pages[2] = pages[2].slice();
    pages[2][40] ^= 0x55;
    const demuxer = new OggOpusDemuxer();
    demuxer.push(pages[0]);
    demuxer.push(pages[1]);
    expect(() => demuxer.push(pages[2])).toThrow(/CRC mismatch/);
  });

  it('rejects a stream that does not begin with a BOS page', () => {
    const pages = validStream();
    expect(() => new OggOpusDemuxer().push(pages[2])).toThrow(/must begin with a BOS page/);
  });

  it('skips stale pages until BOS when asked (receivers after a reconnect)', () => {
    const pages = validStream();
    const demuxer = new OggOpusDemuxer({ skipUntilBos: true });
    expect(demuxer.push(pages[2])).toEqual([]);
    expect(demuxer.skippedPages).toBe(1);
    const events = [...pages.flatMap((p) => demuxer.push(p))];
    expect(packetsOf(events)).toHaveLength(2);
  });

  it('restarts on a new BOS mid-stream, as when a client restarts its encoder', () => {
    const a = validStream();
    const b = new OggOpusMuxer({ serial: 2 });
    const demuxer = new OggOpusDemuxer();
    const events = [...a, ...b.headerPages(), ...b.writePacket(fakePacket(20, 3), 960)].flatMap((p) => demuxer.push(p));
    expect(events.filter((e) => e.type === 'head')).toHaveLength(2);
    expect(packetsOf(events)).toHaveLength(3);
  });

  it.each([
    ['bytes that are not Ogg', new TextEncoder().encode('this is certainly not an ogg stream at all'), /not an Ogg page/],
    ['an Ogg page without OpusHead', encodePage({ flags: PageFlag.BeginningOfStream, granule: 0, serial: 1, sequence: 0, segments: new Uint8Array([5]), body: new Uint8Array([1, 2, 3, 4, 5]) }), /not an OpusHead/],
  ])('rejects %s', (_name, bytes, reason) => {
    expect(() => new OggOpusDemuxer().push(bytes)).toThrow(reason);
  });

  it('rejects audio packets that are not Opus', () => {
    const muxer = new OggOpusMuxer({ serial: 1 });
    const pages = [...muxer.headerPages(), ...muxer.writePacket(new Uint8Array([(3 << 3) | 3, 0x3f]), 960)];
    const demuxer = new OggOpusDemuxer();
    expect(() => pages.forEach((p) => demuxer.push(p))).toThrow(OggError);
  });

  it('resynchronises past garbage when tolerant', () => {
    const pages = validStream();
    const demuxer = new OggOpusDemuxer({ tolerant: true });
    const events = [pages[0], pages[1], new Uint8Array([1, 2, 3, 0x4f, 9, 9]), pages[2], pages[3]].flatMap((p) => demuxer.push(p));
    expect(packetsOf(events)).toHaveLength(2);
  });

  it('when tolerant, plays on after a lost OpusTags page; strict, it refuses', () => {
    const [head, , ...audio] = validStream();
    const tolerant = new OggOpusDemuxer({ tolerant: true });
    const events = [head, ...audio].flatMap((p) => tolerant.push(p));
    expect(events.map((e) => e.type)).toEqual(['head', 'packet', 'packet']);
    expect(tolerant.skippedPages).toBe(1);
    const strict = new OggOpusDemuxer();
    strict.push(head);
    expect(() => strict.push(audio[0])).toThrow(/must be OpusTags/);
  });
});

describe('interoperability with Debian opus-tools', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let speech: Float32Array;

  beforeAll(async () => {
    dir = await tempDir();
    speech = await speak('The quick brown fox jumps over the lazy dog.');
  });
  afterAll(() => dir.cleanup());

  it('demuxes and decodes a file made by opusenc', async () => {
    const wavPath = join(dir.path, 'in.wav');
    const opusPath = join(dir.path, 'opusenc.opus');
    await writeWav(wavPath, speech, 24_000);
    await run('opusenc', ['--quiet', '--framesize', '20', wavPath, opusPath]);
    const bytes = new Uint8Array(await readFile(opusPath));
    const decoder = new OggOpusDecoder();
    const chunks: Float32Array[] = [];
    for (let at = 0; at < bytes.length; at += 777) chunks.push(...decoder.decode(bytes.subarray(at, at + 777)));
    const pcm = concatFloat(chunks);
    expect(Math.abs(pcm.length - speech.length)).toBeLessThan(24_000 * 0.03);
    const { lag, correlation } = findDelay(speech, pcm, 2400);
    expect(lag).toBeLessThan(240);
    expect(correlation).toBeGreaterThan(0.9);
  });

  it('writes streams that opusdec decodes', async () => {
    const encoder = new OggOpusEncoder({ frameMs: 20, packetsPerPage: 2 });
    const pages: Uint8Array[] = [];
    for (let at = 0; at < speech.length; at += 1000) pages.push(...encoder.encode(speech.subarray(at, at + 1000)));
    pages.push(...encoder.end());
    const opusPath = join(dir.path, 'ours.opus');
    const outPath = join(dir.path, 'opusdec.wav');
    await writeFile(opusPath, Buffer.concat(pages));
    await run('opusdec', ['--quiet', '--rate', '24000', opusPath, outPath]);
    const { samples } = await readWav(outPath, 24_000);
    const { lag, correlation } = findDelay(speech, samples, 2400);
    expect(lag).toBeLessThan(240);
    expect(correlation).toBeGreaterThan(0.9);
    const info = await run('opusinfo', [opusPath]);
    expect(info.stdout).toMatch(/Original sample rate: 24000/);
    expect(info.stdout).not.toMatch(/WARNING|ERROR/i);
  });
});


describe('WAV files', () => {
  it('reads WAVs whose writer could not fill in the sizes (written to a pipe)', async () => {
    const { encodeWav } = await import('../../src/audio/wav.js');
    const tone = new Float32Array(2400).map((_, i) => 0.5 * Math.sin(i / 4));
    for (const placeholder of [0, 0xffffffff, 0x7ffff000]) {
      const bytes = Buffer.from(encodeWav(tone, 24_000));
      bytes.writeUInt32LE(placeholder, 4);
      bytes.writeUInt32LE(placeholder, 40);
      const back = decodeWav(bytes);
      expect(back.samples.length).toBe(tone.length);
      expect(Math.abs(back.samples[100] - tone[100])).toBeLessThan(1e-3);
    }
  });
});
