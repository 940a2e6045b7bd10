/**
 * Which stage serves what: 'auto' on a machine with nothing downloaded falls
 * back to the offline stages, missing pieces produce an error naming the
 * command that fixes them, and nothing crashes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCascadeEngine } from '../../src/engines/cascade/index.js';
import { loadSherpa } from '../../src/engines/cascade/sherpa.js';
import { loadSherpaStt } from '../../src/engines/cascade/stt/sherpa.js';
import { loadSherpaTts } from '../../src/engines/cascade/tts/sherpa.js';
import type { ModelSpec } from '../../src/models/registry.js';
import type { ProgressReport } from '../../src/engines/engine.js';
import { loadSileroVad, sileroModelPath } from '../../src/engines/cascade/vad/silero.js';
import { freePort } from '../helpers/net.js';
import { writeTinyLlamaGguf } from './gguf-writer.js';
import { concat, quietLogger, RecordingSink, scriptedLm, silence, speak } from './helpers.js';

let cacheDir: string;
let deadUrl: string;

beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'quillman-cache-'));
  deadUrl = `http://127.0.0.1:${await freePort()}`;
});
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

/** Registry entries with the real names but a host that refuses connections: "offline". */
function offlineRegistry(): ModelSpec[] {
  const file = (path: string) => [{ path, url: `${deadUrl}/${path}`, size: 10, sha256: null }];
  return [
    { name: 'zipformer-en-2023-06-26', kind: 'stt', description: '', license: '', default: true, files: file('encoder.int8.onnx') },
    { name: 'piper-en_US-amy-medium', kind: 'tts', description: '', license: '', default: true, archive: { url: `${deadUrl}/v.tar.bz2`, size: 10, sha256: null, topFolder: 'v' } },
    { name: 'qwen2.5-0.5b-instruct', kind: 'lm', description: '', license: '', default: true, files: file('model.gguf') },
  ];
}

const opts = () => ({ sampling: {}, signal: new AbortController().signal });

