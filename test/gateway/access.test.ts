/**
 * Who may open a conversation: the Origin check (on by default), API keys and
 * signed conversation tokens in each place a client can put them, and the
 * internals (/health, /metrics) behind a key. Every refusal is a close code,
 * a reason, a kind-5 frame and a count in /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/gateway/access/tokens.js';
import { exposureWarnings } from '../../src/gateway/server.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { eventually, type TestGateway } from '../helpers/gateway.js';
import { connectClient, isEvent, isHandshake } from '../helpers/ws-client.js';
import { bearer, expectRefusal, metric, startLoopbackWorker, startTcpRelay, useMarkedGateways, type TcpRelay, type WorkerProcess } from './helpers.js';

const KEY = 'test-key-0123456789abcdef';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const { start: startGateway, marker } = useMarkedGateways();

describe('the Origin check (no credentials configured)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ gateway: { allowedOrigins: ['https://allowed.example'] } });
  });
  afterAll(() => gw?.close());

  async function served(headers: Record<string, string>) {
    const client = connectClient(gw.chatUrl, { headers });
    await client.waitFor(isHandshake);
    client.ws.close(1000);
    await client.closed;
  }

  it('serves clients without an Origin header, pages of its own origin and allowlisted origins', async () => {
    await served({});
    await served({ origin: gw.httpUrl });
    await served({ origin: `http://localhost:${gw.gateway.port}`, host: `localhost:${gw.gateway.port}` });
    await served({ origin: 'https://allowed.example' });
  });

  it('refuses pages of other sites with 4403, a reason and a count', async () => {
    for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${gw.gateway.port + 1}`]) {
      const client = connectClient(gw.chatUrl, { headers: { origin } });
      const closed = await client.closed;
      expectRefusal(closed, client.errors(), CloseCode.Forbidden, /may not open conversations here.*--allowed-origins/);
      expect(client.events()).toContainEqual(expect.objectContaining({ type: 'error', code: 'origin' }));
      expect(client.frames.some(isHandshake)).toBe(false);
    }
    expect(await metric(gw.httpUrl, 'quillman_refusals_total', { reason: 'origin' })).toBe(3);
    expect(gw.gateway.conversations()).toBe(0);
  });
});

describe('API keys and conversation tokens', () => {
  let gw: TestGateway;
  let worker: WorkerProcess;
  let relay: TcpRelay;

  beforeAll(async () => {
    // A real worker behind a TCP relay, so the test sees exactly what the gateway asks of the worker.
    worker = await startLoopbackWorker(marker);
    relay = await startTcpRelay(worker.port);
    gw = await startGateway({
      pool: { provider: 'remote', remote: { urls: [`ws://127.0.0.1:${relay.port}/api/chat`] } },
      gateway: { apiKeys: [KEY], tokenSecrets: [SECRET], allowedOrigins: [] },
    });
    await eventually(() => gw.pool.snapshot().workers.some((w) => w.state === 'idle'), 20_000, 'the worker');
  });
  afterAll(async () => {
    await gw?.close();
    await relay?.close();
    await worker?.stop();
  });

  async function idle() {
    await eventually(() => gw.pool.snapshot().workers.some((w) => w.state === 'idle'), 20_000, 'the worker back');
  }

  async function expectServed(url: string, options: Parameters<typeof connectClient>[1] = {}) {
    await idle();
    const client = connectClient(url, options);
    await client.waitFor(isHandshake);
    client.ws.close(1000);
    await client.closed;
    return client;
  }

  it('refuses a conversation without a credential, or with a wrong one, with 4401', async () => {
    const none = connectClient(gw.chatUrl);
    expectRefusal(await none.closed, none.errors(), CloseCode.Unauthorized, /needs an API key or a conversation token/);
    const wrong = connectClient(gw.chatUrl, { headers: bearer('not-the-key-0123456789') });
    expectRefusal(await wrong.closed, wrong.errors(), CloseCode.Unauthorized, /not valid for this gateway/);
    expect(await metric(gw.httpUrl, 'quillman_refusals_total', { reason: 'no_credential' }, bearer(KEY))).toBe(1);
    expect(await metric(gw.httpUrl, 'quillman_refusals_total', { reason: 'bad_credential' }, bearer(KEY))).toBe(1);
  });

  it('takes an API key from the Authorization header, a subprotocol or the query, and never passes it to the worker', async () => {
    await expectServed(gw.chatUrl, { headers: bearer(KEY) });
    const viaProtocol = await expectServed(gw.chatUrl, { protocols: ['quillman', `quillman.bearer.${KEY}`] } as object);
    // The browser gets back a subprotocol it offered, and not the credential when it offered another.
    expect(viaProtocol.ws.protocol).toBe('quillman');
    const onlyCredential = await expectServed(gw.chatUrl, { protocols: [`quillman.bearer.${KEY}`] } as object);
    expect(onlyCredential.ws.protocol).toBe(`quillman.bearer.${KEY}`);
    await expectServed(`${gw.chatUrl}?token=${KEY}&text_temperature=0.5`);
    const upgrades = relay.requestLines.filter((l) => l.includes('/api/chat'));
    expect(upgrades.length).toBeGreaterThanOrEqual(4);
    expect(upgrades.join('\n')).not.toContain(KEY);
    expect(upgrades.at(-1)).toContain('text_temperature=0.5');
  });

  it('accepts a signed token, and applies its conversation cap', async () => {
    await idle();
    const token = mintToken(SECRET, { ttlSeconds: 60, maxSeconds: 2, sub: 'user-42' });
    const client = connectClient(`${gw.chatUrl}?token=${token}`);
    await client.waitFor(isHandshake);
    const session = (await client.waitFor(isEvent('session'))) as { data: { maxSeconds: number } };
    expect(session.data.maxSeconds).toBe(2);
    const closed = await client.closed;
    expect(closed.code).toBe(CloseCode.TimeLimit);
    expect(client.events()).toContainEqual({ type: 'ended', reason: 'time_limit' });
  });

  it('refuses an expired token, a token signed with another secret and a tampered one', async () => {
    const expired = mintToken(SECRET, { exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 3700 });
    const foreign = mintToken('another-secret-that-is-long-enough-to-sign', { ttlSeconds: 60 });
    const [head, claims, signature] = mintToken(SECRET, { ttlSeconds: 60, maxSeconds: 5 }).split('.');
    const longer = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(claims, 'base64url').toString()), maxSeconds: 5000 })).toString('base64url');
    const cases: [string, RegExp][] = [
      [expired, /token expired \d+ s ago/],
      [foreign, /not signed by this gateway/],
      [`${head}.${longer}.${signature}`, /not signed by this gateway/],
      ['qt1.garbage', /malformed/],
    ];
    for (const [token, message] of cases) {
      const client = connectClient(gw.chatUrl, { headers: bearer(token) });
      expectRefusal(await client.closed, client.errors(), CloseCode.Unauthorized, message);
    }
    expect(await metric(gw.httpUrl, 'quillman_refusals_total', { reason: 'expired_token' }, bearer(KEY))).toBe(1);
  });

  it("lets a token bound to a site's origin in from that origin only", async () => {
    const token = mintToken(SECRET, { ttlSeconds: 60, origin: 'https://shop.example' });
    await expectServed(gw.chatUrl, { headers: { ...bearer(token), origin: 'https://shop.example' } });
    const elsewhere = connectClient(gw.chatUrl, { headers: { ...bearer(token), origin: 'https://evil.example' } });
    expectRefusal(await elsewhere.closed, elsewhere.errors(), CloseCode.Forbidden, /may not open conversations here/);
  });

  it('keeps /health and /metrics for key holders, and liveness and readiness open', async () => {
    expect((await fetch(`${gw.httpUrl}/metrics`)).status).toBe(401);
    expect((await fetch(`${gw.httpUrl}/health`)).status).toBe(401);
    expect((await fetch(`${gw.httpUrl}/metrics`, { headers: bearer(mintToken(SECRET, {})) })).status).toBe(401);
    expect((await fetch(`${gw.httpUrl}/metrics`, { headers: bearer(KEY) })).status).toBe(200);
    const health = await (await fetch(`${gw.httpUrl}/health`, { headers: bearer(KEY) })).json();
    expect(health).toMatchObject({ status: 'ok', access: { auth: true } });
    expect((await fetch(`${gw.httpUrl}/health/live`)).status).toBe(200);
    expect(await (await fetch(`${gw.httpUrl}/health/ready`)).json()).toEqual({ status: 'ready', reasons: [] });
  });
});

describe('the start-up log', () => {
  it('says plainly when the gateway listens beyond loopback without credentials or TLS', () => {
    expect(exposureWarnings({ host: '127.0.0.1' }, false)).toEqual([]);
    expect(exposureWarnings({ host: '::1' }, false)).toEqual([]);
    const open = exposureWarnings({ host: '0.0.0.0' }, false);
    expect(open[0]).toMatch(/listens on 0\.0\.0\.0, beyond this machine, WITHOUT authentication.*--api-keys or --token-secret/);
    expect(open[1]).toMatch(/No TLS/);
    expect(exposureWarnings({ host: '0.0.0.0', tlsCert: 'cert.pem' }, true)).toEqual([]);
  });
});
