/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): a sandbox's
 * tunnel for one exposed port. Like Modal's, it forwards bytes, whatever the
 * protocol: an encrypted port terminates TLS (the stand-in's certificate) and
 * forwards the plain stream; an unencrypted one forwards raw TCP. Tunnels are
 * public: no credential is checked, only the inbound CIDR allowlist. A
 * connection to a port nothing listens on (yet) is closed at once.
 */
import { connect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { InboundFilter } from './inbound.js';

export interface TunnelHooks {
  allowed: InboundFilter;
  /** A client connection began or ended (idle-timeout accounting). */
  opened(): void;
  closed(): void;
}

export interface TunnelSpec {
  containerPort: number;
  encrypted: boolean;
  /** Loopback port to forward to, or undefined when the sandbox serves nothing on this container port. */
  targetPort: number | undefined;
  tls: { key: string; cert: string };
  hooks: TunnelHooks;
}

export const TUNNEL_HOST = '127.0.0.1';

export class Tunnel {
  readonly #sockets = new Set<Socket>();

  private constructor(
    readonly containerPort: number,
    readonly encrypted: boolean,
    readonly port: number,
    private readonly server: Server,
  ) {}

  static async open(spec: TunnelSpec): Promise<Tunnel> {
    let tunnel: Tunnel | undefined;
    const onClient = (client: Socket) => tunnel?.forward(client, spec);
    const server = spec.encrypted ? createTlsServer({ key: spec.tls.key, cert: spec.tls.cert }, onClient) : createTcpServer(onClient);
    // A client that fails its TLS handshake is its own problem, not the tunnel's.
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, TUNNEL_HOST, () => resolve());
    });
    tunnel = new Tunnel(spec.containerPort, spec.encrypted, (server.address() as AddressInfo).port, server);
    return tunnel;
  }

  private forward(client: Socket, spec: TunnelSpec): void {
    client.on('error', () => undefined);
    if (!spec.hooks.allowed(client.remoteAddress) || spec.targetPort === undefined) return void client.destroy();
    const upstream = connect(spec.targetPort, '127.0.0.1');
    upstream.on('error', () => undefined);
    this.#sockets.add(client).add(upstream);
    spec.hooks.opened();
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
      spec.hooks.closed();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Cuts every connection (the sandbox is gone) and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