describe('stage selection', () => {
  it("'auto' with nothing downloaded uses Silero, PocketSphinx and flite, and says so", async () => {
    const engine = await createCascadeEngine({ cacheDir, autoDownload: false }, { logger: quietLogger, stages: { lm: scriptedLm(() => 'hi') } });
    expect(engine.info.stages).toEqual({ vad: 'auto', stt: 'auto', lm: 'auto', tts: 'auto' });
    const progress: ProgressReport[] = [];
    await engine.warmUp!((p) => progress.push(p));
    expect(engine.info).toEqual({ name: 'cascade', stages: { vad: 'silero-v5', stt: 'pocketsphinx', lm: 'scripted', tts: 'flite-slt' } });
    expect(progress[progress.length - 1]).toMatchObject({ stage: 'ready', fraction: 1 });
    const sink = new RecordingSink();
    const conv = await engine.openConversation(opts(), sink);
    expect(sink.events[0]).toEqual(expect.objectContaining({ type: 'engine', name: 'cascade', stages: engine.info.stages }));
    await conv.close();
    await engine.dispose!();
  });

  it('offline with auto-download on: downloads fail fast, offline stages take over, and the missing model is named', async () => {
    const engine = await createCascadeEngine({ cacheDir, autoDownload: true }, { logger: quietLogger, registry: offlineRegistry() });
    const progress: ProgressReport[] = [];
    await engine.warmUp!((p) => progress.push(p)); // must not throw
    expect(progress[progress.length - 1].stage).toBe('error');
    expect(engine.problem).toMatch(/No language model: .*ECONNREFUSED.*run `quillman models pull qwen2\.5-0\.5b-instruct`.*--lm-url/);

    const sink = new RecordingSink();
    const conv = await engine.openConversation(opts(), sink);
    expect(sink.errors).toEqual([{ message: engine.problem, fatal: true }]);
    conv.pushFrame(new Float32Array(1920));
    await conv.close();
  });

  it('without auto-download the error names the pull command for the language model', async () => {
    const engine = await createCascadeEngine({ cacheDir, autoDownload: false, stt: 'pocketsphinx', tts: 'flite' }, { logger: quietLogger });
    await engine.warmUp!();
    expect(engine.problem).toMatch(/Run `quillman models pull qwen2\.5-0\.5b-instruct`/);
  });

  it('an explicitly chosen neural stage that is missing is an error, not a silent fallback', async () => {
    const engine = await createCascadeEngine({ cacheDir, autoDownload: false, stt: 'sherpa' }, { logger: quietLogger, stages: { lm: scriptedLm(() => '') } });
    const sink = new RecordingSink();
    await engine.openConversation(opts(), sink);
    expect(sink.errors[0].fatal).toBe(true);
    expect(sink.errors[0].message).toMatch(/quillman models pull zipformer-en-2023-06-26/);
  });

  it("'openai' without a URL explains what to set", async () => {
    const engine = await createCascadeEngine({ lm: 'openai', stt: 'pocketsphinx', tts: 'flite' }, { logger: quietLogger });
    await engine.warmUp!();
    expect(engine.problem).toMatch(/needs a URL/);
  });

  it('a GGUF path runs on node-llama-cpp', async () => {
    const path = join(cacheDir, 'tiny.gguf');
    writeTinyLlamaGguf(path);
    const engine = await createCascadeEngine({ stt: 'pocketsphinx', tts: 'flite', llama: { model: path, contextSize: 512, threads: 1 } }, { logger: quietLogger });
    await engine.warmUp!();
    expect(engine.problem).toBeUndefined();
    expect(engine.info.stages?.lm).toBe('llama.cpp:quillman-test-tiny');
    await engine.dispose!();
  });

  it('downloads a missing model on first use, reporting progress, then loads it', async () => {
    const gguf = join(cacheDir, 'served.gguf');
    writeTinyLlamaGguf(gguf);
    const body = readFileSync(gguf);
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;
    const registry: ModelSpec[] = [
      { name: 'tiny-lm', kind: 'lm', description: '', license: '', default: true, files: [{ path: 'model.gguf', url, size: body.length, sha256: createHash('sha256').update(body).digest('hex') }] },
    ];
    const fresh = mkdtempSync(join(tmpdir(), 'quillman-fresh-'));
    try {
      const engine = await createCascadeEngine(
        { cacheDir: fresh, autoDownload: true, stt: 'pocketsphinx', tts: 'flite', llama: { model: 'tiny-lm', contextSize: 512, threads: 1 } },
        { logger: quietLogger, registry },
      );
      const progress: ProgressReport[] = [];
      await engine.warmUp!((p) => progress.push(p));
      expect(engine.problem).toBeUndefined();
      expect(engine.info.stages?.lm).toBe('llama.cpp:quillman-test-tiny');
      const downloads = progress.filter((p) => p.stage === 'download:tiny-lm');
      expect(downloads.length).toBeGreaterThan(0);
      expect(downloads[downloads.length - 1].fraction).toBeCloseTo(1, 2);
      expect(existsSync(join(fresh, 'tiny-lm', 'model.gguf'))).toBe(true);
      await engine.dispose!();
    } finally {
      server.close();
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('rejects invalid settings with a readable message', async () => {
    await expect(createCascadeEngine({ hangMs: 5, bogus: true })).rejects.toThrow(/Invalid cascade engine settings: hangMs: .*>=200.*Unrecognized key: "bogus"/);
  });
});

describe('sherpa-onnx-node (the default neural stages)', () => {
  it('loads its native addon here', () => {
    const sherpa = loadSherpa();
    expect(sherpa.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof sherpa.OnlineRecognizer).toBe('function');
  });

  it("runs a real ONNX model in-process next to onnxruntime-node (its Silero VAD on the same .onnx)", async () => {
    const ours = (await loadSileroVad()).create();
    const pcm = concat(silence(500, 16_000), await speak('hello there, how are you', { rate: 16_000 }), silence(800, 16_000));
    expect((await ours.process(pcm)).some((p) => p > 0.5)).toBe(true);
    const sherpa = loadSherpa() as unknown as {
      Vad: new (config: unknown, bufferSeconds: number) => {
        acceptWaveform(s: Float32Array): void;
        flush(): void;
        isEmpty(): boolean;
        front(): { start: number; samples: Float32Array };
        pop(): void;
      };
    };
    const vad = new sherpa.Vad({ sileroVad: { model: sileroModelPath(), threshold: 0.5, minSpeechDuration: 0.25, minSilenceDuration: 0.5, windowSize: 512 }, sampleRate: 16_000, numThreads: 1, debug: false }, 30);
    for (let i = 0; i + 512 <= pcm.length; i += 512) vad.acceptWaveform(pcm.subarray(i, i + 512));
    vad.flush();
    const segments: number[] = [];
    while (!vad.isEmpty()) {
      segments.push(vad.front().start);
      vad.pop();
    }
    expect(segments).toHaveLength(1);
    // The speech starts after the 500 ms of silence.
    expect(segments[0]).toBeGreaterThan(6_000);
  });

  it('asks for the model download when the model folder is empty', async () => {
    await expect(loadSherpaStt({ modelDir: join(cacheDir, 'none') })).rejects.toThrow(/quillman models pull zipformer-en-2023-06-26/);
    await expect(loadSherpaTts({ modelDir: join(cacheDir, 'none') })).rejects.toThrow(/quillman models pull piper-en_US-amy-medium/);
  });
});
