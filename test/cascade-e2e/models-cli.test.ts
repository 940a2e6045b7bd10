/**
 * `quillman models list` and `quillman models pull`, run as the CLI process a
 * user runs, against a fake model host standing in for Hugging Face and
 * GitHub through QUILLMAN_MODEL_MIRROR (the setting users point at a real
 * mirror). Exit codes and what is printed are part of the contract.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mirroredUrl } from '../../src/models/mirror.js';
import { findModel, MODELS } from '../../src/models/registry.js';
import { CLI_ARGS, REPO } from '../helpers/gateway.js';
import { mirrorPath, startFakeModelHost, type FakeModelHost } from './fake-model-host.js';
import { freePort } from '../helpers/net.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI_ARGS, ...args], { cwd: REPO, env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let work: string;
let cache: string;
let host: FakeModelHost;
const VOICE = 'piper-en_US-amy-medium';
const STT = 'zipformer-en-2023-06-26';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'quillman-models-cli-'));
  cache = join(work, 'cache');
  host = await startFakeModelHost({ workDir: work, voiceBytes: 300_000, breakFirstAfter: 120_000 });
});

afterAll(async () => {
  await host?.close();
  rmSync(work, { recursive: true, force: true });
});

const env = () => ({ QUILLMAN_CACHE_DIR: cache, QUILLMAN_MODEL_MIRROR: host.mirror });

describe('quillman models (CLI) against a fake model host', () => {
  it('lists the models, none installed, with the cache folder', async () => {
    const r = await cli(['models', 'list'], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Model cache: ${cache}`);
    for (const m of MODELS) expect(r.stdout).toMatch(new RegExp(`^  ${m.name.replace(/\./g, '\\.')} `, 'm'));
    expect(r.stdout).toContain('Install with `quillman models pull');
    const json = await cli(['models', 'list', '--json'], env());
    expect(JSON.parse(json.stdout).map((m: { name: string; installed: boolean }) => [m.name, m.installed])).toEqual(MODELS.map((m) => [m.name, false]));
  });

  it('pulls from the mirror, resumes after a broken download, and records the checksum it could not verify', async () => {
    // The host breaks the first download off: the pull fails, saying how to go on, and keeps what arrived.
    const first = await cli(['models', 'pull', VOICE], env());
    expect(first.code).toBe(1);
    expect(first.stdout).toContain(`Downloading from the mirror ${host.mirror}`);
    expect(first.stdout).toMatch(new RegExp(`✗ ${VOICE}: Download of .* broke off after \\d+ bytes; run again to resume`));

    const second = await cli(['models', 'pull', VOICE], env());
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const voicePath = mirrorPath(findModel(VOICE)!.archive!.url);
    const asked = host.requests.filter((r) => r.path === voicePath);
    expect(asked).toHaveLength(2);
    expect(asked[0].range).toBeUndefined();
    expect(asked[1].range).toMatch(/^bytes=\d+-$/);
    expect(Number(asked[1].range!.slice(6, -1))).toBeGreaterThan(0);
    const sha = createHash('sha256').update(host.voiceArchive).digest('hex');
    expect(second.stdout).toContain(`✓ ${VOICE} → ${join(cache, VOICE)}`);
    expect(second.stdout).toContain(`recorded sha256 ${sha}`);
    expect(readdirSync(join(cache, VOICE)).sort()).toEqual(['README.txt', 'payload.bin', 'quillman-manifest.json']);

    const list = await cli(['models', 'list'], env());
    expect(list.stdout).toMatch(new RegExp(`^✓ ${VOICE} `, 'm'));
    expect(list.stdout).toMatch(new RegExp(`^  ${STT} `, 'm'));
  });

  it('refuses files whose checksum does not match, deletes them, and exits 1', async () => {
    const r = await cli(['models', 'pull', STT], env());
    expect(r.code).toBe(1);
    const encoder = findModel(STT)!.files![0];
    expect(host.requests.some((q) => q.path === mirrorPath(encoder.url))).toBe(true);
    expect(r.stdout).toContain(`Checksum mismatch for ${host.mirror}${mirrorPath(encoder.url)}: expected sha256 ${encoder.sha256}`);
    expect(existsSync(join(cache, STT, encoder.path))).toBe(false);
    expect(existsSync(join(cache, STT, `${encoder.path}.partial`))).toBe(false);
    expect(existsSync(join(cache, STT, 'quillman-manifest.json'))).toBe(false);
  });

  it('explains unknown names, a bad mirror setting and an unreachable mirror', async () => {
    const unknown = await cli(['models', 'pull', 'no-such-model'], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain('✗ Unknown model no-such-model. Known: ');

    const bad = await cli(['models', 'pull', VOICE], { ...env(), QUILLMAN_MODEL_MIRROR: 'ftp://mirror' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('QUILLMAN_MODEL_MIRROR="ftp://mirror" is not an http(s) URL');

    const down = await cli(['models', 'pull', STT], { ...env(), QUILLMAN_MODEL_MIRROR: `http://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/the connection was refused \(ECONNREFUSED\)\. Check that this machine can reach 127\.0\.0\.1:\d+.*QUILLMAN_MODEL_MIRROR/);
  });

  it('maps registry URLs onto a mirror, and Hugging Face URLs onto HF_ENDPOINT', () => {
    const url = 'https://huggingface.co/org/repo/resolve/abc/model.gguf';
    expect(mirroredUrl(url, {})).toBe(url);
    expect(mirroredUrl(url, { QUILLMAN_MODEL_MIRROR: 'http://m.local/models/' })).toBe('http://m.local/models/huggingface.co/org/repo/resolve/abc/model.gguf');
    expect(mirroredUrl(url, { HF_ENDPOINT: 'https://hf-mirror.com' })).toBe('https://hf-mirror.com/org/repo/resolve/abc/model.gguf');
    expect(mirroredUrl('https://github.com/a/b/releases/x.tar.bz2', { HF_ENDPOINT: 'https://hf-mirror.com' })).toBe('https://github.com/a/b/releases/x.tar.bz2');
  });
});
