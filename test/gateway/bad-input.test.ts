/**
 * Bad input never crashes the gateway or disturbs other sessions: each case
 * gets a clear error frame or close code, and the worker is reset and returned.
 *
 * The gateway runs in this process, so the test does no heavy work of its own
 * while the bystander streams (the audio is encoded up front): a stall of this
 * process is then either the gateway's or the machine's, which the gateway's
 * event-loop monitor tells apart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { encodeAudio, encodeFrame } from '../../src/protocol/frames.js';
import { encodePage, OggOpusMuxer, PageFlag } from '../../src/protocol/ogg.js';
import { eventually, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectClient, isAudio, isError, isEvent, isHandshake, type RecordingClient } from '../helpers/ws-client.js';

const MAX_MESSAGE = 16 * 1024;

function tonePages(seconds: number): Uint8Array[] {
  const encoder = new OggOpusEncoder();
  const pcm = new Float32Array(Math.round(seconds * 24_000)).map((_, i) => 0.2 * Math.sin(i / 7));
  return encoder.encode(pcm);
}

/** Encoded once, before any gateway runs: encoding 30 s of audio holds this process (and the gateway in it) for a quarter second or more. */
const TONE = { bystander: tonePages(120), short: tonePages(0.2), half: tonePages(0.5), tooFast: tonePages(10), mic: tonePages(30) };

/** A well-behaved session streaming in real time next to the misbehaving ones. */
function startBystander(url: string) {
  const client = connectClient(url);
  const pages = TONE.bystander;
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  const audioAt: number[] = [];
  client.ws.on('message', (data: Buffer) => data[0] === 1 && audioAt.push(Date.now()));
  const ready = client.waitFor(isHandshake).then(() => {
    timer = setInterval(() => {
      if (client.ws.readyState === client.ws.OPEN && next < pages.length) client.ws.send(encodeAudio(pages[next++]));
    }, 20);
  });
  return {
    client,
    ready,
    audioCount: () => audioAt.length,
    /** Longest silence in what the bystander received since `since` (for the failure message). */
    longestGapSince(since: number) {
      const times = [since, ...audioAt.filter((t) => t > since), Date.now()];
      return Math.max(...times.slice(1).map((t, i) => t - times[i]));
    },
    stop() {
      clearInterval(timer);
      client.ws.close(1000);
    },
  };
}

