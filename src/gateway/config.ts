/** Gateway settings. Pool settings live with the pool (src/pool/config.ts). */
import { isIP } from 'node:net';
import { z } from 'zod';

/** Characters a credential may hold: unreserved URL characters, which are also valid in a websocket subprotocol. */
const CREDENTIAL_CHARS = /^[A-Za-z0-9._~-]{16,512}$/;

function isAddressOrRange(value: string): boolean {
  const [address, prefix, extra] = value.split('/');
  const version = isIP(address);
  if (!version || extra !== undefined) return false;
  return prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
}

function isOriginPattern(value: string): boolean {
  if (value === '*') return true;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '');
  } catch {
    return false;
  }
}

export const GatewaySettingsSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8000),
    /** PEM certificate and key: serve https and wss, which browsers require for the microphone beyond localhost. */
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    /** Built web app; a placeholder page is served when it is missing. */
    staticDir: z.string().optional(),
    /** The original QuiLLMan capped conversations at 600 s. */
    maxConversationSeconds: z.number().positive().default(600),
    /** When to warn the client that the conversation is about to hit its cap. */
    warnBeforeEndSeconds: z.array(z.number().positive()).default([60, 10]),
    /** Largest websocket message; an Ogg page is at most ~64 KiB. Larger ones get an error and 1009. */
    maxMessageBytes: z.number().int().min(1024).default(128 * 1024),
    /** How far a client's audio may run ahead of real time (bursts after network stalls) before it is refused. */
    maxAudioLeadSeconds: z.number().positive().default(5),
    /** Websocket pings to clients; a client that misses pongs this long has stopped reading and is dropped. */
    clientPingIntervalSeconds: z.number().positive().default(5),
    clientPongTimeoutSeconds: z.number().positive().default(20),
    /** Reply audio queued for a client that stopped reading, before it is dropped (~60 s of Opus). */
    clientMaxBufferedBytes: z.number().int().min(1024).default(256 * 1024),
    /** Client audio queued for a worker that stopped reading, before the worker is called stalled. */
    workerMaxBufferedBytes: z.number().int().min(1024).default(256 * 1024),
    /** A worker must send its handshake within this time of the connection (Moshi resets its state first). */
    workerHandshakeTimeoutSeconds: z.number().positive().default(30),
    /**
     * A worker without a health endpoint (Kyutai's server) that says nothing this long after the
     * upgrade is busy with another client: a free one sends its handshake within milliseconds.
     */
    workerBusyAfterSeconds: z.number().positive().default(2),
    /** Websocket pings to the worker; a worker that misses pongs this long is stalled. */
    workerPingIntervalSeconds: z.number().positive().default(5),
    workerStallTimeoutSeconds: z.number().positive().default(15),
    /** A live conversation whose client sends nothing for this long is ended. */
    clientIdleTimeoutSeconds: z.number().positive().default(30),
    /** Attempts to connect a conversation to a worker before giving up. */
    connectAttempts: z.number().int().min(1).default(3),

    // Access control (docs/security.md).
    /** Web origins (scheme://host[:port]) other than the gateway's own whose pages may open conversations; "*" allows any. */
    allowedOrigins: z.array(z.string().refine(isOriginPattern, 'must be an origin such as https://chat.example.com, or "*"')).default([]),
    /** Keys that open conversations and read /health and /metrics; with none (and no token secret) the gateway is open. */
    apiKeys: z.array(z.string().regex(CREDENTIAL_CHARS, 'API keys are 16+ characters of A–Z, a–z, 0–9, "-", "_", "." or "~" (they travel in URLs and subprotocols)')).default([]),
    /** HMAC secrets for conversation tokens; the first signs, all verify (rotation). */
    tokenSecrets: z.array(z.string().min(32, 'a token secret needs at least 32 characters (e.g. `openssl rand -hex 32`)')).default([]),
    /** Reverse proxies whose X-Forwarded-For / X-Forwarded-Host are believed (addresses or CIDR ranges). */
    trustedProxies: z.array(z.string().refine(isAddressOrRange, 'must be an IP address or a CIDR range such as 10.0.0.0/8')).default([]),
    /** Open TCP connections from one address (0: no limit). Trusted proxies are exempt. */
    maxConnectionsPerAddress: z.number().int().min(0).default(32),
    /** Conversations from one address waiting for a worker at once (0: no limit). */
    maxQueuedPerAddress: z.number().int().min(0).default(4),
    /** New conversations one address may open per minute (0: no limit). */
    maxNewConversationsPerMinute: z.number().int().min(0).default(20),
    /** A request (a websocket upgrade included) must arrive complete this long after its connection opened. */
    requestTimeoutSeconds: z.number().positive().default(5),
    /** On SIGTERM/SIGINT: how long live conversations may go on (warned with ending_soon) before they are closed. */
    drainSeconds: z.number().min(0).default(20),
  })
  .strict()
  .refine((s) => !!s.tlsCert === !!s.tlsKey, { message: 'tlsCert and tlsKey go together: give both files, or neither', path: ['tlsKey'] });

export type GatewaySettings = z.infer<typeof GatewaySettingsSchema>;
