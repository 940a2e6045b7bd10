/**
 * Wraps encoder packets in Ogg pages, one packet per page so every page can
 * leave as soon as its packet exists. Header pages come first, once.
 */
import { OggOpusMuxer } from '../../../src/protocol/index.js';
import { SAMPLE_RATE } from './messages.js';

/**
 * libopus looks 6.5 ms ahead at 24 kHz: 312 samples at 48 kHz, the unit
 * pre-skip is counted in. Chromium's AudioEncoder reports its look-ahead at
 * the input rate instead (156), so we state it rather than trust the header.
 */
export const OPUS_PRE_SKIP_48K = 312;

export class OggPageWriter {
  private readonly muxer: OggOpusMuxer;
  private headersWritten = false;

  constructor(vendor: string) {
    this.muxer = new OggOpusMuxer({ preSkip: OPUS_PRE_SKIP_48K, inputSampleRate: SAMPLE_RATE, channels: 1, vendor, packetsPerPage: 1 });
  }

  /** The pages completed by `packet`, header pages included the first time. */
  write(packet: Uint8Array): Uint8Array[] {
    const pages = this.headersWritten ? [] : this.muxer.headerPages();
    this.headersWritten = true;
    pages.push(...this.muxer.writePacket(packet));
    return pages;
  }
}
