/**
 * A small streaming Ogg muxer and demuxer for Opus (RFC 3533, RFC 7845).
 *
 * No maintained npm package muxes and demuxes Ogg Opus incrementally in both
 * Node and the browser, so this is hand-written and kept to what the voice
 * path needs: one logical stream, packets spanning pages, several packets per
 * page, CRC checks, and recovery after a reconnect (skip until BOS).
 */
import { oggCrc32 } from './ogg-crc.js';
import { decodeOpusHead, encodeOpusHead, encodeOpusTags, isOpusTags, opusPacketDuration, type OpusHead } from './opus-packet.js';

export const PageFlag = { Continued: 0x01, BeginningOfStream: 0x02, EndOfStream: 0x04 } as const;

const CAPTURE = [0x4f, 0x67, 0x67, 0x53]; // "OggS"
const HEADER_BYTES = 27;
/** The largest possible page: header, 255 lacing values, 255 full segments. */
export const MAX_PAGE_BYTES = HEADER_BYTES + 255 + 255 * 255;

export interface OggPage {
  flags: number;
  /** -1 when no packet ends on this page. */
  granule: number;
  serial: number;
  sequence: number;
  /** Lacing values, one per segment. */
  segments: Uint8Array;
  body: Uint8Array;
}

export class OggError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OggError';
  }
}

export function isOggCapture(bytes: Uint8Array, at = 0): boolean {
  return (
    bytes.length >= at + 4 &&
    bytes[at] === CAPTURE[0] &&
    bytes[at + 1] === CAPTURE[1] &&
    bytes[at + 2] === CAPTURE[2] &&
    bytes[at + 3] === CAPTURE[3]
  );
}

export function encodePage(page: OggPage): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + page.segments.length + page.body.length);
  const view = new DataView(out.buffer);
  out.set(CAPTURE, 0);
  out[4] = 0;
  out[5] = page.flags;
  view.setBigInt64(6, BigInt(page.granule), true);
  view.setUint32(14, page.serial >>> 0, true);
  view.setUint32(18, page.sequence >>> 0, true);
  out[26] = page.segments.length;
  out.set(page.segments, HEADER_BYTES);
  out.set(page.body, HEADER_BYTES + page.segments.length);
  view.setUint32(22, oggCrc32(out), true);
  return out;
}

/**
 * Granule position of an encoded page (see encodePage for the layout), or −1
 * when no packet ends on it. Reads the header only: no capture or CRC check,
 * for callers that already trust the page and want it cheaply.
 */
export function pageGranule(page: Uint8Array): number {
  if (page.length < 14) return -1;
  return Number(new DataView(page.buffer, page.byteOffset, page.byteLength).getBigInt64(6, true));
}

/** Whether an encoded page starts a stream; reads the header flags only, like pageGranule. */
export function isBosPage(page: Uint8Array): boolean {
  return page.length > 5 && (page[5] & PageFlag.BeginningOfStream) !== 0;
}

type ParsedPage = { page: OggPage; size: number } | { incomplete: true } | { error: string };

/** Parses the page starting at `at`, checking its CRC. */
export function parsePageAt(bytes: Uint8Array, at: number): ParsedPage {
  if (bytes.length - at < HEADER_BYTES) return { incomplete: true };
  if (!isOggCapture(bytes, at)) return { error: 'data is not an Ogg page (missing "OggS" capture pattern)' };
  if (bytes[at + 4] !== 0) return { error: `unsupported Ogg version ${bytes[at + 4]}` };
  const nSegments = bytes[at + 26];
  if (bytes.length - at < HEADER_BYTES + nSegments) return { incomplete: true };
  const segments = bytes.subarray(at + HEADER_BYTES, at + HEADER_BYTES + nSegments);
  let bodyLength = 0;
  for (let i = 0; i < nSegments; i++) bodyLength += segments[i];
  const size = HEADER_BYTES + nSegments + bodyLength;
  if (bytes.length - at < size) return { incomplete: true };
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, size);
  const stored = view.getUint32(22, true);
  // The CRC covers the page with its own CRC field zeroed: hash in three pieces to avoid a copy.
  let crc = oggCrc32(bytes.subarray(at, at + 22));
  crc = oggCrc32(ZERO4, crc);
  crc = oggCrc32(bytes.subarray(at + 26, at + size), crc);
  if (crc !== stored) return { error: 'Ogg page CRC mismatch: the audio stream is corrupt' };
  const page: OggPage = {
    flags: bytes[at + 5],
    granule: Number(view.getBigInt64(6, true)),
    serial: view.getUint32(14, true),
    sequence: view.getUint32(18, true),
    segments,
    body: bytes.subarray(at + HEADER_BYTES + nSegments, at + size),
  };
  return { page, size };
}
const ZERO4 = new Uint8Array(4);

