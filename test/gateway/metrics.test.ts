/**
 * /metrics says what happened: frames by their real kind, conversations by
 * how they really ended, no worker blamed for a client that left, gauge
 * names Prometheus accepts, and the event loop's delay with its stalls.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { ControlAction, encodeAudio, encodeFrame } from '../../src/protocol/frames.js';
import { eventually, type TestGateway } from '../helpers/gateway.js';
import { connectClient, isAudio, isEvent, isHandshake } from '../helpers/ws-client.js';
import { metric, metricIn, startLoopbackWorker, startTcpRelay, useMarkedGateways, type TcpRelay, type WorkerProcess } from './helpers.js';

const { start: startGateway, marker } = useMarkedGateways();

describe('metrics', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ pool: { warm: 1, maxWorkers: 1, maxQueue: 4 }, gateway: { maxMessageBytes: 16 * 1024 } });
  });
  afterAll(() => gw?.close());

  const idle = () => eventually(() => gw.pool.snapshot().workers.some((w) => w.state === 'idle'), 20_000, 'the worker back');

  it('labels frames to the worker by their kind, pings and controls included', async () => {
    await idle();
    const client = connectClient(gw.chatUrl);
    await client.waitFor(isHandshake);
    client.ws.send(encodeFrame({ kind: 'ping' }));
    client.ws.send(encodeFrame({ kind: 'control', action: ControlAction.Start }));
    for (const page of new OggOpusEncoder().encode(new Float32Array(24_000).map((_, i) => 0.2 * Math.sin(i / 7)))) client.ws.send(encodeAudio(page));
    await client.waitFor(isAudio);
    const to = (kind: string) => metric(gw.httpUrl, 'quillman_frames_relayed_total', { direction: 'to_worker', kind });
    await eventually(async () => (await to('ping')) === 1 && (await to('control')) === 1, 10_000, 'the ping and control counted');
    expect(await to('audio')).toBeGreaterThan(2);
    client.ws.close(1000);
    await client.closed;
  });

  it('counts a caller who left the queue as left_queue and a message over the hard cap as oversized, not as completed', async () => {
    await idle();
    const completedBefore = await metric(gw.httpUrl, 'quillman_sessions_total', { outcome: 'completed' });
    const live = connectClient(gw.chatUrl);
    await live.waitFor(isHandshake);
    const waiting = connectClient(gw.chatUrl);
    await waiting.waitFor(isEvent('queue'));
    waiting.ws.close(1000);
    await eventually(async () => (await metric(gw.httpUrl, 'quillman_sessions_total', { outcome: 'left_queue' })) === 1, 10_000, 'left_queue');
    // Above twice maxMessageBytes the websocket library itself cuts the connection (1009).
    live.ws.send(new Uint8Array(40 * 1024).fill(1));
    expect((await live.closed).code).toBe(1009);
    await eventually(async () => (await metric(gw.httpUrl, 'quillman_sessions_total', { outcome: 'oversized_message' })) === 1, 10_000, 'oversized_message');
    expect(await metric(gw.httpUrl, 'quillman_sessions_total', { outcome: 'completed' })).toBe(completedBefore);
  });

  it('names no gauge *_total, and exposes the event-loop delay as a histogram that tells our stalls apart', async () => {
    const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    const misnamed = text.split('\n').filter((l) => /^# TYPE \S+_total gauge$/.test(l));
    expect(misnamed).toEqual([]);
    expect(text).toMatch(/^# TYPE quillman_gateway_event_loop_delay_seconds histogram$/m);
    expect(metricIn(text, 'quillman_gateway_event_loop_delay_seconds_count')).toBeGreaterThan(0);
    expect(text).toMatch(/^quillman_gateway_nodejs_active_handles\{type="\w+"\} \d+$/m);

    // The gateway runs in this process: hold its loop with 700 ms of work of our own (CPU time, however busy the machine).
    const before = await metric(gw.httpUrl, 'quillman_gateway_event_loop_stalls_total', { cause: 'gateway' });
    const cpuAtStart = process.cpuUsage();
    while (process.cpuUsage(cpuAtStart).user < 700_000) Math.sqrt(Math.random());
    await eventually(async () => (await metric(gw.httpUrl, 'quillman_gateway_event_loop_stalls_total', { cause: 'gateway' })) > before, 5000, 'the stall counted');
    const health = (await (await fetch(`${gw.httpUrl}/health`)).json()) as { eventLoop: { maxDelayMs: number; stalls: { cause: string; delayMs: number; cpuMs: number }[] } };
    const stall = health.eventLoop.stalls.findLast((s) => s.cause === 'gateway');
    expect(stall!.delayMs).toBeGreaterThanOrEqual(600);
    expect(stall!.cpuMs).toBeGreaterThanOrEqual(600);
  });
});

describe('a client that leaves while its worker is being dialled', () => {
  let worker: WorkerProcess;
  let relay: TcpRelay;
  let gw: TestGateway | undefined;
  beforeAll(async () => {
    worker = await startLoopbackWorker(marker);
    // The upgrade to the worker takes 1.5 s, long enough for the client to leave meanwhile.
    relay = await startTcpRelay(worker.port, { holdUpgradesMs: 1500 });
  });
  afterEach(async () => {
    await gw?.close();
  });
  afterAll(async () => {
    await relay?.close();
    await worker?.stop();
  });

  it('is not counted against the worker, which goes on serving', async () => {
    gw = await startGateway({ pool: { provider: 'remote', remote: { urls: [`ws://127.0.0.1:${relay.port}/api/chat`] } } });
    await eventually(() => gw!.pool.snapshot().workers.some((w) => w.state === 'idle'), 20_000, 'the worker');
    const client = connectClient(gw.chatUrl);
    await eventually(() => relay.requestLines.some((l) => l.startsWith('GET /api/chat')), 10_000, 'the gateway to dial the worker');
    client.ws.close(1000);
    await client.closed;
    await eventually(async () => (await metric(gw!.httpUrl, 'quillman_sessions_total', { outcome: 'left_queue' })) === 1, 10_000, 'the conversation to end');
    await eventually(() => gw!.pool.snapshot().workers.some((w) => w.state === 'idle'), 20_000, 'the worker back');
    expect(await metric(gw.httpUrl, 'quillman_errors_total', { kind: 'worker_unreachable' })).toBe(0);
    expect(await metric(gw.httpUrl, 'quillman_errors_total', { kind: 'worker_refused' })).toBe(0);
    const next = connectClient(gw.chatUrl);
    await next.waitFor(isHandshake, 20_000);
    next.ws.close(1000);
    await next.closed;
  });
});
