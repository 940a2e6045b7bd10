/**
 * Ogg Opus bytes in, 24 kHz PCM out, whatever decodes the packets. Stale
 * pages from a previous connection are skipped until a BOS page; each new
 * stream gets a fresh decoder and its own pre-skip.
 */
import { OggOpusDemuxer } from '../../../src/protocol/index.js';

/** Decodes the packets of one stream, emitting PCM in packet order. */
export interface PacketDecoder {
  decode(packet: Uint8Array): void;
  close(): void;
}

/**
 * Makes a decoder for a new stream; it must call `emit` with 24 kHz mono PCM,
 * each a whole array of its own (not a view into a larger buffer), so that
 * its buffer can be transferred as is.
 */
export type PacketDecoderFactory = (emit: (pcm: Float32Array) => void) => PacketDecoder;

export class OggOpusStreamDecoder {
  private demuxer = new OggOpusDemuxer({ skipUntilBos: true, tolerant: true });
  private decoder: PacketDecoder | undefined;
  streams = 0;

  constructor(
    private readonly createDecoder: PacketDecoderFactory,
    /** Gets whole arrays it may keep or transfer. */
    private readonly onPcm: (pcm: Float32Array) => void,
  ) {}

  push(bytes: Uint8Array): void {
    for (const event of this.demuxer.push(bytes)) {
      if (event.type === 'head') this.startStream(Math.round(event.head.preSkip / 2));
      else if (event.type === 'packet') this.decoder?.decode(event.data);
    }
  }

  /** Forgets the current stream: the next audio must start with a BOS page. */
  reset(): void {
    this.decoder?.close();
    this.decoder = undefined;
    this.demuxer = new OggOpusDemuxer({ skipUntilBos: true, tolerant: true });
  }

  private startStream(preSkip24k: number): void {
    this.decoder?.close();
    this.streams++;
    let skip = preSkip24k;
    this.decoder = this.createDecoder((pcm) => {
      if (skip > 0) {
        const drop = Math.min(skip, pcm.length);
        skip -= drop;
        // A copy, not a view: what reaches onPcm must stay a whole array (see PacketDecoderFactory).
        pcm = pcm.slice(drop);
      }
      if (pcm.length > 0) this.onPcm(pcm);
    });
  }
}
