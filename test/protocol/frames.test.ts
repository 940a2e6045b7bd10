import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, Kind, type Frame } from '../../src/protocol/frames.js';

describe('Moshi frames', () => {
  const samples: Frame[] = [
    { kind: 'handshake', protocolVersion: 0, modelVersion: 0 },
    { kind: 'audio', data: new Uint8Array([0x4f, 0x67, 0x67, 0x53, 1, 2, 3]) },
    { kind: 'text', text: ' hello ▁wörld' },
    { kind: 'control', action: 1 },
    { kind: 'metadata', data: { type: 'queue', position: 2, queued: 3 } },
    { kind: 'error', message: 'server full' },
    { kind: 'ping' },
  ];

  it.each(samples)('round-trips $kind', (frame) => {
    const bytes = encodeFrame(frame);
    expect(bytes[0]).toBe(Kind[(frame.kind[0].toUpperCase() + frame.kind.slice(1)) as keyof typeof Kind]);
    const back = decodeFrame(bytes);
    expect(back).toEqual({ ok: true, frame });
  });

  it('accepts the Python server handshake (a single 0x00 byte) and the Rust one (0x00 + 8 bytes)', () => {
    expect(decodeFrame(new Uint8Array([0]))).toEqual({ ok: true, frame: { kind: 'handshake', protocolVersion: 0, modelVersion: 0 } });
    const rust = new Uint8Array(9);
    rust[1] = 2;
    rust[5] = 7;
    expect(decodeFrame(rust)).toEqual({ ok: true, frame: { kind: 'handshake', protocolVersion: 2, modelVersion: 7 } });
  });

  it('encodes little-endian versions on the handshake', () => {
    const bytes = encodeFrame({ kind: 'handshake', protocolVersion: 0x01020304, modelVersion: 5 });
    expect([...bytes]).toEqual([0, 4, 3, 2, 1, 5, 0, 0, 0]);
  });

  it('reports unknown kinds (newer servers send 7, 8, 9) without failing', () => {
    expect(decodeFrame(new Uint8Array([7, 1, 2]))).toEqual({ ok: true, frame: { kind: 'unknown', code: 7 } });
    expect(decodeFrame(new Uint8Array([200]))).toEqual({ ok: true, frame: { kind: 'unknown', code: 200 } });
  });

  it.each([
    ['empty message', new Uint8Array([]), /empty message/],
    ['short handshake', new Uint8Array([0, 1, 2]), /handshake/],
    ['audio without payload', new Uint8Array([1]), /no payload/],
    ['control without action', new Uint8Array([3]), /control/],
    ['control out of range', new Uint8Array([3, 9]), /control/],
    ['text that is not UTF-8', new Uint8Array([2, 0xff, 0xfe]), /UTF-8/],
    ['metadata that is not JSON', new Uint8Array([4, 0x7b]), /JSON/],
  ])('rejects %s with a reason', (_name, bytes, reason) => {
    const r = decodeFrame(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(reason);
  });
});
