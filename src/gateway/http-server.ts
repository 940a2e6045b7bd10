/**
 * The gateway's HTTP(S) server, made here rather than by Fastify so that the
 * slow-client defences are set where Node applies them:
 *
 * - a request (a websocket upgrade included) must arrive complete within
 *   `requestTimeoutSeconds` of its connection, checked every half second
 *   (Node's default headers timeout is 60 s, checked every 30 s: a client
 *   sending one byte every few hundred ms kept its socket a minute);
 * - a TLS handshake gets the same time (Node's default is 120 s);
 * - an address holding its share of connections gets HTTP 429 and is cut
 *   before any parsing. Trusted reverse proxies are exempt: they carry many
 *   clients, each counted on its own by the conversation limits.
 */
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { addressKey, type AddressLimits } from './access/address-limits.js';

export interface HttpServerOptions {
  tls: { cert: Buffer; key: Buffer } | null;
  requestTimeoutMs: number;
  limits: AddressLimits;
  maxConnectionsPerAddress: number;
  isTrustedProxy(address: string): boolean;
  onRefused(reason: 'too_many_connections'): void;
}

/** How often Node looks for requests past their time. */
const CHECK_INTERVAL_MS = 500;

export function httpServerFactory(options: HttpServerOptions) {
  return (handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>): Server => {
    const timeouts = {
      headersTimeout: options.requestTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
      keepAliveTimeout: 5000,
    };
    const server: Server = options.tls
      ? createHttpsServer({ ...timeouts, cert: options.tls.cert, key: options.tls.key, handshakeTimeout: options.requestTimeoutMs }, handler)
      : createHttpServer(timeouts, handler);
    server.on('connection', (socket: Socket) => {
      const address = socket.remoteAddress ?? '';
      if (options.isTrustedProxy(address)) return;
      const key = addressKey(address);
      if (!options.limits.openConnection(key)) {
        options.onRefused('too_many_connections');
        refuseConnection(socket, options.tls !== null, options.maxConnectionsPerAddress);
        return;
      }
      socket.once('close', () => options.limits.closeConnection(key));
    });
    return server;
  };
}

function refuseConnection(socket: Socket, tls: boolean, limit: number): void {
  socket.on('error', () => undefined);
  // Under TLS nothing readable can be said before the handshake; the cut itself is the answer.
  if (tls) return void socket.destroy();
  const body = `Too many open connections from your address (the limit is ${limit}). Close some and try again.\n`;
  socket.end(`HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), 1000).unref();
}