export type DemuxEvent =
  | { type: 'head'; head: OpusHead; serial: number }
  | { type: 'tags' }
  | { type: 'packet'; data: Uint8Array; samples48k: number }
  | { type: 'end' };

export interface DemuxerOptions {
  /**
   * Receivers that may see stale pages from a previous stream (after a
   * reconnect) skip everything until a BOS page. Without it, a stream that
   * does not start with BOS is an error.
   */
  skipUntilBos?: boolean;
  /** Corrupt data is skipped (resync on the next page) instead of being an error. */
  tolerant?: boolean;
  /** Bound on one reassembled packet; Opus packets are a few KiB at most. */
  maxPacketBytes?: number;
}

type StreamState = 'need-bos' | 'need-tags' | 'audio';

/**
 * Incremental demuxer: feed bytes as they arrive, in any chunking, and get
 * Opus header and packet events. Buffers at most one page plus one packet.
 */
export class OggOpusDemuxer {
  /** Pieces of a page that has not fully arrived, and how many bytes it needs before parsing can get further. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private pendingNeeds = 0;
  private state: StreamState = 'need-bos';
  private serial = -1;
  private partial: Uint8Array[] = [];
  private partialBytes = 0;
  private readonly skipUntilBos: boolean;
  private readonly tolerant: boolean;
  private readonly maxPacketBytes: number;
  /** Pages dropped while waiting for BOS or resyncing, for diagnostics. */
  skippedPages = 0;
  pagesRead = 0;

  constructor(options: DemuxerOptions = {}) {
    this.skipUntilBos = options.skipUntilBos ?? false;
    this.tolerant = options.tolerant ?? false;
    this.maxPacketBytes = options.maxPacketBytes ?? 64 * 1024;
  }

  get headerSeen(): boolean {
    return this.state !== 'need-bos';
  }

  /** Throws OggError on corrupt or non-Opus data unless `tolerant`. */
  push(chunk: Uint8Array): DemuxEvent[] {
    const events: DemuxEvent[] = [];
    // A page trickling in a few bytes at a time is gathered, not copied again on every push (that was quadratic).
    if (this.pendingBytes > 0 && this.pendingBytes + chunk.length < this.pendingNeeds) {
      this.pending.push(chunk.slice());
      this.pendingBytes += chunk.length;
      return events;
    }
    const bytes = this.pendingBytes > 0 ? concat([...this.pending, chunk], this.pendingBytes + chunk.length) : chunk;
    let at = 0;
    while (at < bytes.length) {
      const parsed = parsePageAt(bytes, at);
      if ('incomplete' in parsed) break;
      if ('error' in parsed) {
        if (!this.tolerant) throw new OggError(parsed.error);
        at = this.resync(bytes, at + 1);
        this.dropPartial();
        continue;
      }
      at += parsed.size;
      this.pagesRead++;
      this.onPage(parsed.page, events);
    }
    const rest = bytes.length - at;
    if (rest > MAX_PAGE_BYTES) {
      // Cannot happen with a valid page header; guards memory against garbage.
      throw new OggError('Ogg page is larger than the format allows');
    }
    this.pending = rest === 0 ? [] : [bytes.slice(at)];
    this.pendingBytes = rest;
    this.pendingNeeds = rest === 0 ? 0 : bytesNeeded(this.pending[0]);
    return events;
  }

  private resync(bytes: Uint8Array, from: number): number {
    for (let i = from; i + 4 <= bytes.length; i++) if (isOggCapture(bytes, i)) return i;
    this.skippedPages++;
    return Math.max(from, bytes.length - 3);
  }

  private dropPartial(): void {
    this.partial = [];
    this.partialBytes = 0;
  }