describe('bad input', () => {
  let gw: TestGateway;
  let bystander: ReturnType<typeof startBystander>;
  const startedAt = Date.now();

  beforeAll(async () => {
    gw = await startTestGateway({
      pool: { warm: 2, maxWorkers: 2 },
      gateway: { maxMessageBytes: MAX_MESSAGE, workerPingIntervalSeconds: 0.5, workerStallTimeoutSeconds: 2, clientPingIntervalSeconds: 0.5, clientPongTimeoutSeconds: 2 },
    });
    bystander = startBystander(gw.chatUrl);
    await bystander.ready;
  });

  afterAll(async () => {
    bystander?.stop();
    await gw?.close();
  });

  /** Opens a live session (handshake received) on the second worker. */
  async function live(query = ''): Promise<RecordingClient> {
    await eventually(() => gw.pool.snapshot().workers.some((w) => w.state === 'idle'), 20_000, 'an idle worker');
    const client = connectClient(gw.chatUrl + query);
    await client.waitFor(isHandshake);
    return client;
  }

  async function expectRejected(client: RecordingClient, code: number, message: RegExp) {
    const closed = await client.closed;
    expect(closed.code).toBe(code);
    expect(client.errors().join('\n')).toMatch(message);
    expect(closed.reason).toMatch(message);
    // The worker is reset and returned to the pool.
    await eventually(() => gw.pool.snapshot().workers.filter((w) => w.state === 'idle').length === 1, 20_000, 'the worker back in the pool');
  }

  it('malformed frame → 1007 with the reason', async () => {
    const client = await live();
    client.ws.send(new Uint8Array([3, 1, 2])); // control frames carry exactly one byte
    await expectRejected(client, CloseCode.InvalidPayload, /Malformed frame: control frame/);
  });

  it('empty message → 1007', async () => {
    const client = await live();
    client.ws.send(new Uint8Array(0));
    await expectRejected(client, CloseCode.InvalidPayload, /empty message/);
  });

  it('unknown kinds are ignored and the session carries on', async () => {
    const client = await live();
    client.ws.send(encodeFrame({ kind: 'unknown', code: 9 }));
    client.ws.send(new Uint8Array([7, 1, 2, 3]));
    for (const page of TONE.half) client.ws.send(encodeAudio(page));
    await client.waitFor(isAudio);
    expect(client.errors()).toEqual([]);
    client.ws.close(1000);
    await client.closed;
  });

  it('oversized message → 1009', async () => {
    const client = await live();
    client.ws.send(new Uint8Array(MAX_MESSAGE + 10).fill(1));
    await expectRejected(client, CloseCode.MessageTooBig, /over the 16384-byte limit/);
  });

  it('text websocket message → 1003', async () => {
    const client = await live();
    client.ws.send('hello', { binary: false });
    await expectRejected(client, CloseCode.UnsupportedData, /Text websocket messages are not part of the Moshi protocol/);
  });

  it('Ogg page with a bad CRC → 1007', async () => {
    const client = await live();
    const pages = TONE.short;
    client.ws.send(encodeAudio(pages[0]));
    client.ws.send(encodeAudio(pages[1]));
    const bad = pages[2].slice();
    bad[bad.length - 1] ^= 0xff;
    client.ws.send(encodeAudio(bad));
    await expectRejected(client, CloseCode.InvalidPayload, /CRC mismatch/);
    // The stream had started well: the hint is about the pages, not about starting with OpusHead.
    expect(client.errors().join('\n')).toMatch(/Send each Ogg page whole and unchanged/);
    expect(client.errors().join('\n')).not.toMatch(/starting with the OpusHead/);
  });

  it('Ogg stream without a BOS page → 1007', async () => {
    const client = await live();
    client.ws.send(encodeAudio(TONE.short[3]));
    await expectRejected(client, CloseCode.InvalidPayload, /must begin with a BOS page/);
    expect(client.errors().join('\n')).toMatch(/starting with the OpusHead page/);
  });

  it('garbage that is not Ogg → 1007', async () => {
    const client = await live();
    client.ws.send(encodeAudio(new TextEncoder().encode('RIFF....WAVEfmt this is a wav header, not ogg')));
    await expectRejected(client, CloseCode.InvalidPayload, /not an Ogg page/);
  });

  it('an Ogg stream that is not Opus → 1007', async () => {
    const client = await live();
    const vorbisLike = encodePage({ flags: PageFlag.BeginningOfStream, granule: 0, serial: 5, sequence: 0, segments: new Uint8Array([30]), body: new TextEncoder().encode('\x01vorbis' + 'x'.repeat(23)) });
    client.ws.send(encodeAudio(vorbisLike));
    await expectRejected(client, CloseCode.InvalidPayload, /not an OpusHead/);
  });

  it('Opus header followed by packets that are not Opus → 1007', async () => {
    const client = await live();
    const muxer = new OggOpusMuxer();
    for (const page of muxer.headerPages()) client.ws.send(encodeAudio(page));
    for (const page of muxer.writePacket(new Uint8Array([0xfb, 0x00, 1, 2, 3]), 960)) client.ws.send(encodeAudio(page)); // code-3 TOC with zero frames
    await expectRejected(client, CloseCode.InvalidPayload, /not an Opus packet/);
  });

  it('invalid query parameters → 4001 with every problem named', async () => {
    const client = connectClient(gw.chatUrl + '?text_temperature=7&audio_topk=x');
    const closed = await client.closed;
    expect(closed.code).toBe(CloseCode.InvalidParams);
    const error = (await client.waitFor(isError)) as { message: string };
    expect(error.message).toMatch(/text_temperature must be between 0.2 and 1.2, got 7/);
    expect(error.message).toMatch(/audio_topk must be a number/);
    expect(client.events()).toContainEqual(expect.objectContaining({ type: 'error', code: 'invalid_params' }));
  });

  it('audio sent faster than real time → 1008', async () => {
    const client = await live();
    for (const page of TONE.tooFast) client.ws.send(encodeAudio(page));
    await expectRejected(client, CloseCode.PolicyViolation, /faster than real time/);
  });

  it('a client that stops reading is dropped, and the worker returned', async () => {
    const client = await live();
    const socket = (client.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause(); // stops reading, as a stuck tab or a dead network would; it keeps streaming its microphone
    const pages = TONE.mic;
    let i = 0;
    const mic = setInterval(() => client.ws.readyState === client.ws.OPEN && i < pages.length && client.ws.send(encodeAudio(pages[i++])), 20);
    try {
      await eventually(async () => /quillman_errors_total\{kind="slow_consumer"\} [1-9]/.test(await (await fetch(`${gw.httpUrl}/metrics`)).text()), 15_000, 'the client to be dropped');
    } finally {
      clearInterval(mic);
    }
    socket.resume();
    const closed = await client.closed;
    expect([CloseCode.SlowConsumer, 1006]).toContain(closed.code);
    await eventually(() => gw.pool.snapshot().workers.filter((w) => w.state === 'idle').length === 1, 20_000, 'the worker back in the pool');
  });

  it('a client that vanishes mid-frame frees its worker', async () => {
    const client = await live();
    const socket = (client.ws as unknown as { _socket: import('node:net').Socket })._socket;
    // A masked binary frame header promising 1000 bytes, then only 10 of them, then the connection drops.
    socket.write(Buffer.from([0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    socket.destroy();
    await eventually(() => gw.pool.snapshot().workers.filter((w) => w.state === 'idle').length === 1, 20_000, 'the worker back in the pool');
    expect(gw.gateway.conversations()).toBe(1); // only the bystander
  });

  it('a worker that stalls ends the conversation with 4002 and is replaced', async () => {
    const client = await live();
    const session = (await client.waitFor(isEvent('session'))) as { data: { worker: string } };
    const worker = gw.pool.snapshot().workers.find((w) => w.id === session.data.worker);
    expect(worker?.pid).toBeGreaterThan(0);
    process.kill(worker!.pid!, 'SIGSTOP');
    try {
      const closed = await client.closed;
      expect(closed.code).toBe(CloseCode.WorkerStalled);
      expect(client.errors().join('\n')).toMatch(/stopped responding/);
    } finally {
      try {
        process.kill(worker!.pid!, 'SIGCONT');
      } catch {
        // already replaced
      }
    }
    await eventually(() => gw.pool.snapshot().workers.filter((w) => w.state === 'idle').length === 1, 30_000, 'a replacement worker');
  });

  it('none of it disturbed the bystander session or the gateway', async () => {
    expect(bystander.client.ws.readyState).toBe(bystander.client.ws.OPEN);
    expect(bystander.client.errors()).toEqual([]);
    // Still served: reply audio keeps coming.
    const heard = bystander.audioCount();
    await eventually(() => bystander.audioCount() > heard + 10, 20_000, 'more reply audio for the bystander');
    const health = (await (await fetch(`${gw.httpUrl}/health`)).json()) as { status: string; eventLoop: { stalls: { cause: string; cpuMs: number }[] } };
    expect(health.status).toBe('ok');
    // No bad input held the gateway's event loop with its own work (500 ms of CPU in one go). How long the bystander
    // waited for audio is not asserted: on a loaded machine this process waits for a core for seconds.
    const ours = health.eventLoop.stalls.filter((s) => s.cause === 'gateway' && s.cpuMs >= 500);
    expect(ours, `longest bystander gap ${bystander.longestGapSince(startedAt + 3000)} ms; stalls ${JSON.stringify(health.eventLoop.stalls)}`).toEqual([]);
  });
});
