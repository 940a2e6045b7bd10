/**
 * Liveness, readiness and the full /health view: degraded (with the reason)
 * when the engine cannot hold a conversation, draining on shutdown, and only
 * conversations that are still on counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { cliCommand, eventually, type TestGateway } from '../helpers/gateway.js';
import { connectClient, isEvent, isHandshake } from '../helpers/ws-client.js';
import { expectRefusal, metric, useMarkedGateways } from './helpers.js';

const { start: startGateway } = useMarkedGateways();
let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

const json = async (url: string) => {
  const res = await fetch(url);
  return { code: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('health', () => {
  it('splits liveness from readiness, and says ok once a worker is ready', async () => {
    gw = await startGateway();
    await eventually(() => gw!.pool.snapshot().workers.some((w) => w.state === 'idle'), 20_000, 'a worker');
    expect(await json(`${gw.httpUrl}/health/live`)).toMatchObject({ code: 200, body: { status: 'live' } });
    expect(await json(`${gw.httpUrl}/livez`)).toMatchObject({ code: 200 });
    expect(await json(`${gw.httpUrl}/health/ready`)).toEqual({ code: 200, body: { status: 'ready', reasons: [] } });
    expect(await json(`${gw.httpUrl}/readyz`)).toMatchObject({ code: 200 });
    const full = await json(`${gw.httpUrl}/health`);
    expect(full).toMatchObject({ code: 200, body: { status: 'ok', reasons: [], conversations: 0, waiting: 0, eventLoop: { maxDelayMs: expect.any(Number) } } });
  });

  it('is degraded, and says why, when the engine cannot hold a conversation (no language model)', async () => {
    // The real cascade engine, with offline stages that load here and a language model that is missing.
    const command = cliCommand('worker --engine cascade --port {port} --stt pocketsphinx --tts flite --gguf /nonexistent/quillman-test.gguf');
    gw = await startGateway({ pool: { warm: 1, maxWorkers: 1, local: { command, readyTimeoutSeconds: 120 } } });
    await eventually(() => gw!.pool.snapshot().workers.some((w) => w.state === 'idle'), 120_000, 'the cascade worker to start');
    const full = await eventually(async () => {
      const r = await json(`${gw!.httpUrl}/health`);
      return r.body.status === 'degraded' && r;
    }, 30_000, 'the gateway to report degraded');
    expect(full.code).toBe(503);
    expect((full.body.reasons as string[]).join('\n')).toMatch(/cannot hold a conversation[\s\S]*No language model.*quillman-test\.gguf/);
    const ready = await json(`${gw.httpUrl}/health/ready`);
    expect(ready.code).toBe(503);
    expect(ready.body.status).toBe('degraded');
    expect(String(ready.body.reasons)).toMatch(/No language model/);
    expect((await json(`${gw.httpUrl}/health/live`)).code).toBe(200);
  }, 180_000);

  it('counts only conversations still on, not refused ones whose sockets are closing', async () => {
    gw = await startGateway({ pool: { warm: 1, maxWorkers: 1, maxQueue: 1 } });
    const live = connectClient(gw.chatUrl);
    await live.waitFor(isHandshake);
    const waiting = connectClient(gw.chatUrl);
    await waiting.waitFor(isEvent('queue'));
    // Refused for the full queue by a client that never reads the close, so its closing handshake never ends.
    const stuck = connectClient(gw.chatUrl);
    await new Promise((r) => stuck.ws.once('upgrade', r));
    (stuck.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    await eventually(async () => (await metric(gw!.httpUrl, 'quillman_errors_total', { kind: 'queue_full' })) === 1, 10_000, 'the refusal');
    expect(gw.gateway.conversations()).toBe(2);
    const full = await json(`${gw.httpUrl}/health`);
    expect(full.body).toMatchObject({ conversations: 2, waiting: 1 });
    stuck.ws.terminate();
    live.ws.close(1000);
    waiting.ws.close(1000);
    await Promise.all([live.closed, waiting.closed]);
  });
});

describe('draining', () => {
  it('stops taking conversations, turns readiness 503, warns live callers and closes them after the grace period', async () => {
    gw = await startGateway({ pool: { warm: 1, maxWorkers: 1, maxQueue: 2 } });
    const live = connectClient(gw.chatUrl);
    await live.waitFor(isHandshake);
    const waiting = connectClient(gw.chatUrl);
    await waiting.waitFor(isEvent('queue'));

    const drained = gw.gateway.drain(2);
    let done = false;
    void drained.then(() => (done = true));
    // Someone waiting for a worker is told at once to reconnect (another replica serves them).
    expectRefusal(await waiting.closed, waiting.errors(), CloseCode.TryAgainLater, /restarting/);
    expect(await json(`${gw.httpUrl}/health/ready`)).toMatchObject({ code: 503, body: { status: 'draining' } });
    const late = connectClient(gw.chatUrl);
    expectRefusal(await late.closed, late.errors(), CloseCode.TryAgainLater, /takes no new conversations/);

    // The live conversation hears how long it has, and keeps going until then.
    await live.waitFor(isEvent('ending_soon'));
    expect(live.events()).toContainEqual({ type: 'ending_soon', secondsLeft: 2 });
    expect(done).toBe(false);
    const closed = await live.closed;
    expect(closed).toEqual({ code: CloseCode.GoingAway, reason: expect.stringMatching(/restarting/) });
    expect(live.events()).toContainEqual({ type: 'ended', reason: 'shutdown' });
    expect(live.errors()).toEqual([]);
    await drained;
    expect(await metric(gw.httpUrl, 'quillman_sessions_total', { outcome: 'shutdown' })).toBe(2);
    expect(await metric(gw.httpUrl, 'quillman_refusals_total', { reason: 'draining' })).toBe(1);
    // The worker was given back after its conversation closed.
    await eventually(() => gw!.pool.snapshot().workers.every((w) => w.state === 'idle'), 20_000, 'the worker back');
  });

  it('finishes at once when a conversation ends before the grace period', async () => {
    gw = await startGateway({ pool: { warm: 1, maxWorkers: 1 } });
    const live = connectClient(gw.chatUrl);
    await live.waitFor(isHandshake);
    const drained = gw.gateway.drain(600);
    await live.waitFor(isEvent('ending_soon'));
    live.ws.close(1000);
    await drained;
    expect(await metric(gw.httpUrl, 'quillman_sessions_total', { outcome: 'completed' })).toBe(1);
  });
});
