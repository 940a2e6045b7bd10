/**
 * A first start that downloads a model over a slow link takes longer than
 * the pool's ready timeout; the worker must not be killed while its download
 * progresses, and the user waiting meanwhile is shown that progress. Here a
 * real cascade worker, started by the gateway's pool with a 3 s ready
 * timeout, fetches the Piper voice (a stand-in: the real one cannot be had
 * here) from a fake model host at 200 kB/s for about 7 s, then falls back to
 * flite because the stand-in is no usable voice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findModel } from '../../src/models/registry.js';
import { mirrorPath, startFakeModelHost, type FakeModelHost } from './fake-model-host.js';
import { newMarker, processesWithMarker } from '../helpers/processes.js';
import { startCascadeSystem, type CascadeSystem } from './harness.js';
import { converse, samplesOf } from './voice.js';

const READY_TIMEOUT_S = 3;
const marker = newMarker();
let work: string;
let host: FakeModelHost;
let system: CascadeSystem | undefined;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'quillman-first-start-'));
  host = await startFakeModelHost({ workDir: work, voiceBytes: 1_400_000, bytesPer100Ms: 20_000 });
});

afterAll(async () => {
  await system?.close();
  await host?.close();
  rmSync(work, { recursive: true, force: true });
  expect(processesWithMarker(marker)).toEqual([]);
});

describe('a first start that downloads a model', () => {
  it('is not killed by the ready timeout while the download progresses, and the waiting user sees the progress', async () => {
    const startedAt = performance.now();
    system = await startCascadeSystem({
      lm: { reply: () => 'Hello.', wordDelayMs: 30 },
      tts: 'auto',
      readyTimeoutSeconds: READY_TIMEOUT_S,
      env: { QUILLMAN_MODEL_MIRROR: host.mirror, QUILLMAN_CACHE_DIR: join(work, 'cache') },
      marker,
    });
    const { heard, result } = await converse({ url: system.chatUrl, maxMs: 1000, mic: () => new Float32Array(samplesOf(20)) });
    const readyAfterS = (performance.now() - startedAt) / 1000;

    expect(result.errors).toEqual([]);
    expect(result.timeToHandshakeMs).toBeDefined();
    // It took well over the ready timeout, yet the first process served: no kill, no restart.
    expect(readyAfterS).toBeGreaterThan(READY_TIMEOUT_S * 1.5);
    const [worker] = system.gateway.pool.snapshot().workers;
    expect(worker.restarts).toBe(0);

    // While waiting, the user was told how the download went, as it went (the pool polls every 2 s at most).
    const progress = heard.eventsOf('warming_up').map((e) => String(e.value.message));
    const downloads = progress.filter((m) => /Downloading piper-en_US-amy-medium: [\d.]+ of 64 MB/.test(m));
    expect(downloads.length, progress.join('\n')).toBeGreaterThanOrEqual(2);
    expect(new Set(downloads).size).toBe(downloads.length);
    expect(host.requests.some((r) => r.path === mirrorPath(findModel('piper-en_US-amy-medium')!.archive!.url))).toBe(true);

    // The stand-in is no voice, so the engine fell back to flite and says so.
    const engine = heard.event('engine')?.value as { stages?: Record<string, string> } | undefined;
    expect(engine?.stages?.tts).toBe('flite-slt');
  });
});
