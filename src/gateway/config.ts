/** Gateway settings. Pool settings live with the pool (src/pool/config.ts). */
import { z } from 'zod';

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
    /** Websocket pings to the worker; a worker that misses pongs this long is stalled. */
    workerPingIntervalSeconds: z.number().positive().default(5),
    workerStallTimeoutSeconds: z.number().positive().default(15),
    /** A live conversation whose client sends nothing for this long is ended. */
    clientIdleTimeoutSeconds: z.number().positive().default(30),
    /** Attempts to connect a conversation to a worker before giving up. */
    connectAttempts: z.number().int().min(1).default(3),
  })
  .strict()
  .refine((s) => !!s.tlsCert === !!s.tlsKey, { message: 'tlsCert and tlsKey go together: give both files, or neither', path: ['tlsKey'] });

export type GatewaySettings = z.infer<typeof GatewaySettingsSchema>;
