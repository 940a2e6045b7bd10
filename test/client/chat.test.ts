/**
 * The terminal client against a server that opens like Kyutai's Rust backend,
 * and with raw PCM on stdin. Kyutai's Python server runs here for real (see
 * test/kyutai/); its Rust backend does not (candle and its weights cannot be
 * had here), so a small stand-in plays the Rust backend's opening: metadata,
 * then the nine-byte handshake.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { OggOpusDecoder, OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { floatToInt16 } from '../../src/audio/pcm.js';
import { runChat } from '../../src/client/chat.js';
import { encodeAudio, encodeFrame, decodeFrame } from '../../src/protocol/frames.js';
import { CLI_ARGS, eventually, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { findDelay } from '../helpers/signal.js';
import { speak } from '../helpers/speech.js';

type Flavour = 'rust';

/** Stand-in for Kyutai's Rust backend: echoes the caller's audio back at once, re-encoded, as Moshi streams its own. */
async function kyutaiStandIn(flavour: Flavour) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/api/chat' });
  await once(wss, 'listening');
  const queries: URLSearchParams[] = [];
  wss.on('connection', (ws, req) => {
    queries.push(new URL(req.url ?? '/', 'http://x').searchParams);
    if (flavour === 'rust') {
      ws.send(encodeFrame({ kind: 'metadata', data: { text_temperature: 0.7, instance_name: 'stand-in' } }));
      ws.send(encodeFrame({ kind: 'handshake', protocolVersion: 0, modelVersion: 0 }));
    }
    const decoder = new OggOpusDecoder();
    const encoder = new OggOpusEncoder({ frameMs: 40 });
    ws.on('message', (data: Buffer) => {
      const r = decodeFrame(new Uint8Array(data));
      if (!r.ok || r.frame.kind !== 'audio') return;
      for (const pcm of decoder.decode(r.frame.data)) for (const page of encoder.encode(pcm)) ws.send(encodeAudio(page));
      ws.send(encodeFrame({ kind: 'text', text: ' ok' }));
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return { url: `ws://127.0.0.1:${port}/api/chat`, queries, close: () => new Promise<void>((r) => wss.close(() => r())) };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('terminal client', () => {
  it.each<Flavour>(['rust'])("talks to a server that opens like Kyutai's %s server", async (flavour) => {
    const server = await kyutaiStandIn(flavour);
    cleanups.push(server.close);
    const speech = await speak('Testing against a Kyutai style server.');
    const result = await runChat({ url: server.url, input: speech, lingerMs: 500, params: { text_temperature: 0.6, text_topk: 30 } });
    expect(result.errors).toEqual([]);
    expect(result.timeToHandshakeMs).toBeGreaterThan(0);
    expect(result.text).toMatch(/^( ok)+$/);
    if (flavour === 'rust') expect(result.events[0]).toMatchObject({ instance_name: 'stand-in' });
    expect(server.queries[0].get('text_temperature')).toBe('0.6');
    expect(findDelay(speech, result.audio, 4800).correlation).toBeGreaterThan(0.85);
  });

  it("relays a Kyutai-style worker through the gateway (remote provider), metadata before the handshake included", async () => {
    const server = await kyutaiStandIn('rust');
    cleanups.push(server.close);
    let gw: TestGateway | undefined = await startTestGateway({ pool: { provider: 'remote', remote: { urls: [server.url] } } });
    cleanups.push(async () => gw?.close());
    const speech = await speak('Through the gateway to a Kyutai style worker.');
    const result = await runChat({ url: gw.chatUrl + '?worker_auth_id=abc', input: speech, lingerMs: 500 });
    expect(result.errors).toEqual([]);
    expect(result.events[0]).toMatchObject({ instance_name: 'stand-in' });
    expect(result.events).toContainEqual(expect.objectContaining({ type: 'session' }));
    expect(server.queries[0].get('worker_auth_id')).toBe('abc'); // unknown parameters are forwarded untouched
    expect(findDelay(speech, result.audio, 4800).correlation).toBeGreaterThan(0.85);
    gw = undefined;
  });

  it('streams raw s16le PCM from stdin and writes the reply', async () => {
    const gw = await startTestGateway({ workerArgs: '--loopback-delay-ms 80' });
    cleanups.push(() => gw.close());
    const speech = await speak('Raw audio from standard input.');
    const child = spawn(process.execPath, [...CLI_ARGS, 'chat', gw.chatUrl, '-i', '-', '--json', '--linger', '0.5'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // Once the client holds a worker: what a pipe gathered while the CLI started would reach the worker in one burst,
    // and the worker's output clock plays no faster than real time, so a reply could not keep up before the client closes.
    await eventually(() => gw.pool.snapshot().workers.some((w) => w.state === 'busy'), 30_000, 'the client connected');
    // Real time, 20 ms at a time, as a microphone pipe would deliver it.
    const int16 = floatToInt16(speech);
    for (let at = 0; at < int16.length; at += 480) {
      child.stdin.write(Buffer.from(int16.buffer, int16.byteOffset + at * 2, Math.min(480, int16.length - at) * 2));
      await new Promise((r) => setTimeout(r, 20));
    }
    child.stdin.end();
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const summary = JSON.parse(out);
    expect(summary.errors).toEqual([]);
    expect(summary.timeToHandshakeMs).toBeGreaterThan(0);
    expect(summary.timeToFirstAudioMs).toBeGreaterThan(0);
    expect(summary.replySeconds).toBeGreaterThan(speech.length / 24_000 - 0.2);
    expect(summary.text).toMatch(/loopback engine/);
  });
});
