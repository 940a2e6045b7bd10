/**
 * The remote provider pointed at Kyutai's real server while another client
 * holds it. Kyutai's server upgrades a second caller at once and then says
 * nothing until the first conversation ends, and it has no health endpoint:
 * the gateway must neither hang on that silence nor call the server broken.
 * It recognises the silence as "busy", tells the caller, and connects it as
 * soon as the server is free (see docs/kyutai.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { runChat } from '../../src/client/chat.js';
import { encodeAudio } from '../../src/protocol/frames.js';
import { eventually, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { newMarker } from '../helpers/processes.js';
import { speak } from '../helpers/speech.js';
import { expectNoneLeft, requireTinyMoshi, startRealMoshi, type RealMoshi } from './real-moshi.js';

const marker = newMarker();
let server: RealMoshi;
let gw: TestGateway;
let speech: Float32Array;

beforeAll(async () => {
  [server, speech] = await Promise.all([startRealMoshi(requireTinyMoshi(), marker), speak('Is anybody there? I would like to talk.')]);
  gw = await startTestGateway({ pool: { provider: 'remote', remote: { urls: [server.url], healthIntervalSeconds: 2 } } });
}, 200_000);

afterAll(async () => {
  await gw?.close();
  await server?.stop();
  await expectNoneLeft(marker);
});

/** Another client talking to the server directly, as Kyutai's own web client would. */
function holdServer(): { release: () => Promise<void>; hearing: () => boolean } {
  const ws = new WebSocket(server.url, { perMessageDeflate: false });
  const encoder = new OggOpusEncoder({ frameMs: 20, packetsPerPage: 2 });
  let heard = false;
  let timer: NodeJS.Timeout | undefined;
  ws.on('message', (data: Buffer) => {
    if (data[0] === 0) {
      for (const page of encoder.headers()) ws.send(encodeAudio(page));
      timer = setInterval(() => ws.readyState === WebSocket.OPEN && encoder.encode(new Float32Array(960)).forEach((p) => ws.send(encodeAudio(p))), 40);
    }
    if (data[0] === 1) heard = true;
  });
  return {
    hearing: () => heard,
    release: async () => {
      clearInterval(timer);
      ws.close(1000, 'done');
      await new Promise((r) => ws.once('close', r));
    },
  };
}

function metricValue(text: string, name: string, label: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe("the remote provider with a busy Kyutai server", () => {
  it('tells the caller the server is busy, connects it when the server is free, and never calls the server broken', async () => {
    const holder = holdServer();
    await eventually(() => holder.hearing(), 60_000, 'the other client to be talking');
    const events: { at: number; event: { type?: string; message?: string; position?: number } }[] = [];
    const started = performance.now();
    let handshakeAt = 0;
    const states = new Set<string>();
    const watch = setInterval(() => gw.pool.snapshot().workers.forEach((w) => states.add(w.state)), 50);
    const chat = runChat({
      url: gw.chatUrl,
      input: speech,
      lingerMs: 1000,
      handshakeTimeoutMs: 120_000,
      onEvent: (event) => events.push({ at: performance.now() - started, event: event as never }),
      onAudio: () => (handshakeAt ||= performance.now()),
    });
    // The caller hears why it waits: the server is in use by another client.
    await eventually(() => events.find((e) => /busy|another client/i.test(e.event.message ?? '')), 60_000, 'a message that the server is busy');
    // Longer than the gateway's handshake timeout would once have allowed a silent worker.
    await new Promise((r) => setTimeout(r, 3000));
    expect(handshakeAt).toBe(0);
    await holder.release();
    const result = await chat;
    clearInterval(watch);
    expect(result.errors).toEqual([]);
    expect(result.timeToHandshakeMs).toBeGreaterThan(0);
    expect(result.audio.length / 24_000).toBeGreaterThan(1);
    expect(states.has('down')).toBe(false);
    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    expect(metricValue(metrics, 'quillman_errors_total', 'worker_stalled')).toBe(0);
    expect(metricValue(metrics, 'quillman_errors_total', 'worker_unreachable')).toBe(0);
  }, 240_000);

  it('lets a waiting caller leave without leaving anything behind, and serves the next one', async () => {
    const holder = holdServer();
    await eventually(() => holder.hearing(), 60_000, 'the other client to be talking');
    const leaving = new AbortController();
    const events: { message?: string }[] = [];
    const chat = runChat({ url: gw.chatUrl, input: speech, handshakeTimeoutMs: 120_000, signal: leaving.signal, onEvent: (e) => events.push(e as never) });
    await eventually(() => events.find((e) => /busy|another client/i.test(e.message ?? '')), 60_000, 'a message that the server is busy');
    leaving.abort();
    await chat;
    await holder.release();
    await eventually(() => gw.gateway.conversations() === 0, 20_000, 'the gateway to let the caller go');
    const next = await runChat({ url: gw.chatUrl, input: speech, lingerMs: 500, handshakeTimeoutMs: 120_000 });
    expect(next.errors).toEqual([]);
    expect(next.audio.length).toBeGreaterThan(24_000);
  }, 240_000);
});
