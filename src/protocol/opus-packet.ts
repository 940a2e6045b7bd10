/**
 * Opus headers (RFC 7845 §5) and the packet TOC (RFC 6716 §3.1).
 * The TOC tells a packet's duration, which Ogg granule positions need, and a
 * structurally impossible TOC is the cheapest sign that a payload is not Opus.
 */

const MAGIC_HEAD = [0x4f, 0x70, 0x75, 0x73, 0x48, 0x65, 0x61, 0x64]; // "OpusHead"
const MAGIC_TAGS = [0x4f, 0x70, 0x75, 0x73, 0x54, 0x61, 0x67, 0x73]; // "OpusTags"

export interface OpusHead {
  channels: number;
  preSkip: number;
  inputSampleRate: number;
  outputGain: number;
  mappingFamily: number;
}

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}

export const isOpusHead = (packet: Uint8Array) => startsWith(packet, MAGIC_HEAD);
export const isOpusTags = (packet: Uint8Array) => startsWith(packet, MAGIC_TAGS);

export function encodeOpusHead(head: Partial<OpusHead> = {}): Uint8Array {
  const out = new Uint8Array(19);
  const view = new DataView(out.buffer);
  out.set(MAGIC_HEAD, 0);
  out[8] = 1;
  out[9] = head.channels ?? 1;
  view.setUint16(10, head.preSkip ?? 312, true);
  view.setUint32(12, head.inputSampleRate ?? 24_000, true);
  view.setInt16(16, head.outputGain ?? 0, true);
  out[18] = head.mappingFamily ?? 0;
  return out;
}

export function decodeOpusHead(packet: Uint8Array): { ok: true; head: OpusHead } | { ok: false; error: string } {
  if (!isOpusHead(packet)) return { ok: false, error: 'first packet is not an OpusHead: the stream is not Ogg Opus' };
  if (packet.length < 19) return { ok: false, error: 'OpusHead is truncated' };
  // RFC 7845: a major version other than 0 (versions 1..15) is incompatible.
  if (packet[8] === 0 || packet[8] > 15) return { ok: false, error: `unsupported OpusHead version ${packet[8]}` };
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const head: OpusHead = {
    channels: packet[9],
    preSkip: view.getUint16(10, true),
    inputSampleRate: view.getUint32(12, true),
    outputGain: view.getInt16(16, true),
    mappingFamily: packet[18],
  };
  if (head.channels === 0) return { ok: false, error: 'OpusHead declares zero channels' };
  if (head.mappingFamily === 0 && head.channels > 2) return { ok: false, error: 'OpusHead mapping family 0 allows at most 2 channels' };
  return { ok: true, head };
}

export function encodeOpusTags(vendor = 'quillman', comments: string[] = []): Uint8Array {
  const enc = new TextEncoder();
  const vendorBytes = enc.encode(vendor);
  const commentBytes = comments.map((c) => enc.encode(c));
  const size = 8 + 4 + vendorBytes.length + 4 + commentBytes.reduce((n, c) => n + 4 + c.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC_TAGS, 0);
  let at = 8;
  view.setUint32(at, vendorBytes.length, true);
  out.set(vendorBytes, at + 4);
  at += 4 + vendorBytes.length;
  view.setUint32(at, commentBytes.length, true);
  at += 4;
  for (const c of commentBytes) {
    view.setUint32(at, c.length, true);
    out.set(c, at + 4);
    at += 4 + c.length;
  }
  return out;
}

/** Samples at 48 kHz per frame, indexed by the TOC's 5-bit config (RFC 6716 table 2). */
const FRAME_SAMPLES_48K: number[] = (() => {
  const t: number[] = [];
  for (let c = 0; c < 32; c++) {
    if (c < 12) t.push([480, 960, 1920, 2880][c % 4]); // SILK 10/20/40/60 ms
    else if (c < 16) t.push([480, 960][c % 2]); // Hybrid 10/20 ms
    else t.push([120, 240, 480, 960][c % 4]); // CELT 2.5/5/10/20 ms
  }
  return t;
})();

/** The longest an Opus packet may last (RFC 6716 §3.2.5): 120 ms. */
const MAX_PACKET_SAMPLES_48K = 5760;

export type PacketDuration = { ok: true; samples48k: number } | { ok: false; error: string };

/**
 * Duration of one Opus packet in 48 kHz samples, with the framing checks of
 * RFC 6716 §3.4 that can be made without decoding.
 */
export function opusPacketDuration(packet: Uint8Array): PacketDuration {
  if (packet.length === 0) return { ok: true, samples48k: 0 }; // a zero-length packet is a legal "lost packet" marker
  const toc = packet[0];
  const frameSamples = FRAME_SAMPLES_48K[toc >> 3];
  const code = toc & 3;
  switch (code) {
    case 0:
      return { ok: true, samples48k: frameSamples };
    case 1:
      if ((packet.length - 1) % 2 !== 0) return { ok: false, error: 'Opus code-1 packet has an odd payload length' };
      return { ok: true, samples48k: 2 * frameSamples };
    case 2: {
      if (packet.length < 2) return { ok: false, error: 'Opus code-2 packet is truncated' };
      const b = packet[1];
      let first = b;
      let lenBytes = 1;
      if (b >= 252) {
        if (packet.length < 3) return { ok: false, error: 'Opus code-2 packet is truncated' };
        first = b + 4 * packet[2];
        lenBytes = 2;
      }
      if (1 + lenBytes + first > packet.length) return { ok: false, error: 'Opus code-2 frame length exceeds the packet' };
      return { ok: true, samples48k: 2 * frameSamples };
    }
    default: {
      if (packet.length < 2) return { ok: false, error: 'Opus code-3 packet is truncated' };
      const count = packet[1] & 0x3f;
      if (count === 0) return { ok: false, error: 'Opus code-3 packet has zero frames' };
      const samples = count * frameSamples;
      if (samples > MAX_PACKET_SAMPLES_48K) return { ok: false, error: 'Opus packet lasts more than 120 ms' };
      return { ok: true, samples48k: samples };
    }
  }
}
