import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { eventually, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectClient, isAudio, isEvent, isHandshake, streamTone, type RecordingClient } from '../helpers/ws-client.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

function sessionOf(client: RecordingClient): Record<string, unknown> | undefined {
  return client.events().find((e) => e.type === 'session');
}

describe('conversations and the pool, through the gateway', () => {
  it('queues when every worker is busy, reports the position, and serves in order', async () => {
    gw = await startTestGateway({ pool: { warm: 1, maxWorkers: 1, maxQueue: 2 } });
    const first = connectClient(gw.chatUrl);
    await first.waitFor(isHandshake);
    const second = connectClient(gw.chatUrl);
    await second.waitFor(isEvent('queue'));
    const third = connectClient(gw.chatUrl);
    await third.waitFor(isEvent('queue'));
    expect(second.events().filter((e) => e.type === 'queue').at(-1)).toMatchObject({ position: 1 });
    expect(third.events().filter((e) => e.type === 'queue').at(-1)).toMatchObject({ position: 2, queued: 2 });

    const fourth = connectClient(gw.chatUrl); // past the queue limit
    const refused = await fourth.closed;
    expect(refused.code).toBe(CloseCode.TryAgainLater);
    expect(fourth.errors().join()).toMatch(/queue is full/);

    first.ws.close(1000);
    await second.waitFor(isHandshake, 20_000);
    await eventually(() => third.events().some((e) => e.type === 'queue' && e.position === 1), 5000, 'third to move up');
    expect(third.frames.some(isHandshake)).toBe(false);
    second.ws.close(1000);
    await third.waitFor(isHandshake, 20_000);
    third.ws.close(1000);
    // Same worker every time: one worker, never shared at once.
    expect(new Set([sessionOf(first)?.worker, sessionOf(second)?.worker, sessionOf(third)?.worker]).size).toBe(1);
  });

  it('a client that leaves the queue frees its place', async () => {
    gw = await startTestGateway({ pool: { warm: 1, maxWorkers: 1, maxQueue: 3 } });
    const first = connectClient(gw.chatUrl);
    await first.waitFor(isHandshake);
    const a = connectClient(gw.chatUrl);
    await a.waitFor(isEvent('queue'));
    const b = connectClient(gw.chatUrl);
    await b.waitFor(isEvent('queue'));
    a.ws.close(1000);
    await eventually(() => b.events().some((e) => e.type === 'queue' && e.position === 1), 5000, 'b to move up');
    expect(gw.pool.snapshot().queued).toBe(1);
    first.ws.close(1000);
    await b.waitFor(isHandshake, 20_000);
    b.ws.close(1000);
  });

  it('warns before the length cap and closes at it', async () => {
    gw = await startTestGateway({ gateway: { maxConversationSeconds: 3, warnBeforeEndSeconds: [2, 1] } });
    const client = connectClient(gw.chatUrl);
    await client.waitFor(isHandshake);
    const stop = streamTone(client);
    const closed = await client.closed;
    stop();
    expect(closed.code).toBe(CloseCode.TimeLimit);
    expect(closed.reason).toMatch(/3 s limit/);
    const warnings = client.events().filter((e) => e.type === 'ending_soon').map((e) => e.secondsLeft);
    expect(warnings).toEqual([2, 1]);
    expect(client.events()).toContainEqual({ type: 'ended', reason: 'time_limit' });
    expect(sessionOf(client)).toMatchObject({ maxSeconds: 3 });
  });

  it('a worker that dies mid-conversation ends it with an error, and the pool replaces it', async () => {
    gw = await startTestGateway({ pool: { warm: 1, maxWorkers: 1 } });
    const client = connectClient(gw.chatUrl);
    await client.waitFor(isHandshake);
    const stop = streamTone(client);
    await client.waitFor(isAudio);
    const worker = gw.pool.snapshot().workers.find((w) => w.id === sessionOf(client)?.worker);
    process.kill(worker!.pid!, 'SIGKILL');
    const closed = await client.closed;
    stop();
    expect(closed.code).toBe(CloseCode.InternalError);
    expect(client.errors().join()).toMatch(/worker serving this conversation stopped unexpectedly/);
    expect(client.events()).toContainEqual(expect.objectContaining({ type: 'error', code: 'worker_lost' }));

    const next = connectClient(gw.chatUrl);
    await next.waitFor(isHandshake, 30_000);
    const replacement = gw.pool.snapshot().workers.find((w) => w.id === sessionOf(next)?.worker);
    expect(replacement?.pid).not.toBe(worker!.pid);
    next.ws.close(1000);
  });

  it('concurrent conversations each get a worker of their own', async () => {
    gw = await startTestGateway({ pool: { warm: 3, maxWorkers: 3, maxQueue: 2 } });
    const clients = [0, 1, 2].map(() => connectClient(gw!.chatUrl));
    await Promise.all(clients.map((c) => c.waitFor(isHandshake, 30_000)));
    const stops = clients.map(streamTone);
    await Promise.all(clients.map((c) => c.waitFor(isAudio)));
    const workers = clients.map((c) => sessionOf(c)?.worker);
    expect(new Set(workers).size).toBe(3);
    const busy = gw.pool.snapshot().workers.filter((w) => w.state === 'busy').map((w) => w.id);
    expect(busy.sort()).toEqual([...workers].sort());
    const extra = connectClient(gw.chatUrl);
    await extra.waitFor(isEvent('queue'));
    stops.forEach((s) => s());
    for (const c of clients) c.ws.close(1000);
    await extra.waitFor(isHandshake, 20_000);
    expect(workers).toContain(sessionOf(extra)?.worker);
    extra.ws.close(1000);
  });
});
