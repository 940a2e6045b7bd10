/**
 * Per-address limits and slow clients: a client dribbling its upgrade request
 * is cut, one address cannot hold more than its share of connections or of
 * the queue, nor open conversations faster than its allowance; behind a
 * trusted proxy each forwarded client is counted on its own.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { eventually, type TestGateway } from '../helpers/gateway.js';
import { connectClient, isEvent, isHandshake } from '../helpers/ws-client.js';
import { expectRefusal, metric, rawSocket, UPGRADE_REQUEST, useMarkedGateways } from './helpers.js';

const { start: startGateway } = useMarkedGateways();
let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe('slow and greedy clients', () => {
  it('cuts upgrade requests sent one byte at a time, well before the 60 s Node allows by default', async () => {
    gw = await startGateway({ gateway: { requestTimeoutSeconds: 2, maxConnectionsPerAddress: 0 } });
    const request = UPGRADE_REQUEST();
    const clients = Array.from({ length: 100 }, () => {
      const client = rawSocket(gw!.gateway.port);
      let sent = 0;
      const drip = setInterval(() => sent < request.length && client.socket.write(request[sent++]), 370);
      void client.closed.then(() => clearInterval(drip));
      return client;
    });
    // The request needs about 60 s at this pace; a gateway that waits for it fails the deadline.
    await Promise.race([
      Promise.all(clients.map((c) => c.closed)),
      new Promise((_, reject) => setTimeout(() => reject(new Error('slow upgrade requests were kept open')), 40_000)),
    ]);
    for (const c of clients) expect(c.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout[\s\S]*did not arrive within 2 s/);
    expect(await metric(gw.httpUrl, 'quillman_refusals_total', { reason: 'slow_request' })).toBe(100);
  }, 60_000);

  it('refuses connections beyond the per-address limit with 429, and takes new ones once some close', async () => {
    gw = await startGateway({ gateway: { maxConnectionsPerAddress: 5, requestTimeoutSeconds: 30 } });
    const held = Array.from({ length: 5 }, () => rawSocket(gw!.gateway.port));
    // Each is connected (the refused one answers at once, the held ones stay silent).
    await Promise.all(held.map((c) => new Promise((r) => c.socket.once('connect', r))));
    const extra = rawSocket(gw.gateway.port);
    await extra.closed;
    expect(extra.received()).toMatch(/^HTTP\/1\.1 429 Too Many Requests[\s\S]*the limit is 5/);
    for (const c of held) c.socket.destroy();
    await Promise.all(held.map((c) => c.closed));
    // Room again: the metrics request itself gets through.
    expect(await eventually(() => metric(gw!.httpUrl, 'quillman_refusals_total', { reason: 'too_many_connections' }), 10_000, 'room for a new connection')).toBe(1);
  });

  it("refuses a caller when its address's share of the queue is taken, and serves it later", async () => {
    gw = await startGateway({ pool: { warm: 1, maxWorkers: 1, maxQueue: 10 }, gateway: { maxQueuedPerAddress: 2 } });
    const first = connectClient(gw.chatUrl);
    await first.waitFor(isHandshake);
    const waiting = [connectClient(gw.chatUrl), connectClient(gw.chatUrl)];
    await Promise.all(waiting.map((c) => c.waitFor(isEvent('queue'))));
    const third = connectClient(gw.chatUrl);
    expectRefusal(await third.closed, third.errors(), CloseCode.TooManyRequests, /already waiting for a worker \(the limit is 2\)/);
    expect(await metric(gw.httpUrl, 'quillman_refusals_total', { reason: 'too_many_queued' })).toBe(1);
    expect(await metric(gw.httpUrl, 'quillman_sessions_total', { outcome: 'too_many_queued' })).toBe(1);
    // One leaves the line: its place is free for the same address again.
    waiting[0].ws.close(1000);
    await waiting[0].closed;
    const again = connectClient(gw.chatUrl);
    await again.waitFor(isEvent('queue'));
    first.ws.close(1000);
    await waiting[1].waitFor(isHandshake, 20_000);
    waiting[1].ws.close(1000);
    await again.waitFor(isHandshake, 20_000);
    again.ws.close(1000);
    await again.closed;
  });

  it('limits new conversations per minute per address, and says when to come back', async () => {
    gw = await startGateway({ pool: { warm: 1, maxWorkers: 1 }, gateway: { maxNewConversationsPerMinute: 3 } });
    for (let i = 0; i < 3; i++) {
      const client = connectClient(gw.chatUrl);
      await client.waitFor(isHandshake, 20_000);
      client.ws.close(1000);
      await client.closed;
    }
    const fourth = connectClient(gw.chatUrl);
    expectRefusal(await fourth.closed, fourth.errors(), CloseCode.TooManyRequests, /Too many new conversations from your address; try again in \d+ s/);
    expect(await metric(gw.httpUrl, 'quillman_refusals_total', { reason: 'rate_limited' })).toBe(1);
  });

  it('behind a trusted proxy, counts each forwarded client on its own', async () => {
    gw = await startGateway({ pool: { warm: 1, maxWorkers: 1 }, gateway: { maxNewConversationsPerMinute: 1, trustedProxies: ['127.0.0.1'] } });
    const via = (client: string) => ({ headers: { 'x-forwarded-for': client } });
    for (const address of ['203.0.113.7', '203.0.113.8', '2001:db8:1:2::5']) {
      const client = connectClient(gw.chatUrl, via(address));
      await client.waitFor(isHandshake, 20_000);
      client.ws.close(1000);
      await client.closed;
    }
    // The same client again, and another address of the same IPv6 /64: over the allowance.
    for (const address of ['203.0.113.7', '2001:db8:1:2::9']) {
      const again = connectClient(gw.chatUrl, via(address));
      expectRefusal(await again.closed, again.errors(), CloseCode.TooManyRequests, /Too many new conversations/);
    }
  });
});