  private fail(message: string): never | void {
    if (!this.tolerant) throw new OggError(message);
    this.skippedPages++;
  }

  private onPage(page: OggPage, events: DemuxEvent[]): void {
    const bos = (page.flags & PageFlag.BeginningOfStream) !== 0;
    if (bos) {
      // A new BOS starts a fresh stream (a client that restarted its encoder): forget the old one.
      this.state = 'need-bos';
      this.dropPartial();
    } else if (this.state === 'need-bos') {
      if (this.skipUntilBos) {
        this.skippedPages++;
        return;
      }
      return void this.fail('the Ogg stream must begin with a BOS page holding OpusHead');
    } else if (page.serial !== this.serial) {
      return void this.fail(`Ogg page belongs to stream ${page.serial}, expected ${this.serial}; multiplexed streams are not supported`);
    }

    const continued = (page.flags & PageFlag.Continued) !== 0;
    let offset = 0;
    let segIndex = 0;
    if (continued && this.partial.length === 0) {
      // The start of this packet was lost (skipped page): drop its tail.
      while (segIndex < page.segments.length) {
        const len = page.segments[segIndex++];
        offset += len;
        if (len < 255) break;
      }
    } else if (!continued && this.partial.length > 0) {
      this.dropPartial();
      this.fail('Ogg packet was cut off: a page is missing');
    }

    let packetStart = offset;
    for (; segIndex < page.segments.length; segIndex++) {
      const len = page.segments[segIndex];
      offset += len;
      if (len === 255) continue;
      const piece = page.body.subarray(packetStart, offset);
      packetStart = offset;
      let packet = piece;
      if (this.partial.length > 0) {
        this.partial.push(piece);
        packet = concat(this.partial, this.partialBytes + piece.length);
        this.dropPartial();
      }
      this.onPacket(packet, page, bos, events);
    }
    if (packetStart < offset) {
      const piece = page.body.subarray(packetStart, offset);
      this.partialBytes += piece.length;
      if (this.partialBytes > this.maxPacketBytes) {
        this.dropPartial();
        return void this.fail(`Ogg packet exceeds ${this.maxPacketBytes} bytes`);
      }
      // Copy: the page's bytes belong to a buffer that is about to be released.
      this.partial.push(piece.slice());
    }
    if (page.flags & PageFlag.EndOfStream) {
      this.state = 'need-bos';
      events.push({ type: 'end' });
    }
  }

  private onPacket(packet: Uint8Array, page: OggPage, bos: boolean, events: DemuxEvent[]): void {
    switch (this.state) {
      case 'need-bos': {
        if (!bos) return void this.fail('OpusHead must be alone on the BOS page');
        const r = decodeOpusHead(packet);
        if (!r.ok) return void this.fail(r.error);
        this.serial = page.serial;
        this.state = 'need-tags';
        events.push({ type: 'head', head: r.head, serial: page.serial });
        return;
      }
      case 'need-tags':
        if (isOpusTags(packet)) {
          this.state = 'audio';
          events.push({ type: 'tags' });
          return;
        }
        this.fail('second Ogg Opus packet must be OpusTags');
        // Tolerant: a lost tags page carries nothing needed to decode, so it must not silence the stream for good.
        this.state = 'audio';
        return this.onAudioPacket(packet, events);
      case 'audio':
        return this.onAudioPacket(packet, events);
    }
  }

  private onAudioPacket(packet: Uint8Array, events: DemuxEvent[]): void {
    const d = opusPacketDuration(packet);
    if (!d.ok) return void this.fail(`not an Opus packet: ${d.error}`);
    events.push({ type: 'packet', data: packet, samples48k: d.samples48k });
  }
}

