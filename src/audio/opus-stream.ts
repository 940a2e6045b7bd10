/**
 * Ogg Opus streams in Node: PCM → Ogg pages and Ogg bytes → PCM, using the
 * libopus bindings of @evan/opus (native, with a wasm fallback) and our
 * muxer/demuxer. Workers and the terminal client use these; engines never do.
 */
import * as opus from '@evan/opus';
import { OggOpusDemuxer, OggOpusMuxer, type DemuxerOptions } from '../protocol/ogg.js';
import { FrameChunker, floatToInt16 } from './pcm.js';

export const OPUS_RATE = 24_000;

export interface OpusEncoderOptions {
  /** Opus frame length; 20 ms is Kyutai's choice and a good latency/overhead balance. */
  frameMs?: 10 | 20 | 40 | 60;
  bitrate?: number;
  packetsPerPage?: number;
  /** 'audio' is what Kyutai's client uses (application 2049). */
  application?: 'voip' | 'audio' | 'restricted_lowdelay';
}

/** PCM in, complete Ogg pages out. The first call returns the header pages too. */
export class OggOpusEncoder {
  private readonly encoder: InstanceType<typeof opus.Encoder>;
  private readonly muxer: OggOpusMuxer;
  private readonly chunker: FrameChunker;
  private readonly samples48kPerPacket: number;
  private headersSent = false;

  constructor(options: OpusEncoderOptions = {}) {
    const frameMs = options.frameMs ?? 20;
    this.encoder = new opus.Encoder({ channels: 1, sample_rate: OPUS_RATE, application: options.application ?? 'audio' });
    if (options.bitrate) this.encoder.bitrate = options.bitrate;
    this.chunker = new FrameChunker((OPUS_RATE * frameMs) / 1000);
    this.samples48kPerPacket = 48 * frameMs;
    this.muxer = new OggOpusMuxer({ packetsPerPage: options.packetsPerPage ?? 1, preSkip: this.lookaheadPreSkip() });
  }

  private lookaheadPreSkip(): number {
    // libopus reports look-ahead at the encoder's rate; pre-skip is always counted at 48 kHz.
    const lookahead = this.encoder.lookhead;
    return typeof lookahead === 'number' && lookahead > 0 ? lookahead * (48_000 / OPUS_RATE) : 312;
  }

  /** Header pages, once. Call before the first audio if the receiver needs them early. */
  headers(): Uint8Array[] {
    if (this.headersSent) return [];
    this.headersSent = true;
    return this.muxer.headerPages();
  }

  encode(pcm: Float32Array): Uint8Array[] {
    const pages = this.headers();
    for (const frame of this.chunker.push(pcm)) {
      const packet = this.encoder.encode(floatToInt16(frame));
      pages.push(...this.muxer.writePacket(packet, this.samples48kPerPacket));
    }
    return pages;
  }

  /** Pads the last partial frame with silence and ends the stream. */
  end(): Uint8Array[] {
    const pages = this.headers();
    const last = this.chunker.drainPadded();
    if (last) pages.push(...this.muxer.writePacket(this.encoder.encode(floatToInt16(last)), this.samples48kPerPacket));
    pages.push(...this.muxer.end());
    return pages;
  }

  /** Samples buffered but not yet encoded. */
  get pendingSamples(): number {
    return this.chunker.pending;
  }
}

/** Ogg bytes in (any chunking), PCM out, pre-skip honoured. */
export class OggOpusDecoder {
  private readonly demuxer: OggOpusDemuxer;
  private decoder = new opus.Decoder({ channels: 1, sample_rate: OPUS_RATE });
  private skip = 0;
  streams = 0;

  constructor(options: DemuxerOptions = {}) {
    this.demuxer = new OggOpusDemuxer(options);
  }

  /** Throws OggError on corrupt Ogg and Error on undecodable Opus. */
  decode(bytes: Uint8Array): Float32Array[] {
    const out: Float32Array[] = [];
    for (const ev of this.demuxer.push(bytes)) {
      if (ev.type === 'head') {
        // A new stream (e.g. the sender restarted its encoder): fresh decoder state.
        this.decoder = new opus.Decoder({ channels: 1, sample_rate: OPUS_RATE });
        this.skip = Math.round((ev.head.preSkip * OPUS_RATE) / 48_000);
        this.streams++;
      } else if (ev.type === 'packet') {
        const raw = this.decoder.decode(ev.data);
        const int16 = new Int16Array(raw.buffer, raw.byteOffset, raw.byteLength >> 1);
        let pcm = new Float32Array(int16.length);
        for (let i = 0; i < int16.length; i++) pcm[i] = int16[i] / 32768;
        if (this.skip > 0) {
          const drop = Math.min(this.skip, pcm.length);
          this.skip -= drop;
          pcm = pcm.subarray(drop);
        }
        if (pcm.length > 0) out.push(pcm);
      }
    }
    return out;
  }
}
