/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): the endpoint
 * behind `sb.createConnectToken()`. Modal documents (guide "Sandbox
 * networking and security"): the returned URL accepts HTTP and websocket
 * requests that carry the token as `Authorization: Bearer <token>` or as the
 * `_modal_connect_token` query parameter; it forwards them to the token's
 * container port (8080 unless `port` was given); the server there receives an
 * `X-Verified-User-Data` header holding the token's user metadata, which a
 * client cannot forge. Here:
 *   no token → 401; unknown token or refused address → 403;
 *   sandbox not running or nothing listening on the port → 502.
 * The token is removed from the forwarded request (stand-in choice; Modal does
 * not document it). Tokens stay valid while their sandbox lives.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { InboundFilter } from './inbound.js';

export interface ConnectTarget {
  targetPort(containerPort: number): number | undefined;
  inbound: InboundFilter;
  connectionOpened(): void;
  connectionClosed(): void;
}

interface Grant {
  sandboxId: string;
  containerPort: number;
  userMetadata: string;
}

type Decision = { ok: true; sandboxId: string; port: number; path: string; headers: [string, string][]; target: ConnectTarget } | { ok: false; status: number; message: string };

const TOKEN_PARAM = '_modal_connect_token';
const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 502: 'Bad Gateway' };

export class ConnectProxy {
  readonly #grants = new Map<string, Grant>();
  /** Per sandbox: how to cut each connection open through the proxy. */
  readonly #open = new Map<string, Set<() => void>>();
  #server?: Server;
  #port = 0;
  /** Requests refused, by status: tests check a refusal really reached the proxy. */
  readonly refusals = new Map<number, number>();

  constructor(private readonly lookup: (sandboxId: string) => ConnectTarget | undefined) {}

  async listen(tls: { key: string; cert: string }): Promise<void> {
    const server = createHttpsServer({ key: tls.key, cert: tls.cert });
    server.on('request', (req, res) => {
      const decision = this.#decide(req);
      if (!decision.ok) {
        this.#count(decision.status);
        res.writeHead(decision.status, { 'content-type': 'text/plain', ...(decision.status === 401 ? { 'www-authenticate': 'Bearer' } : {}) });
        return void res.end(`${decision.message}\n`);
      }
      const { target } = decision;
      target.connectionOpened();
      const cut = () => res.destroy();
      const untrack = this.#track(decision.sandboxId, cut);
      res.once('close', () => {
        untrack();
        target.connectionClosed();
      });
      const headers: OutgoingHttpHeaders = {};
      for (const [name, value] of decision.headers) {
        const prev = headers[name];
        headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
      }
      const upstream = httpRequest({ host: '127.0.0.1', port: decision.port, method: req.method, path: decision.path, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.headers as IncomingHttpHeaders);
        upRes.pipe(res);
      });
      upstream.on('error', () => {
        if (res.headersSent) return void res.destroy();
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('Bad Gateway: nothing answers on the sandbox port\n');
      });
      req.pipe(upstream);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  issue(sandboxId: string, containerPort: number, userMetadata: string): string {
    const token = randomBytes(24).toString('base64url');
    this.#grants.set(token, { sandboxId, containerPort, userMetadata });
    return token;
  }

  revokeSandbox(sandboxId: string): void {
    for (const [token, grant] of this.#grants) if (grant.sandboxId === sandboxId) this.#grants.delete(token);
  }

  #count(status: number): void {
    this.refusals.set(status, (this.refusals.get(status) ?? 0) + 1);
  }

  #decide(req: IncomingMessage): Decision {
    const url = new URL(req.url ?? '/', 'http://connect');
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const token = bearer ?? url.searchParams.get(TOKEN_PARAM) ?? undefined;
    if (!token) return { ok: false, status: 401, message: 'Missing connect token: send "Authorization: Bearer <token>" or ?_modal_connect_token=<token>' };
    const grant = this.#grants.get(token);
    if (!grant) return { ok: false, status: 403, message: 'Invalid connect token' };
    const target = this.lookup(grant.sandboxId);
    if (!target) return { ok: false, status: 403, message: 'Invalid connect token' };
    if (!target.inbound(req.socket.remoteAddress)) return { ok: false, status: 403, message: 'Address not in the sandbox inbound allowlist' };
    const port = target.targetPort(grant.containerPort);
    if (port === undefined) return { ok: false, status: 502, message: `Sandbox ${grant.sandboxId} is not serving port ${grant.containerPort}` };
    url.searchParams.delete(TOKEN_PARAM);
    const headers: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      const lower = name.toLowerCase();
      if (lower === 'x-verified-user-data') continue;
      if (lower === 'authorization' && bearer !== undefined) continue;
      headers.push([name, req.rawHeaders[i + 1]!]);
    }
    if (grant.userMetadata) headers.push(['X-Verified-User-Data', grant.userMetadata]);
    return { ok: true, sandboxId: grant.sandboxId, port, path: `${url.pathname}${url.search}`, headers, target };
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const decision = this.#decide(req);
    if (!decision.ok) {
      this.#count(decision.status);
      const body = `${decision.message}\n`;
      return void socket.end(`HTTP/1.1 ${decision.status} ${STATUS_TEXT[decision.status]}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
    const { target } = decision;
    const upstream: Socket = connect(decision.port, '127.0.0.1');
    upstream.on('error', () => undefined);
    target.connectionOpened();
    const untrack = this.#track(decision.sandboxId, () => upstream.destroy());
    let connected = false;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      untrack();
      if (!connected && socket.writable) socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      else socket.destroy();
      upstream.destroy();
      target.connectionClosed();
    };
    upstream.once('connect', () => {
      connected = true;
      const lines = [`${req.method} ${decision.path} HTTP/${req.httpVersion}`, ...decision.headers.map(([k, v]) => `${k}: ${v}`)];
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('close', end);
    socket.on('close', end);
  }

  #track(sandboxId: string, cut: () => void): () => void {
    let set = this.#open.get(sandboxId);
    if (!set) this.#open.set(sandboxId, (set = new Set()));
    set.add(cut);
    return () => set.delete(cut);
  }

  /** The sandbox stopped: its connections through the proxy end with it, as its tunnels' do. */
  cutSandbox(sandboxId: string): void {
    for (const cut of this.#open.get(sandboxId) ?? []) cut();
    this.#open.delete(sandboxId);
  }

  async close(): Promise<void> {
    for (const sandboxId of [...this.#open.keys()]) this.cutSandbox(sandboxId);
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