/** How long the page starting `partial` is, as far as its header tells yet: parsing waits until that much is there. */
function bytesNeeded(partial: Uint8Array): number {
  if (partial.length < HEADER_BYTES) return HEADER_BYTES;
  const withTable = HEADER_BYTES + partial[26];
  if (partial.length < withTable) return withTable;
  let size = withTable;
  for (let i = HEADER_BYTES; i < withTable; i++) size += partial[i];
  return size;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface MuxerOptions {
  serial?: number;
  /** Samples at 48 kHz the decoder drops at the start (the encoder's look-ahead). */
  preSkip?: number;
  inputSampleRate?: number;
  channels?: number;
  vendor?: string;
  /** Packets gathered per page before it is emitted; 1 gives the lowest latency. */
  packetsPerPage?: number;
}

interface QueuedPacket {
  data: Uint8Array;
  /** Granule position once this packet is decoded: what a page ending with it carries. */
  granuleAfter: number;
}

/**
 * Incremental muxer. Every page it returns is complete and can be sent on its
 * own websocket message: a receiver never waits for the rest of a page.
 */
export class OggOpusMuxer {
  private readonly serial: number;
  private readonly options: MuxerOptions;
  private sequence = 0;
  private granule = 0;
  private queued: QueuedPacket[] = [];
  private readonly packetsPerPage: number;

  constructor(options: MuxerOptions = {}) {
    this.options = options;
    this.serial = (options.serial ?? Math.floor(Math.random() * 0x7fffffff)) >>> 0;
    this.packetsPerPage = Math.max(1, options.packetsPerPage ?? 1);
  }

  /** The two header pages: OpusHead alone on the BOS page, then OpusTags. */
  headerPages(): Uint8Array[] {
    const head = encodeOpusHead({
      channels: this.options.channels ?? 1,
      preSkip: this.options.preSkip ?? 312,
      inputSampleRate: this.options.inputSampleRate ?? 24_000,
    });
    const tags = encodeOpusTags(this.options.vendor ?? 'quillman');
    return [
      ...this.pagesFor([{ data: head, granuleAfter: 0 }], PageFlag.BeginningOfStream),
      ...this.pagesFor([{ data: tags, granuleAfter: 0 }], 0),
    ];
  }

  /** Adds one Opus packet; returns the pages completed by it. */
  writePacket(packet: Uint8Array, samples48k?: number): Uint8Array[] {
    let duration = samples48k;
    if (duration === undefined) {
      const d = opusPacketDuration(packet);
      if (!d.ok) throw new OggError(d.error);
      duration = d.samples48k;
    }
    this.granule += duration;
    this.queued.push({ data: packet, granuleAfter: this.granule });
    return this.queued.length >= this.packetsPerPage ? this.flush() : [];
  }

  /** Emits queued packets now, as one page (or more if they need it). */
  flush(): Uint8Array[] {
    if (this.queued.length === 0) return [];
    const pages = this.pagesFor(this.queued, 0);
    this.queued = [];
    return pages;
  }

  /** Ends the stream with an EOS page. */
  end(): Uint8Array[] {
    const pages = this.pagesFor(this.queued, PageFlag.EndOfStream);
    this.queued = [];
    return pages;
  }

  /** Lays packets out in lacing segments, continuing on a new page whenever the 255-entry table fills. */
  private pagesFor(packets: QueuedPacket[], flags: number): Uint8Array[] {
    const pages: Uint8Array[] = [];
    let segments: number[] = [];
    let bodies: Uint8Array[] = [];
    let continued = false;
    let lastGranule = -1;
    const emit = (last: boolean) => {
      let pageFlags = continued ? PageFlag.Continued : 0;
      if (this.sequence === 0) pageFlags |= flags & PageFlag.BeginningOfStream;
      let granule = lastGranule;
      if (last && flags & PageFlag.EndOfStream) {
        pageFlags |= PageFlag.EndOfStream;
        granule = this.granule;
      }
      pages.push(
        encodePage({
          flags: pageFlags,
          granule,
          serial: this.serial,
          sequence: this.sequence++,
          segments: Uint8Array.from(segments),
          body: concat(bodies, bodies.reduce((n, b) => n + b.length, 0)),
        }),
      );
      segments = [];
      bodies = [];
      lastGranule = -1;
    };
    for (const { data, granuleAfter } of packets) {
      let at = 0;
      // A packet whose length is a multiple of 255 ends with a 0-length segment, hence the loop shape.
      for (;;) {
        if (segments.length === 255) {
          emit(false);
          continued = at > 0;
        }
        const len = Math.min(255, data.length - at);
        segments.push(len);
        bodies.push(data.subarray(at, at + len));
        at += len;
        if (len < 255) break;
      }
      lastGranule = granuleAfter;
    }
    if (segments.length > 0 || flags & PageFlag.EndOfStream) emit(true);
    return pages;
  }
}
