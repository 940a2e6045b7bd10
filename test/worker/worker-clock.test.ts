/**
 * A worker process keeps its reply audio going at real-time pace whatever
 * its input does: here the client stops sending for 1.5 s in mid-session (a
 * stalled uplink), and the loopback worker's audio must keep coming, as
 * silence, 80 ms per 80 ms. Its /health reports the event loop's delay.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clockFigures, MIC_CHUNK, probeOutputClock } from '../cascade-e2e/clock-probe.js';
import { CLI_ARGS, eventually, REPO } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { speak } from '../helpers/speech.js';

const RATE = 24_000;
let worker: ChildProcess;
let port: number;

beforeAll(async () => {
  port = await freePort();
  worker = spawn(process.execPath, [...CLI_ARGS, 'worker', '--engine', 'loopback', '--port', String(port), '--host', '127.0.0.1', '--loopback-delay-ms', '160'], { cwd: REPO, stdio: 'ignore' });
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200, 30_000, 'the worker ready');
});

afterAll(async () => {
  if (worker.exitCode === null && worker.signalCode === null) {
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGTERM');
    await exited;
  }
  expect(worker.exitCode !== null || worker.signalCode !== null).toBe(true);
});

describe('worker output clock', () => {
  it('keeps sending audio at real-time pace while the client sends nothing', async () => {
    const speech = await speak('One, two, three, four, five.');
    const gapFrom = Math.ceil(speech.length / MIC_CHUNK) * MIC_CHUNK + 0.3 * RATE;
    const gapTo = gapFrom + 1.5 * RATE;
    let gapStartedAt: number | undefined;
    let gapEndedAt: number | undefined;
    const result = await probeOutputClock({
      url: `ws://127.0.0.1:${port}/api/chat`,
      maxMs: 5000,
      mic: (at) => {
        const chunk = new Float32Array(MIC_CHUNK);
        chunk.set(speech.subarray(at, at + MIC_CHUNK));
        if (at < gapFrom) return chunk;
        // The uplink stalls: nothing is sent for 1.5 s.
        gapStartedAt ??= performance.now();
        if (at < gapTo) return new Float32Array(0);
        gapEndedAt ??= performance.now();
        return chunk;
      },
    });
    expect(result.errors).toEqual([]);
    // The speech came back (the loopback's echo).
    expect(Math.max(...result.audio.map((pcm) => Math.max(...pcm.map(Math.abs))))).toBeGreaterThan(0.05);
    // While nothing came in, audio kept going out: 75 pages of 20 ms were due; a worker whose output waits for input sends none.
    const duringGap = result.arrivals.filter((a) => a.wallMs > gapStartedAt! + 200 && a.wallMs < gapEndedAt!);
    expect(duringGap.length).toBeGreaterThan(30);
    const figures = clockFigures(result.arrivals, 500);
    // Below a 500 ms stall, well above what a busy machine adds to 20 ms pages.
    expect(figures.gapMaxMs, JSON.stringify(figures)).toBeLessThan(450);

    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { eventLoopDelay: Record<string, number> };
    expect(health.eventLoopDelay).toMatchObject({ p50Ms: expect.any(Number), p99Ms: expect.any(Number), maxMs: expect.any(Number) });
    expect(health.eventLoopDelay.windowMs).toBeGreaterThan(1000);
  });
});
