/**
 * Moshi's weights through the real download path, against a STAND-IN for the
 * Hugging Face Hub (the Hub cannot be reached here): a local HTTP server that
 * answers the Hub's tree API and resolve URLs with small files made by the
 * test, honouring Range, and able to break off once or serve a damaged file.
 * And the GPU plan, read from a stand-in nvidia-smi (no GPU here).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { detectGpus, planGpus } from '../../src/kyutai/gpus.js';
import { checkpointWeights, MoshiSetupError, prepareMoshi, serverCommand } from '../../src/kyutai/prepare.js';
import { ensureMoshiWeights, WeightsError } from '../../src/kyutai/weights.js';
import { writeRangeHead } from '../helpers/http-range.js';
import { tempDir } from '../helpers/speech.js';

interface HubFile {
  path: string;
  body: Buffer;
  lfs: boolean;
}

/** Stand-in for huggingface.co: /api/models/<repo>/tree/main and /<repo>/resolve/main/<file>. */
async function startStandInHub(repo: string, files: HubFile[]) {
  const requests: { path: string; range?: string }[] = [];
  let breakNext: string | undefined;
  let damage: string | undefined;
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push({ path, range: req.headers.range });
    if (path === `/api/models/${repo}/tree/main`) {
      const listing = [
        { type: 'file', path: '.gitattributes', size: 10, oid: 'abc' },
        { type: 'file', path: 'README.md', size: 20, oid: 'def' },
        ...files.map((f) =>
          f.lfs
            ? { type: 'file', path: f.path, size: 134, oid: 'x', lfs: { oid: createHash('sha256').update(f.body).digest('hex'), size: f.body.length } }
            : { type: 'file', path: f.path, size: f.body.length, oid: 'y' },
        ),
      ];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(listing));
      return;
    }
    const file = files.find((f) => path === `/${repo}/resolve/main/${f.path}`);
    if (!file) return void res.writeHead(404).end('not found');
    const body = damage === file.path ? Buffer.concat([file.body.subarray(0, -1), Buffer.from([file.body.at(-1)! ^ 0xff])]) : file.body;
    const start = writeRangeHead(res, body, req.headers.range);
    if (start === undefined) return;
    if (breakNext === file.path) {
      breakNext = undefined;
      res.write(body.subarray(start, start + Math.floor((body.length - start) / 2)));
      setTimeout(() => res.destroy(), 50);
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    breakOnce: (path: string) => (breakNext = path),
    damage: (path: string | undefined) => (damage = path),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const REPO = 'kyutai/moshiko-pytorch-q8';
const FILES: HubFile[] = [
  { path: 'model.q8.safetensors', body: randomBytes(400_000), lfs: true },
  { path: 'tokenizer-e351c8d8-checkpoint125.safetensors', body: randomBytes(150_000), lfs: true },
  { path: 'tokenizer_spm_32k_3.model', body: randomBytes(50_000), lfs: true },
  { path: 'config.json', body: Buffer.from('{"quantize": true}'), lfs: false },
];

let hub: Awaited<ReturnType<typeof startStandInHub>>;
const savedEnv = { ...process.env };

beforeAll(async () => {
  hub = await startStandInHub(REPO, FILES);
});
afterEach(() => {
  process.env = { ...savedEnv };
  hub.damage(undefined);
});
afterAll(async () => {
  await hub.close();
});

describe("Moshi's weights", () => {
  it('lists the repository, downloads only what the server reads with checksums, and later runs offline', async () => {
    const cache = await tempDir();
    try {
      process.env.HF_ENDPOINT = hub.url;
      const progress: string[] = [];
      const weights = await ensureMoshiWeights({ voice: 'moshiko', quantization: 'q8', cacheDir: cache.path, onFileProgress: (file) => progress.push(file) });
      expect(weights.moshi).toBe(join(cache.path, 'moshi-moshiko-q8', 'model.q8.safetensors'));
      expect(weights.mimi).toBe(join(cache.path, 'moshi-moshiko-q8', 'tokenizer-e351c8d8-checkpoint125.safetensors'));
      expect(weights.tokenizer).toBe(join(cache.path, 'moshi-moshiko-q8', 'tokenizer_spm_32k_3.model'));
      expect(weights.config).toBe(join(cache.path, 'moshi-moshiko-q8', 'config.json'));
      expect(await readFile(weights.moshi)).toEqual(FILES[0].body);
      expect(new Set(progress)).toEqual(new Set(FILES.map((f) => f.path)));
      expect(hub.requests.some((r) => r.path.endsWith('README.md'))).toBe(false);

      // Installed: the Hub is not asked again, so a machine without it runs from a copied cache.
      const before = hub.requests.length;
      process.env.HF_ENDPOINT = 'http://127.0.0.1:9';
      expect(await ensureMoshiWeights({ voice: 'moshiko', quantization: 'q8', cacheDir: cache.path })).toEqual(weights);
      expect(hub.requests.length).toBe(before);
    } finally {
      await cache.cleanup();
    }
  });

  it('resumes a download that broke off, and refuses a damaged file', async () => {
    const cache = await tempDir();
    try {
      process.env.HF_ENDPOINT = hub.url;
      hub.breakOnce('model.q8.safetensors');
      await expect(ensureMoshiWeights({ voice: 'moshiko', quantization: 'q8', cacheDir: cache.path, idleTimeoutMs: 5000 })).rejects.toThrow(/run again to resume/);
      await ensureMoshiWeights({ voice: 'moshiko', quantization: 'q8', cacheDir: cache.path });
      const resumed = hub.requests.filter((r) => r.path.endsWith('model.q8.safetensors') && r.range);
      expect(resumed.length).toBeGreaterThan(0);

      const other = await tempDir();
      try {
        hub.damage('tokenizer_spm_32k_3.model');
        await expect(ensureMoshiWeights({ voice: 'moshiko', quantization: 'q8', cacheDir: other.path })).rejects.toThrow(/Checksum mismatch.*tokenizer_spm_32k_3\.model/s);
      } finally {
        await other.cleanup();
      }
    } finally {
      await cache.cleanup();
    }
  });

  it('says what to do when the Hub cannot be reached', async () => {
    const cache = await tempDir();
    try {
      process.env.HF_ENDPOINT = 'http://127.0.0.1:9';
      const err = await ensureMoshiWeights({ voice: 'moshika', quantization: 'bf16', cacheDir: cache.path }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WeightsError);
      expect((err as Error).message).toMatch(/not reachable.*kyutai\/moshika-pytorch-bf16.*HF_ENDPOINT/s);
    } finally {
      await cache.cleanup();
    }
  });
});

describe('GPUs for Moshi', () => {
  const gpu = (index: string, gib: number) => ({ index, name: 'NVIDIA Test', memoryMiB: gib * 1024 });

  it('picks bf16 on 24 GB, q8 on 16 GB, and refuses 8 GB or no GPU with what to do', () => {
    expect(planGpus([gpu('0', 24), gpu('1', 80)], { quantization: 'auto' }).quantization).toBe('bf16');
    expect(planGpus([gpu('0', 24), gpu('1', 16)], { quantization: 'auto' }).quantization).toBe('q8');
    expect(planGpus([gpu('0', 16), gpu('1', 80)], { quantization: 'auto', wanted: ['1'] })).toEqual({ gpus: [gpu('1', 80)], quantization: 'bf16' });
    expect(() => planGpus([gpu('0', 8)], { quantization: 'auto' })).toThrow(/has 8 GB.*needs at least 12 GB/);
    expect(() => planGpus([gpu('0', 16)], { quantization: 'bf16' })).toThrow(/needs at least 24 GB.*--moshi-quantization q8/);
    expect(() => planGpus([], { quantization: 'auto' })).toThrow(/No NVIDIA GPU was found.*--provider modal.*--engine cascade/);
    expect(() => planGpus([gpu('0', 24)], { quantization: 'auto', wanted: ['3'] })).toThrow(/GPU 3 is not on this machine/);
  });

  it('reads the GPUs from nvidia-smi (a stand-in script here: this machine has no GPU)', async () => {
    const dir = await tempDir();
    try {
      const smi = join(dir.path, 'nvidia-smi');
      await writeFile(smi, '#!/bin/sh\necho "0, NVIDIA L4, 23034"\necho "1, NVIDIA H100 80GB HBM3, 81559"\n');
      await chmod(smi, 0o755);
      expect(await detectGpus({ ...process.env, QUILLMAN_NVIDIA_SMI: smi })).toEqual([
        { index: '0', name: 'NVIDIA L4', memoryMiB: 23034 },
        { index: '1', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 },
      ]);
      expect(await detectGpus({ ...process.env, QUILLMAN_NVIDIA_SMI: join(dir.path, 'missing') })).toEqual([]);
    } finally {
      await dir.cleanup();
    }
  });

  it('refuses to run Moshi on a CPU without a small checkpoint, and on a machine without GPUs', async () => {
    await expect(prepareMoshi({ settings: { voice: 'moshiko', quantization: 'auto', device: 'cpu' } })).rejects.toThrow(/cannot run in real time on a CPU.*--engine cascade/s);
    const err = await prepareMoshi({ settings: { voice: 'moshiko', quantization: 'auto', device: 'cuda' }, detect: async () => [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MoshiSetupError);
    expect((err as Error).message).toMatch(/No NVIDIA GPU/);
  });

  it('builds the server command from a checkpoint folder of its own', async () => {
    const dir = await tempDir();
    try {
      for (const f of ['config.json', 'model.safetensors', 'mimi.safetensors', 'tokenizer.model']) await writeFile(join(dir.path, f), '');
      const weights = checkpointWeights(dir.path);
      const command = serverCommand('/venv/bin/python', weights, 'cpu');
      expect(command).toContain(`--moshi-weight ${join(dir.path, 'model.safetensors')}`);
      expect(command).toContain(`--mimi-weight ${join(dir.path, 'mimi.safetensors')}`);
      expect(command).toContain('--device cpu');
      expect(command).toContain('--static none');
      expect(command).toMatch(/--host \{host\} --port \{port\}$/);
    } finally {
      await dir.cleanup();
    }
  });
});
