import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWav } from '../../src/audio/wav.js';
import { runChat } from '../../src/client/chat.js';
import { findDelay, rmsOf } from '../helpers/signal.js';
import { speak, speakToFile, tempDir } from '../helpers/speech.js';
import { CLI_ARGS, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const LOOPBACK_DELAY_MS = 240;
/**
 * In the returned stream the speech sits (delay − 80 ms) in: the first 80 ms of
 * the delay is wall-clock time spent filling a frame, not an offset in the stream.
 */
const STREAM_LAG_SAMPLES = ((LOOPBACK_DELAY_MS - 80) / 1000) * 24_000;

describe('gateway → loopback worker → back', () => {
  let gw: TestGateway;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    dir = await tempDir();
    gw = await startTestGateway({ workerArgs: `--loopback-delay-ms ${LOOPBACK_DELAY_MS}` });
  });
  afterAll(async () => {
    await gw?.close();
    await dir?.cleanup();
  });

  it('returns the spoken audio, delayed by the loopback delay, with text pieces and session metadata', async () => {
    const speech = await speak('Please repeat this sentence back to me, word for word.', 'espeak-ng');
    const result = await runChat({ url: gw.chatUrl, input: speech, lingerMs: 1000 });
    expect(result.errors).toEqual([]);
    expect(result.timeToHandshakeMs).toBeGreaterThan(0);
    expect(result.closeCode).toBe(1000);
    expect(result.text).toMatch(/^This is the loopback engine/);
    expect(result.events).toContainEqual(expect.objectContaining({ type: 'session', maxSeconds: 600 }));
    expect(result.events).toContainEqual(expect.objectContaining({ type: 'engine', name: 'loopback' }));
    // Opus adds no net offset either way: both ends honour pre-skip.
    const { lag, correlation } = findDelay(speech, result.audio, 24_000);
    expect(correlation).toBeGreaterThan(0.85);
    expect(Math.abs(lag - STREAM_LAG_SAMPLES)).toBeLessThan(24 * 2);
    expect(rmsOf(result.audio)).toBeGreaterThan(0.01);
  });

  it('works from the terminal client process, which prints timings and writes the reply WAV', async () => {
    const input = await speakToFile('Testing the terminal client through the gateway.', join(dir.path, 'in.wav'));
    const output = join(dir.path, 'out.wav');
    const { stdout, stderr } = await run(process.execPath, [...CLI_ARGS, 'chat', gw.chatUrl, '-i', input, '-o', output, '--linger', '1']);
    expect(stdout).toMatch(/loopback engine/);
    expect(stderr).toMatch(/time to handshake: [\d.]+ ms\s+time to first audio: [\d.]+ ms/);
    const sent = (await readWav(input, 24_000)).samples;
    const back = (await readWav(output, 24_000)).samples;
    const { correlation, lag } = findDelay(sent, back, 24_000);
    expect(correlation).toBeGreaterThan(0.85);
    expect(Math.abs(lag - STREAM_LAG_SAMPLES)).toBeLessThan(24 * 2);
  });

  it('accepts bare Ogg pages on the /ws alias, as the original QuiLLMan browser sent them', async () => {
    const { connectClient, isHandshake, isAudio } = await import('../helpers/ws-client.js');
    const { OggOpusEncoder } = await import('../../src/audio/opus-stream.js');
    const client = connectClient(gw.chatUrl.replace('/api/chat', '/ws'));
    await client.waitFor(isHandshake);
    const encoder = new OggOpusEncoder();
    const tone = new Float32Array(24_000).map((_, i) => 0.3 * Math.sin(i / 5));
    for (const page of encoder.encode(tone)) client.ws.send(page); // no kind byte
    await client.waitFor(isAudio);
    client.ws.close(1000);
    await client.closed;
    expect(client.errors()).toEqual([]);
  });

  it('exposes health and Prometheus metrics', async () => {
    const health = await (await fetch(`${gw.httpUrl}/health`)).json();
    expect(health.status).toBe('ok');
    expect(health.pool.workers.length).toBeGreaterThanOrEqual(1);
    const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    for (const name of ['quillman_sessions_active', 'quillman_sessions_queued', 'quillman_sessions_total', 'quillman_workers', 'quillman_time_to_handshake_seconds', 'quillman_session_length_seconds', 'quillman_frames_relayed_total', 'quillman_errors_total']) {
      expect(text).toContain(name);
    }
    expect(text).toMatch(/quillman_frames_relayed_total\{direction="to_worker",kind="audio"\} [1-9]/);
    expect(text).toMatch(/quillman_sessions_total\{outcome="completed"\} [1-9]/);
  });
});
