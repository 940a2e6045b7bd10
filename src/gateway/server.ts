/**
 * The gateway: serves the web app and one websocket per conversation, each
 * relayed to a worker of its own from the pool.
 *
 *   GET /api/chat      Moshi protocol websocket
 *   GET /ws            the same, also accepting bare Ogg pages (original QuiLLMan browser)
 *   GET /health/live   liveness (also /livez)
 *   GET /health/ready  readiness: 503 while starting, degraded or draining (also /readyz)
 *   GET /health        the full view: status and why, conversations, the pool's state
 *   GET /metrics       Prometheus text
 *
 * Who may connect is decided in ./access (docs/security.md).
 */
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { BlockList, isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import WebSocket from 'ws';
import type { WorkerPool } from '../pool/types.js';
import { urlHost } from '../pool/urls.js';
import { CloseCode, closeReason } from '../protocol/close-codes.js';
import { encodeError, encodeMetadata } from '../protocol/frames.js';
import type { Logger } from '../util/logger.js';
import { AccessControl, type Refusal } from './access/access-control.js';
import { AddressLimits, addressKey } from './access/address-limits.js';
import { AUTH_QUERY_PARAM } from '../protocol/auth.js';
import { chooseSubprotocol } from './access/credentials.js';
import { loadBuildInfo } from './build-info.js';
import type { GatewaySettings } from './config.js';
import { GatewayConversation } from './conversation.js';
import { monitorEventLoop } from './event-loop.js';
import { GatewayHealth } from './health.js';
import { httpServerFactory } from './http-server.js';
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
  /** Live and queued conversations (not those already ended whose sockets are still closing). */
  conversations(): number;
  /**
   * Stops taking conversations (readiness turns 503), tells callers still
   * waiting to reconnect elsewhere, warns live ones with `ending_soon`, and
   * resolves once every conversation has ended, closing those left after
   * `graceSeconds` (default: the drainSeconds setting).
   */
  drain(graceSeconds?: number): Promise<void>;
  /** Closes every conversation at once and stops listening. */
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { settings, pool, log } = options;
  const metrics = createMetrics(pool);
  const conversations = new Set<GatewayConversation>();
  const limits = new AddressLimits({
    maxConnections: settings.maxConnectionsPerAddress,
    maxQueued: settings.maxQueuedPerAddress,
    perMinute: settings.maxNewConversationsPerMinute,
  });
  const access = new AccessControl(settings, limits);
  const proxies = trustedProxyList(settings.trustedProxies);
  const loop = monitorEventLoop(metrics.eventLoopDelay, metrics.eventLoopStalls);
  let draining: Promise<void> | undefined;
  const health = new GatewayHealth(pool, () => draining !== undefined);

  // Fastify's own request log is noise next to the conversation log; errors still surface through `log`.
  const app = Fastify({
    logger: false,
    serverFactory: httpServerFactory({
      tls: readTls(settings),
      requestTimeoutMs: settings.requestTimeoutSeconds * 1000,
      limits,
      maxConnectionsPerAddress: settings.maxConnectionsPerAddress,
      isTrustedProxy: (address) => isTrusted(proxies, address),
      onRefused: (reason) => metrics.refusals.labels(reason).inc(),
    }),
    trustProxy: settings.trustedProxies.length > 0 ? settings.trustedProxies : false,
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') metrics.refusals.labels('slow_request').inc();
      if (socket.destroyed || err.code === 'ECONNRESET') return;
      const [status, text] =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['408 Request Timeout', `The request did not arrive within ${settings.requestTimeoutSeconds} s.\n`]
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? ['431 Request Header Fields Too Large', 'The request headers are too large.\n']
            : ['400 Bad Request', 'The request is not valid HTTP.\n'];
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    },
  });
  app.server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') metrics.refusals.labels('slow_request').inc();
  });
  pool.registerMetrics?.(metrics.registry);

  await app.register(fastifyWebsocket, {
    // The hard cap sits above our own limit so an oversized message gets a reasoned error from us, not a bare 1009.
    options: {
      maxPayload: settings.maxMessageBytes * 2,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (offered: Set<string>) => chooseSubprotocol(offered),
    },
  });

  const staticDir = settings.staticDir ? resolve(settings.staticDir) : undefined;
  const hasApp = !!staticDir && existsSync(resolve(staticDir, 'index.html'));
  if (hasApp) {
    await app.register(fastifyStatic, { root: staticDir!, index: 'index.html', cacheControl: true, maxAge: '1h', immutable: false });
  } else {
    app.get('/', (_req, reply) => reply.type('text/html; charset=utf-8').send(placeholderPage(options.engineLabel)));
  }

  /** Turns a websocket away with the reason as an event, a kind-5 frame and the close; counted. */
  function refuse(socket: WebSocket, refusal: Refusal): void {
    metrics.refusals.labels(refusal.reason).inc();
    log.info({ refused: refusal.reason, code: refusal.code }, refusal.message);
    socket.send(encodeMetadata({ type: 'error', code: refusal.reason, message: refusal.message }));
    socket.send(encodeError(refusal.message));
    socket.close(refusal.code, closeReason(refusal.message));
    // A client that never answers the close is cut, so a refused socket holds nothing for long.
    setTimeout(() => socket.terminate(), 2000).unref();
  }

  const chat = (legacy: boolean) => (socket: WebSocket, req: FastifyRequest) => {
    if (draining) {
      return refuse(socket, { reason: 'draining', code: CloseCode.TryAgainLater, message: 'The server is restarting and takes no new conversations. Reconnect in a moment.' });
    }
    const url = new URL(req.url, 'http://gateway');
    const key = addressKey(req.ip);
    const decision = access.admit({ headers: req.headers, query: url.searchParams, addressKey: key, host: req.host });
    if (!decision.ok) return refuse(socket, decision.refusal);
    // The credential is for us; workers never see it.
    url.searchParams.delete(AUTH_QUERY_PARAM);
    const grant = decision.grant;
    const conversation = new GatewayConversation(socket, url, legacy, { pool, settings, metrics, log, limits, engineLabel: options.engineLabel }, {
      addressKey: key,
      maxSeconds: grant.kind === 'token' ? grant.claims.maxSeconds : undefined,
      subject: grant.kind === 'token' ? grant.claims.sub : undefined,
    });
    conversations.add(conversation);
    conversation.onFinished(() => conversations.delete(conversation));
    conversation.run().catch((err) => {
      log.error({ err, session: conversation.id }, 'conversation failed');
      socket.terminate();
    });
  };
  app.get('/api/chat', { websocket: true }, chat(false));
  app.get('/ws', { websocket: true }, chat(true));

  const live = (_req: FastifyRequest, reply: FastifyReply) => reply.send({ status: 'live', uptimeSeconds: Math.round(process.uptime()) });
  const ready = async (_req: FastifyRequest, reply: FastifyReply) => {
    const { status, reasons } = await health.assess();
    reply.code(status === 'ok' ? 200 : 503).send({ status: status === 'ok' ? 'ready' : status, reasons });
  };
  app.get('/health/live', live);
  app.get('/livez', live);
  app.get('/health/ready', ready);
  app.get('/readyz', ready);

  /** The full view and the metrics show worker addresses and load: with API keys set, only key holders see them. */
  const internal = (req: FastifyRequest, reply: FastifyReply): boolean => {
    if (access.mayReadInternals(req.headers)) return true;
    reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: 'Send an API key as "Authorization: Bearer <key>". /health/live and /health/ready need none.' });
    return false;
  };

  app.get('/health', async (req, reply) => {
    if (!internal(req, reply)) return;
    const { status, reasons, pool: snapshot } = await health.assess();
    reply.code(status === 'ok' ? 200 : 503).send({
      status,
      reasons,
      engine: options.engineLabel,
      conversations: conversations.size,
      waiting: snapshot.queued,
      eventLoop: loop.summary(),
      access: { auth: access.authRequired, allowedOrigins: settings.allowedOrigins },
      pool: snapshot,
    });
  });

  app.get('/metrics', async (req, reply) => {
    if (!internal(req, reply)) return;
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  // Before the first caller: reading it runs git, which must not hold up a live relay.
  await loadBuildInfo();
  await app.listen({ host: settings.host, port: settings.port });
  const port = (app.server.address() as AddressInfo).port;
  const url = `${settings.tlsCert ? 'https' : 'http'}://${urlHost(settings.host)}:${port}`;
  log.info({ url, app: hasApp ? staticDir : 'placeholder' }, 'gateway listening');
  for (const warning of exposureWarnings(settings, access.authRequired)) log.warn(warning);

  let closing: Promise<void> | undefined;
  const closeAll = () =>
    (closing ??= (async () => {
      for (const c of conversations) c.drain(0);
      loop.stop();
      limits.dispose();
      await app.close();
    })());

  return {
    app,
    port,
    url,
    metrics,
    conversations: () => conversations.size,
    drain(graceSeconds = settings.drainSeconds) {
      draining ??= (async () => {
        const open = [...conversations];
        log.info({ conversations: open.length, graceSeconds }, 'draining: no new conversations; live ones end within the grace period');
        for (const c of open) c.drain(graceSeconds);
        await Promise.all(open.map((c) => new Promise<void>((r) => c.onFinished(r))));
      })();
      return draining;
    },
    async close() {
      draining ??= Promise.resolve();
      await closeAll();
    },
  };
}

/** Loopback addresses only: anything else can be reached from elsewhere. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** What the start-up log must say about exposure: nothing on loopback; beyond it, missing credentials and missing TLS. */
export function exposureWarnings(settings: Pick<GatewaySettings, 'host' | 'tlsCert'>, authRequired: boolean): string[] {
  if (isLoopbackHost(settings.host)) return [];
  const warnings: string[] = [];
  if (!authRequired) {
    warnings.push(
      `The gateway listens on ${settings.host}, beyond this machine, WITHOUT authentication: anyone who can reach it can use its workers. ` +
        'Set --api-keys or --token-secret (QUILLMAN_API_KEYS / QUILLMAN_TOKEN_SECRET); see docs/security.md.',
    );
  }
  if (!settings.tlsCert) {
    warnings.push('No TLS: browsers only allow the microphone on https pages beyond localhost, and credentials travel in the clear. Set --tls-cert and --tls-key, or put a TLS proxy in front.');
  }
  return warnings;
}

function trustedProxyList(entries: string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/');
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix !== undefined) list.addSubnet(address, Number(prefix), type);
    else list.addAddress(address, type);
  }
  return list;
}

function isTrusted(list: BlockList, address: string): boolean {
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  try {
    return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
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
