/**
 * The model downloader against a local HTTP server: progress, resuming an
 * interrupted download with a Range request, checksum failures, unreachable
 * hosts, stalls, and installing registry models (files and archives).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { modelCacheDir } from '../../src/models/cache.js';
import { modelsList, modelsPull } from '../../src/models/commands.js';
import { downloadFile, DownloadError, type DownloadProgress } from '../../src/models/download.js';
import { stderrProgressBar } from '../../src/models/progress-bar.js';
import { MODELS, type ModelSpec } from '../../src/models/registry.js';
import { ensureModel, installedModelDir, isInstalled, ModelNotInstalledError } from '../../src/models/store.js';
import { writeRangeHead } from '../helpers/http-range.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
const small = Buffer.from('tokens\nfor\ntesting\n');

let server: Server;
let base: string;
let work: string;
let archive: Buffer;
const requests: { url: string; range?: string }[] = [];
let flakyServed = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'quillman-dl-'));
  // An archive laid out like sherpa-onnx's releases: one top folder.
  const src = join(work, 'src');
  mkdirSync(join(src, 'voice-x', 'espeak-ng-data'), { recursive: true });
  writeFileSync(join(src, 'voice-x', 'voice.onnx'), payload.subarray(0, 1000));
  writeFileSync(join(src, 'voice-x', 'espeak-ng-data', 'phontab'), 'x');
  execFileSync('tar', ['-cjf', join(work, 'voice.tar.bz2'), '-C', src, 'voice-x']);
  archive = readFileSync(join(work, 'voice.tar.bz2'));

  server = createServer((req, res) => {
    const url = req.url ?? '';
    requests.push({ url, range: req.headers.range });
    const serve = (body: Buffer, honourRange = true) => {
      const start = writeRangeHead(res, body, honourRange ? req.headers.range : undefined);
      if (start !== undefined) res.end(body.subarray(start));
    };
    if (url === '/model.bin') return serve(payload);
    if (url === '/tokens.txt') return serve(small);
    if (url === '/voice.tar.bz2') return serve(archive);
    if (url === '/norange.bin') return serve(payload, false);
    if (url === '/flaky.bin') {
      // First request: announce the whole file, send a third, then drop the connection.
      if (flakyServed++ === 0 && !req.headers.range) {
        res.writeHead(200, { 'content-length': payload.length });
        res.write(payload.subarray(0, 100_000), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      return serve(payload);
    }
    if (url === '/stall.bin') {
      res.writeHead(200, { 'content-length': payload.length });
      res.write(payload.subarray(0, 1000));
      return; // never finishes
    }
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(work, { recursive: true, force: true });
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(work, 'case-'));
});

describe('downloadFile', () => {
  it('downloads with progress and a verified checksum', async () => {
    const progress: DownloadProgress[] = [];
    const dest = join(dir, 'model.bin');
    const res = await downloadFile({ url: `${base}/model.bin`, dest, sha256: sha(payload), onProgress: (p) => progress.push(p) });
    expect(readFileSync(dest).equals(payload)).toBe(true);
    expect(res).toMatchObject({ sha256: sha(payload), bytes: payload.length, resumedFrom: 0 });
    expect(existsSync(`${dest}.partial`)).toBe(false);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.every((p) => p.total === payload.length)).toBe(true);
    const received = progress.map((p) => p.received);
    expect(received).toEqual([...received].sort((a, b) => a - b));
    expect(progress[progress.length - 1]).toMatchObject({ done: true, received: payload.length });
  });

  it('resumes an interrupted download where it stopped (HTTP Range)', async () => {
    const dest = join(dir, 'flaky.bin');
    flakyServed = 0;
    const first = await downloadFile({ url: `${base}/flaky.bin`, dest, sha256: sha(payload) }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(DownloadError);
    expect((first as DownloadError).message).toMatch(/run again to resume/);
    const kept = statSync(`${dest}.partial`).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(payload.length);

    const second = await downloadFile({ url: `${base}/flaky.bin`, dest, sha256: sha(payload) });
    expect(second.resumedFrom).toBe(kept);
    expect(requests[requests.length - 1].range).toBe(`bytes=${kept}-`);
    expect(readFileSync(dest).equals(payload)).toBe(true);
  });

  it('starts over when the server ignores the Range header', async () => {
    const dest = join(dir, 'norange.bin');
    writeFileSync(`${dest}.partial`, payload.subarray(0, 5000));
    const res = await downloadFile({ url: `${base}/norange.bin`, dest, sha256: sha(payload) });
    expect(res.bytes).toBe(payload.length);
    expect(readFileSync(dest).equals(payload)).toBe(true);
  });

  it('rejects a file whose checksum does not match, and deletes it', async () => {
    const dest = join(dir, 'bad.bin');
    const err = await downloadFile({ url: `${base}/model.bin`, dest, sha256: 'ab'.repeat(32) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).code).toBe('checksum');
    expect((err as Error).message).toMatch(/Checksum mismatch.*expected sha256 abab.*got [0-9a-f]{64}/);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.partial`)).toBe(false);
  });

  it('says clearly when the host cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await downloadFile({ url: `http://127.0.0.1:${port}/x.bin`, dest: join(dir, 'x.bin') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).code).toBe('network');
    expect((err as Error).message).toMatch(/connection was refused \(ECONNREFUSED\).*quillman models pull/);
  });

  it('gives up on a stalled server and keeps what arrived for a resume', async () => {
    const dest = join(dir, 'stall.bin');
    const err = await downloadFile({ url: `${base}/stall.bin`, dest, idleTimeoutMs: 300 }).catch((e: unknown) => e);
    expect((err as DownloadError).code).toBe('timeout');
    expect(statSync(`${dest}.partial`).size).toBe(1000);
  });

  it('reports HTTP errors and honours cancellation', async () => {
    const err = await downloadFile({ url: `${base}/missing`, dest: join(dir, 'm') }).catch((e: unknown) => e);
    expect((err as DownloadError).code).toBe('http');
    expect((err as Error).message).toMatch(/HTTP 404/);
    const ac = new AbortController();
    ac.abort();
    const cancelled = await downloadFile({ url: `${base}/model.bin`, dest: join(dir, 'c'), signal: ac.signal }).catch((e: unknown) => e);
    expect((cancelled as DownloadError).code).toBe('aborted');
  });
});

function testRegistry(): ModelSpec[] {
  return [
    {
      name: 'test-files',
      kind: 'stt',
      description: 'two files',
      license: 'test',
      default: true,
      files: [
        { path: 'model.bin', url: `${base}/model.bin`, size: payload.length, sha256: sha(payload) },
        { path: 'tokens.txt', url: `${base}/tokens.txt`, size: small.length, sha256: null },
      ],
    },
    {
      name: 'test-archive',
      kind: 'tts',
      description: 'an archive',
      license: 'test',
      default: true,
      archive: { url: `${base}/voice.tar.bz2`, size: archive.length, sha256: sha(archive), topFolder: 'voice-x' },
    },
    { name: 'test-extra', kind: 'lm', description: 'not default', license: 'test', default: false, files: [{ path: 'x', url: `${base}/missing`, size: 1, sha256: null }] },
  ];
}

describe('model store and commands', () => {
  it('installs file models and archives once, with a manifest', async () => {
    const registry = testRegistry();
    const fractions: number[] = [];
    const folder = await ensureModel(registry[0], { cacheDir: dir, onProgress: (p) => fractions.push(p.fraction ?? -1) });
    expect(readFileSync(join(folder, 'model.bin')).equals(payload)).toBe(true);
    expect(await isInstalled(registry[0], dir)).toBe(true);
    expect(fractions[fractions.length - 1]).toBeCloseTo(1, 2);
    const before = requests.length;
    await ensureModel(registry[0], { cacheDir: dir });
    expect(requests.length).toBe(before);

    const voice = await ensureModel(registry[1], { cacheDir: dir });
    expect(existsSync(join(voice, 'voice.onnx'))).toBe(true);
    expect(existsSync(join(voice, 'espeak-ng-data', 'phontab'))).toBe(true);
    expect(existsSync(join(dir, 'test-archive.tar.bz2'))).toBe(false);
    expect(await installedModelDir('test-archive', dir, registry)).toBe(voice);
    await expect(installedModelDir('test-extra', dir, registry)).rejects.toBeInstanceOf(ModelNotInstalledError);
  });

  it('`models pull` installs the defaults and reports unpinned checksums; `models list` shows state', async () => {
    const registry = testRegistry();
    const lines: string[] = [];
    const results = await modelsPull([], { registry, cacheDir: dir, out: (l) => lines.push(l), progressBar: false });
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['test-files', true],
      ['test-archive', true],
    ]);
    expect(results[0].unpinned).toEqual([{ path: 'tokens.txt', sha256: sha(small) }]);
    expect(lines.join('\n')).toMatch(/✓ test-files/);

    const bad = await modelsPull(['nope', 'test-extra'], { registry, cacheDir: dir, out: (l) => lines.push(l), progressBar: false });
    expect(bad.map((r) => r.ok)).toEqual([false, false]);
    expect(bad[0].error).toMatch(/Unknown model nope/);
    expect(bad[1].error).toMatch(/HTTP 404/);

    const listed: string[] = [];
    const rows = await modelsList({ registry, cacheDir: dir, out: (l) => listed.push(l) });
    expect(rows.map((r) => [r.name, r.installed])).toEqual([
      ['test-files', true],
      ['test-archive', true],
      ['test-extra', false],
    ]);
    expect(listed[0]).toBe(`Model cache: ${dir}`);
    expect(listed.join('\n')).toMatch(/quillman models pull/);
  });

  it('draws a progress bar on stderr (a line per 10% when not a terminal)', () => {
    const written: string[] = [];
    const stream = { isTTY: false, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const bar = stderrProgressBar('model.bin', stream);
    for (let r = 0; r <= 1000; r += 50) bar({ url: 'u', received: r, total: 1000, resumedFrom: 0 });
    bar({ url: 'u', received: 1000, total: 1000, resumedFrom: 0, done: true });
    expect(written.length).toBeGreaterThanOrEqual(10);
    expect(written.length).toBeLessThanOrEqual(13);
    expect(written[written.length - 1]).toMatch(/model\.bin 100% .* done/);

    const tty: string[] = [];
    const ttyBar = stderrProgressBar('m', { isTTY: true, write: (s: string) => tty.push(s) } as unknown as NodeJS.WriteStream);
    ttyBar({ url: 'u', received: 500_000, total: 1_000_000, resumedFrom: 0 });
    ttyBar({ url: 'u', received: 1_000_000, total: 1_000_000, resumedFrom: 0, done: true });
    expect(tty[0]).toMatch(/^\rm \[#{12}-{12}\]  50% 0\.5\/1\.0 MB/);
    expect(tty[tty.length - 1]).toMatch(/100%.*\n$/);
  });

  it('puts the cache under QUILLMAN_CACHE_DIR or ~/.cache/quillman/models', () => {
    expect(modelCacheDir({ QUILLMAN_CACHE_DIR: '/tmp/qm' })).toBe('/tmp/qm');
    expect(modelCacheDir({})).toMatch(/\.cache\/quillman\/models$/);
  });

  it('registry entries are well formed (real URLs, SHA-256 or an explicit null)', () => {
    const names = new Set<string>();
    for (const m of MODELS) {
      expect(names.has(m.name)).toBe(false);
      names.add(m.name);
      const entries = m.archive ? [m.archive] : (m.files ?? []);
      expect(entries.length).toBeGreaterThan(0);
      for (const f of entries) {
        expect(f.url).toMatch(/^https:\/\/(huggingface\.co|github\.com)\//);
        if (f.sha256 !== null) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(f.size).toBeGreaterThan(0);
      }
    }
    expect(MODELS.filter((m) => m.default).map((m) => m.kind).sort()).toEqual(['lm', 'stt', 'tts']);
  });
});
