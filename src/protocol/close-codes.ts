/**
 * Websocket close codes. Standard codes where one fits; 4xxx for conditions
 * the standard has no word for. Every close also carries a human reason, and
 * the server sends a kind-5 error frame first, so clients that ignore close
 * codes (Kyutai's) still show the user what happened.
 */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  /** A text message where the protocol only has binary ones. */
  UnsupportedData: 1003,
  /** Malformed frame, corrupt Ogg, not Opus. */
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  /** The worker failed or died mid-conversation. */
  InternalError: 1011,
  /** Every worker busy and the queue full. */
  TryAgainLater: 1013,
  /** The conversation reached its maximum length. */
  TimeLimit: 4000,
  /** Query parameters out of range. */
  InvalidParams: 4001,
  /** The worker stopped answering. */
  WorkerStalled: 4002,
  /** The client stopped reading and its send buffer filled. */
  SlowConsumer: 4003,
  /** No audio from the client for too long. */
  ClientIdle: 4004,
  /** The engine ended the conversation (e.g. the user said goodbye). */
  EndedByEngine: 4005,
  /** No credential, or one that is wrong or expired (HTTP 401's twin). */
  Unauthorized: 4401,
  /** A web page from an origin the gateway does not serve (HTTP 403's twin). */
  Forbidden: 4403,
  /** Too many conversations from one address (HTTP 429's twin). */
  TooManyRequests: 4429,
} as const;
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Close reasons are limited to 123 bytes of UTF-8 by RFC 6455. */
export function closeReason(text: string): string {
  const enc = new TextEncoder();
  if (enc.encode(text).length <= 123) return text;
  let out = text;
  while (enc.encode(out + '…').length > 123) out = out.slice(0, -1);
  return out + '…';
}
