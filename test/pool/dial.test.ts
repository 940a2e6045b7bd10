/**
 * The dial seam through a real gateway: the gateway connects to a worker with
 * the URL and headers the provider gives for each lease, and a lease that
 * cannot be dialled ends the conversation with a reason, not a crash.
 */
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { GatewaySettingsSchema } from '../../src/gateway/config.js';
import { startGateway } from '../../src/gateway/server.js';
import { createPool, type PoolConfigInput } from '../../src/pool/index.js';
import { PROVIDERS } from '../../src/pool/registry.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { encodeFrame } from '../../src/protocol/frames.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestGateway } from '../helpers/gateway.js';
import { connectClient, isHandshake } from '../helpers/ws-client.js';
import { MemoryHost, memoryProvider } from './contract/memory-host.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Stand-in for a worker behind an authenticating proxy: refuses an upgrade without its key (HTTP 401), then opens like Kyutai's Python server. */
async function guardedWorker(key: string) {
  const upgrades: IncomingMessage['headers'][] = [];
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    path: '/api/chat',
    verifyClient: ({ req }, done) => {
      upgrades.push(req.headers);
      if (req.headers['x-worker-key'] === key) done(true);
      else done(false, 401, 'Unauthorized');
    },
  });
  await once(wss, 'listening');
  wss.on('connection', (ws) => ws.send(encodeFrame({ kind: 'handshake', protocolVersion: 0, modelVersion: 0 })));
  cleanups.push(() => new Promise((r) => wss.close(() => r())));
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/api/chat`, upgrades };
}

describe('dialling a worker through the gateway', () => {
  it("connects with the headers the provider gives for the lease; without them the worker's guard refuses", async () => {
    const worker = await guardedWorker('secret-1');
    const gw = await startTestGateway({ pool: { provider: 'remote', remote: { urls: [{ url: worker.url, headers: { 'x-worker-key': 'secret-1' } }] } } });
    cleanups.push(() => gw.close());
    const client = connectClient(gw.chatUrl);
    await client.waitFor(isHandshake);
    expect(worker.upgrades.at(-1)?.['x-worker-key']).toBe('secret-1');
    client.ws.close(1000);
    await client.closed;

    const bare = await startTestGateway({ pool: { provider: 'remote', remote: { urls: [worker.url] } } });
    cleanups.push(() => bare.close());
    const refused = connectClient(bare.chatUrl);
    const closed = await refused.closed;
    expect(closed.code).toBe(CloseCode.TryAgainLater);
    expect(refused.errors().join()).toMatch(/No worker accepted the conversation/);
    expect(worker.upgrades.at(-1)?.['x-worker-key']).toBeUndefined();
  });

  it('ends the conversation with a reason when the provider cannot give dial information, and replaces the worker', async () => {
    const host = new MemoryHost({ dialError: 'no connect token: the sandbox is gone' });
    const config = { provider: 'memory', maxWorkers: 1, warm: 1, maxQueue: 2, memory: {} } as unknown as PoolConfigInput;
    const pool = createPool(config, silentLogger, { registry: [...PROVIDERS, memoryProvider(() => host)] });
    await pool.start();
    const gateway = await startGateway({ settings: GatewaySettingsSchema.parse({ host: '127.0.0.1', port: 0, connectAttempts: 2 }), pool, log: silentLogger });
    cleanups.push(async () => {
      await gateway.close();
      await pool.close();
    });
    const client = connectClient(`ws://127.0.0.1:${gateway.port}/api/chat`);
    const closed = await client.closed;
    expect(closed.code).toBe(CloseCode.TryAgainLater);
    expect(client.errors().join()).toMatch(/No worker accepted the conversation/);
    // Each failed dial counts against the worker: it is restarted rather than handed out as it is.
    expect(host.started.length).toBeGreaterThanOrEqual(2);
  });
});
