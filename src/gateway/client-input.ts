/**
 * Checks every message a client sends before it reaches a worker. Kyutai's
 * servers were not built to face the open internet, so the gateway stops bad
 * input here: frames are checked for shape and Ogg pages for CRC, BOS and
 * Opus framing, without decoding audio. Valid bytes are forwarded untouched.
 */
import { CloseCode } from '../protocol/close-codes.js';
import { decodeFrame, encodeAudio, Kind } from '../protocol/frames.js';
import { isOggCapture, OggError, OggOpusDemuxer } from '../protocol/ogg.js';
import type { ErrorKind } from './metrics.js';

export type ClientInput =
  /** `bytes` go to the worker as they are; `header` marks Ogg Opus header pages. */
  | { action: 'forward'; bytes: Uint8Array; kind: number; header: boolean }
  | { action: 'ignore'; kind: number }
  | { action: 'reject'; code: number; error: ErrorKind; message: string };

export interface ValidatorLimits {
  maxMessageBytes: number;
  /** Audio may run this far ahead of the wall clock (ms) before the client is refused. */
  maxAudioLeadMs: number;
}

export class ClientInputValidator {
  private readonly demuxer = new OggOpusDemuxer();
  private firstAudioAt = -1;
  private audioMs = 0;

  /** @param legacyRawAudio accept bare Ogg pages without a kind byte, as the original QuiLLMan browser sent them (/ws). */
  constructor(
    private readonly legacyRawAudio: boolean,
    private readonly limits: ValidatorLimits,
  ) {}

  check(data: Uint8Array, isBinary: boolean, nowMs: number): ClientInput {
    if (data.length > this.limits.maxMessageBytes) {
      return { action: 'reject', code: CloseCode.MessageTooBig, error: 'oversized_message', message: `Message of ${data.length} bytes is over the ${this.limits.maxMessageBytes}-byte limit: send one Ogg page per message.` };
    }
    if (!isBinary) {
      return { action: 'reject', code: CloseCode.UnsupportedData, error: 'text_message', message: 'Text websocket messages are not part of the Moshi protocol: send binary frames (kind byte + payload).' };
    }
    // "OggS" starts with 0x4f, never a valid kind byte, so bare pages are unambiguous.
    if (this.legacyRawAudio && isOggCapture(data)) return this.checkAudio(encodeAudio(data), data, nowMs);
    const decoded = decodeFrame(data);
    if (!decoded.ok) {
      return { action: 'reject', code: CloseCode.InvalidPayload, error: 'malformed_frame', message: `Malformed frame: ${decoded.error}.` };
    }
    const frame = decoded.frame;
    switch (frame.kind) {
      case 'audio':
        return this.checkAudio(data, frame.data, nowMs);
      case 'unknown':
        return { action: 'ignore', kind: frame.code };
      case 'handshake':
      case 'metadata':
      case 'error':
      case 'text':
        // Server-to-client kinds: nothing a worker expects from a client.
        return { action: 'ignore', kind: data[0] };
      default:
        return { action: 'forward', bytes: data, kind: data[0], header: false };
    }
  }

  private checkAudio(frameBytes: Uint8Array, ogg: Uint8Array, nowMs: number): ClientInput {
    try {
      const events = this.demuxer.push(ogg);
      let header = false;
      for (const e of events) {
        if (e.type === 'packet') this.audioMs += e.samples48k / 48;
        else if (e.type === 'head' || e.type === 'tags') header = true;
      }
      if (this.firstAudioAt < 0 && this.audioMs > 0) this.firstAudioAt = nowMs;
      // A model consumes audio in real time; a client far ahead of the clock only fills buffers.
      if (this.audioMs - (nowMs - this.firstAudioAt) > this.limits.maxAudioLeadMs) {
        return { action: 'reject', code: CloseCode.PolicyViolation, error: 'too_fast', message: `Audio is arriving faster than real time (more than ${this.limits.maxAudioLeadMs / 1000} s ahead). Stream the microphone as it records.` };
      }
      return { action: 'forward', bytes: frameBytes, kind: Kind.Audio, header };
    } catch (err) {
      const reason = err instanceof OggError ? err.message : String(err);
      // Past the headers the stream start was fine: the hint is about the pages themselves.
      const hint = this.demuxer.headerSeen ? 'Send each Ogg page whole and unchanged, all of one stream.' : 'Send Ogg Opus pages, starting with the OpusHead page.';
      return { action: 'reject', code: CloseCode.InvalidPayload, error: 'corrupt_audio', message: `Bad audio: ${reason}. ${hint}` };
    }
  }
}
