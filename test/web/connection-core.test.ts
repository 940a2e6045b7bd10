/**
 * The connection worker's logic, driven in Node with real protocol frames,
 * real Ogg Opus pages and libopus (@evan/opus) standing in for WebCodecs.
 */
import * as opus from '@evan/opus';
import { describe, expect, it } from 'vitest';
import { ControlAction, encodeAudio, encodeFrame, encodeHandshake, encodeMetadata, encodeText, encodeError, pageGranule } from '../../src/protocol/index.js';
import { floatToInt16 } from '../../src/audio/pcm.js';
import type { EncoderControl, PlayoutCommand } from '../../web/src/audio/messages.js';
import { OggOpusStreamDecoder } from '../../web/src/audio/ogg-opus-stream-decoder.js';
import { OggPageWriter } from '../../web/src/audio/ogg-page-writer.js';
import { ConnectionCore, type StreamDecoder } from '../../web/src/connection/connection-core.js';
import type { ConnectionReport } from '../../web/src/connection/messages.js';
import { libopus } from './libopus.js';

const RATE = 24_000;
const FRAME = 480;

function tonePages(seconds: number, hz: number): Uint8Array[] {
  const encoder = new opus.Encoder({ channels: 1, sample_rate: RATE, application: 'audio' });
  const writer = new OggPageWriter('test');
  const pages: Uint8Array[] = [];
  for (let at = 0; at + FRAME <= seconds * RATE; at += FRAME) {
    const pcm = Float32Array.from({ length: FRAME }, (_, i) => 0.3 * Math.sin((2 * Math.PI * hz * (at + i)) / RATE));
    pages.push(...writer.write(encoder.encode(floatToInt16(pcm))));
  }
  return pages;
}


/** A core whose every output is recorded; `clock` is the time it reads, `open` whether the socket takes frames. */
function harness(decoder?: StreamDecoder) {
  const out = { sent: [] as Uint8Array[], reports: [] as ConnectionReport[], playout: [] as PlayoutCommand[], encoder: [] as EncoderControl[] };
  const state = { clock: 0, open: true };
  const pushed: Uint8Array[] = [];
  let resets = 0;
  const fake: StreamDecoder = { push: (b) => void pushed.push(b), reset: () => void resets++ };
  const core = new ConnectionCore(
    {
      send: (frame) => state.open && out.sent.push(frame) > 0,
      report: (r) => void out.reports.push(r),
      playout: (c) => void out.playout.push(c),
      encoder: (c) => void out.encoder.push(c),
      now: () => state.clock,
    },
    decoder ?? fake,
  );
  return { core, out, state, pushed, resets: () => resets };
}

describe('ConnectionCore', () => {
  it('keeps audio out both ways until the handshake, then starts fresh streams once', () => {
    const { core, out, pushed, resets } = harness();
    const [page] = tonePages(0.02, 300);
    core.onMessage(encodeMetadata({ type: 'queue', position: 2, queued: 3 }));
    core.onMessage(encodeAudio(page));
    core.onPage(page, pageGranule(page));
    expect(pushed).toEqual([]);
    expect(out.sent).toEqual([]);
    expect(out.reports).toEqual([{ type: 'frame', frame: { kind: 'metadata', data: { type: 'queue', position: 2, queued: 3 } } }]);

    core.onMessage(encodeHandshake());
    core.onMessage(encodeHandshake());
    expect(resets()).toBe(1);
    expect(out.playout).toEqual([{ type: 'reset' }]);
    expect(out.encoder).toEqual([{ type: 'start' }]);
    expect(out.reports.filter((r) => r.type === 'handshake')).toHaveLength(1);

    core.onMessage(encodeAudio(page));
    core.onPage(page, pageGranule(page));
    expect(pushed).toHaveLength(1);
    expect(out.sent).toEqual([encodeAudio(page)]);
  });

  it('sends a flush to the playout worklet itself, and shows text, metadata and errors on the main thread', () => {
    const { core, out } = harness();
    core.onMessage(encodeHandshake());
    core.onMessage(encodeMetadata({ type: 'flush' }));
    expect(out.playout.at(-1)).toEqual({ type: 'flush' });
    core.onMessage(encodeText(' hello'));
    core.onMessage(encodeError('engine overloaded'));
    core.onMessage(encodeFrame({ kind: 'control', action: ControlAction.Pause }));
    core.onMessage(encodeFrame({ kind: 'ping' }));
    core.onMessage(Uint8Array.of(2, 0xff)); // invalid UTF-8 text: ignored, the stream goes on
    expect(out.reports.filter((r) => r.type === 'frame')).toEqual([
      { type: 'frame', frame: { kind: 'metadata', data: { type: 'flush' } } },
      { type: 'frame', frame: { kind: 'text', text: ' hello' } },
      { type: 'frame', frame: { kind: 'error', message: 'engine overloaded' } },
    ]);
  });

  it('decodes the new stream into playout audio and skips what is left of an old one', () => {
    const decoded = { pcm: 0 };
    const { core, out } = harness(new OggOpusStreamDecoder(libopus, (pcm) => (decoded.pcm += pcm.length)));
    core.onMessage(encodeHandshake());
    // Pages of an earlier stream still in flight: no BOS page, nothing to decode.
    for (const page of tonePages(0.2, 200).slice(4)) core.onMessage(encodeAudio(page));
    expect(decoded.pcm).toBe(0);
    for (const page of tonePages(0.2, 300)) core.onMessage(encodeAudio(page));
    expect(decoded.pcm).toBe(0.2 * RATE - 156);
    expect(out.playout).toEqual([{ type: 'reset' }]);
  });

  it('reports bitrates per interval and the reply lag of a lockstep server', () => {
    const { core, out, state } = harness();
    core.onMessage(encodeHandshake());
    const ours = tonePages(1, 300);
    const theirs = tonePages(1, 500);
    // Our page at position p leaves at t; the server's page at p comes back 120 ms later.
    for (let i = 0; i < ours.length; i++) {
      state.clock = i * 20;
      core.onPage(ours[i], pageGranule(ours[i]));
    }
    for (let i = 0; i < theirs.length; i++) {
      state.clock = i * 20 + 120;
      core.onMessage(encodeAudio(theirs[i]));
    }
    state.clock = 2000;
    core.reportStats();
    const stats = out.reports.find((r) => r.type === 'stats');
    const sentBytes = ours.reduce((n, p) => n + p.length + 1, 0);
    const receivedBytes = theirs.reduce((n, p) => n + p.length + 1, 0) + encodeHandshake().length;
    expect(stats).toMatchObject({ sentKbps: (sentBytes * 8) / 1000 / 2, receivedKbps: (receivedBytes * 8) / 1000 / 2 });
    expect(stats?.type === 'stats' && stats.replyLagMs).toBeCloseTo(120, 6);

    state.clock = 3000;
    core.reportStats();
    expect(out.reports.at(-1)).toMatchObject({ sentKbps: 0, receivedKbps: 0 });
  });

  it('counts only what the socket took, and stops the encoder when the conversation ends', () => {
    const { core, out, state } = harness();
    core.onMessage(encodeHandshake());
    state.open = false;
    const [page] = tonePages(0.02, 300);
    core.onPage(page, pageGranule(page));
    state.clock = 1000;
    core.reportStats();
    expect(out.reports.at(-1)).toMatchObject({ sentKbps: 0 });
    core.end();
    expect(out.encoder).toEqual([{ type: 'start' }, { type: 'stop' }]);
  });
});
