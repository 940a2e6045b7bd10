/**
 * Kyutai's Moshi websocket protocol: every message is binary, byte 0 is the
 * kind and the rest is the payload. One codec serves every hop (browser,
 * gateway, workers), in Node and in the browser alike.
 */

export const Kind = {
  Handshake: 0,
  Audio: 1,
  Text: 2,
  Control: 3,
  Metadata: 4,
  Error: 5,
  Ping: 6,
} as const;
export type KindCode = (typeof Kind)[keyof typeof Kind];

export const ControlAction = { Start: 0, EndTurn: 1, Pause: 2, Restart: 3 } as const;
export type ControlActionCode = (typeof ControlAction)[keyof typeof ControlAction];

export type Frame =
  | { kind: 'handshake'; protocolVersion: number; modelVersion: number }
  | { kind: 'audio'; data: Uint8Array }
  | { kind: 'text'; text: string }
  | { kind: 'control'; action: ControlActionCode }
  | { kind: 'metadata'; data: unknown }
  | { kind: 'error'; message: string }
  | { kind: 'ping' }
  /** Kinds this codec does not know (newer Kyutai servers add 7–9). Receivers ignore them. */
  | { kind: 'unknown'; code: number };

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: string };

const utf8 = new TextEncoder();
// fatal: a text frame that is not UTF-8 is malformed, not something to guess at.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function withKind(kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = kind;
  out.set(payload, 1);
  return out;
}

export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.kind) {
    case 'handshake': {
      // The Rust server's form (kind + two u32 LE); the Python server's bare 0x00 is accepted on decode.
      const out = new Uint8Array(9);
      const view = new DataView(out.buffer);
      view.setUint32(1, frame.protocolVersion, true);
      view.setUint32(5, frame.modelVersion, true);
      return out;
    }
    case 'audio':
      return withKind(Kind.Audio, frame.data);
    case 'text':
      return withKind(Kind.Text, utf8.encode(frame.text));
    case 'control':
      return new Uint8Array([Kind.Control, frame.action]);
    case 'metadata':
      return withKind(Kind.Metadata, utf8.encode(JSON.stringify(frame.data)));
    case 'error':
      return withKind(Kind.Error, utf8.encode(frame.message));
    case 'ping':
      return new Uint8Array([Kind.Ping]);
    case 'unknown':
      return new Uint8Array([frame.code]);
  }
}

export const encodeAudio = (data: Uint8Array) => encodeFrame({ kind: 'audio', data });
export const encodeText = (text: string) => encodeFrame({ kind: 'text', text });
export const encodeMetadata = (data: unknown) => encodeFrame({ kind: 'metadata', data });
export const encodeError = (message: string) => encodeFrame({ kind: 'error', message });
export const encodeHandshake = () => encodeFrame({ kind: 'handshake', protocolVersion: 0, modelVersion: 0 });

/** Reads only the kind byte; the relay path needs nothing more for most frames. */
export function frameKind(message: Uint8Array): number | undefined {
  return message.length > 0 ? message[0] : undefined;
}

function decodeUtf8(payload: Uint8Array, what: string): { ok: true; text: string } | { ok: false; error: string } {
  try {
    return { ok: true, text: strictUtf8.decode(payload) };
  } catch {
    return { ok: false, error: `${what} frame is not valid UTF-8` };
  }
}

export function decodeFrame(message: Uint8Array): DecodeResult {
  if (message.length === 0) return { ok: false, error: 'empty message: every frame starts with a kind byte' };
  const kind = message[0];
  const payload = message.subarray(1);
  switch (kind) {
    case Kind.Handshake: {
      if (payload.length === 0) return { ok: true, frame: { kind: 'handshake', protocolVersion: 0, modelVersion: 0 } };
      if (payload.length < 8) return { ok: false, error: `handshake payload is ${payload.length} bytes; expected 0 or 8` };
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      return {
        ok: true,
        frame: { kind: 'handshake', protocolVersion: view.getUint32(0, true), modelVersion: view.getUint32(4, true) },
      };
    }
    case Kind.Audio:
      if (payload.length === 0) return { ok: false, error: 'audio frame has no payload' };
      return { ok: true, frame: { kind: 'audio', data: payload } };
    case Kind.Text: {
      const r = decodeUtf8(payload, 'text');
      return r.ok ? { ok: true, frame: { kind: 'text', text: r.text } } : r;
    }
    case Kind.Control: {
      if (payload.length !== 1 || payload[0] > ControlAction.Restart) {
        return { ok: false, error: 'control frame must carry one byte: 0 start, 1 end-turn, 2 pause, 3 restart' };
      }
      return { ok: true, frame: { kind: 'control', action: payload[0] as ControlActionCode } };
    }
    case Kind.Metadata: {
      const r = decodeUtf8(payload, 'metadata');
      if (!r.ok) return r;
      try {
        return { ok: true, frame: { kind: 'metadata', data: JSON.parse(r.text) } };
      } catch {
        return { ok: false, error: 'metadata frame is not valid JSON' };
      }
    }
    case Kind.Error: {
      const r = decodeUtf8(payload, 'error');
      return r.ok ? { ok: true, frame: { kind: 'error', message: r.text } } : r;
    }
    case Kind.Ping:
      return { ok: true, frame: { kind: 'ping' } };
    default:
      return { ok: true, frame: { kind: 'unknown', code: kind } };
  }
}
