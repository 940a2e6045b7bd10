/**
 * The gateway: serves the web app and one websocket per conversation, each
 * relayed to a worker of its own from the pool.
 *
 *   GET /api/chat  Moshi protocol websocket
 *   GET /ws        the same, also accepting bare Ogg pages (original QuiLLMan browser)
 *   GET /health    readiness, with the pool's state
 *   GET /metrics   Prometheus text
 */
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { WebSocket } from 'ws';
import type { WorkerPool } from '../pool/types.js';
import { urlHost } from '../pool/urls.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { Logger } from '../util/logger.js';
import type { GatewaySettings } from './config.js';
import { GatewayConversation } from './conversation.js';
import { createMetrics, type GatewayMetrics } from './metrics.js';
import { placeholderPage } from './placeholder.js';

export interface GatewayOptions {
  settings: GatewaySettings;
  pool: WorkerPool;
  log: Logger;
  /** Shown on the placeholder page and in /health, e.g. "loopback (test engine)". */
  engineLabel?: string;
}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly port: number;
  readonly url: string;
  readonly metrics: GatewayMetrics;
  /** Live and queued conversations. */
  conversations(): number;
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { settings, pool, log } = options;
  const metrics = createMetrics(pool);
  pool.registerMetrics?.(metrics.registry);
  /** Live and queued conversations, by the socket each one runs on. */
  const conversations = new Map<WebSocket, GatewayConversation>();
  // Fastify's own request log is noise next to the conversation log; errors still surface through `log`.
  const app = Fastify({ logger: false, https: readTls(settings) });

  await app.register(fastifyWebsocket, {
    // The hard cap sits above our own limit so an oversized message gets a reasoned error from us, not a bare 1009.
    options: { maxPayload: settings.maxMessageBytes * 2, perMessageDeflate: false, clientTracking: false },
  });

  const staticDir = settings.staticDir ? resolve(settings.staticDir) : undefined;
  const hasApp = !!staticDir && existsSync(resolve(staticDir, 'index.html'));
  if (hasApp) {
    await app.register(fastifyStatic, { root: staticDir!, index: 'index.html', cacheControl: true, maxAge: '1h', immutable: false });
  } else {
    app.get('/', (_req, reply) => reply.type('text/html; charset=utf-8').send(placeholderPage(options.engineLabel)));
  }

  const chat = (legacy: boolean) => (socket: WebSocket, req: { url: string }) => {
    const conversation = new GatewayConversation(socket, new URL(req.url, 'http://gateway'), legacy, { pool, settings, metrics, log });
    conversations.set(socket, conversation);
    socket.once('close', () => conversations.delete(socket));
    conversation.run().catch((err) => {
      log.error({ err, session: conversation.id }, 'conversation failed');
      socket.terminate();
    });
  };
  app.get('/api/chat', { websocket: true }, chat(false));
  app.get('/ws', { websocket: true }, chat(true));

  app.get('/health', (_req, reply) => {
    const snapshot = pool.snapshot();
    const ready = snapshot.workers.some((w) => w.state === 'idle' || w.state === 'busy' || w.state === 'resetting');
    reply.code(ready ? 200 : 503).send({
      status: ready ? 'ok' : 'starting',
      engine: options.engineLabel,
      conversations: conversations.size,
      pool: snapshot,
    });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  await app.listen({ host: settings.host, port: settings.port });
  const port = (app.server.address() as AddressInfo).port;
  const url = `${settings.tlsCert ? 'https' : 'http'}://${urlHost(settings.host)}:${port}`;
  log.info({ url, app: hasApp ? staticDir : 'placeholder' }, 'gateway listening');

  return {
    app,
    port,
    url,
    metrics,
    conversations: () => conversations.size,
    async close() {
      for (const socket of conversations.keys()) socket.close(CloseCode.GoingAway, 'gateway shutting down');
      await app.close();
    },
  };
}

function readTls(settings: GatewaySettings): { cert: Buffer; key: Buffer } | null {
  if (!settings.tlsCert || !settings.tlsKey) return null;
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  return { cert: read(settings.tlsCert, 'certificate'), key: read(settings.tlsKey, 'key') };
}
