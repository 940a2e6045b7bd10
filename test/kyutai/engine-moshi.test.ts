/**
 * `quillman serve --engine moshi` as a user runs it: it finds (or makes) the
 * Python environment, takes the weights, and starts Kyutai's server through
 * the local provider. Here with the tiny checkpoint on the CPU (no GPU, no
 * Hub); the GPU checks are exercised for their errors.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runChat } from '../../src/client/chat.js';
import { CLI_ARGS, eventually, REPO } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { MARKER_VARIABLE, newMarker, stopProcessGroup } from '../helpers/processes.js';
import { speak } from '../helpers/speech.js';
import { expectNoneLeft, requireTinyMoshi } from './real-moshi.js';

const run = promisify(execFile);
const marker = newMarker();

afterAll(async () => {
  await expectNoneLeft(marker);
});

describe('quillman serve --engine moshi', () => {
  it("sets up and serves Kyutai's server (tiny checkpoint, CPU), and a conversation goes through", async () => {
    const tiny = requireTinyMoshi();
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [...CLI_ARGS, 'serve', '--engine', 'moshi', '--moshi-device', 'cpu', '--moshi-checkpoint', tiny.checkpoint, '--host', '127.0.0.1', '--port', String(port), '--worker-base-port', String(await freePort())],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, [MARKER_VARIABLE]: marker, QUILLMAN_LOG_FORMAT: 'json' } },
    );
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    try {
      const health = await eventually(
        async () => {
          if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}:\n${output.slice(-3000)}`);
          const r = await fetch(`http://127.0.0.1:${port}/health`);
          const body = (await r.json()) as { engine?: string; pool?: { workers: { state: string }[] } };
          return body.pool?.workers.some((w) => w.state === 'idle') && body;
        },
        240_000,
        'the Kyutai worker to be ready',
        500,
      );
      expect(health.engine).toMatch(/moshi.*Kyutai.*0\.2\.13.*cpu/);
      expect(output).toMatch(/moshi: Moshi on the CPU: for tests/);
      const result = await runChat({ url: `ws://127.0.0.1:${port}/api/chat`, input: await speak('Hello there.'), lingerMs: 1000, handshakeTimeoutMs: 120_000 });
      expect(result.errors).toEqual([]);
      expect(result.audio.length / 24_000).toBeGreaterThan(1);
      expect(result.text.trim().length).toBeGreaterThan(0);
    } finally {
      await stopProcessGroup(child, 15_000);
    }
  }, 300_000);

  it('explains what to do on a machine without a GPU, and refuses Moshi 7B on a CPU', async () => {
    const noGpu = await run(process.execPath, [...CLI_ARGS, 'serve', '--engine', 'moshi', '--port', '0'], {
      cwd: REPO,
      env: { ...process.env, QUILLMAN_NVIDIA_SMI: '/nonexistent/nvidia-smi' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(noGpu.code).toBe(1);
    expect(noGpu.stderr).toMatch(/No NVIDIA GPU was found.*--provider modal.*--engine cascade/s);
    const cpu = await run(process.execPath, [...CLI_ARGS, 'serve', '--engine', 'moshi', '--moshi-device', 'cpu', '--port', '0'], { cwd: REPO }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(cpu.code).toBe(1);
    expect(cpu.stderr).toMatch(/cannot run in real time on a CPU/);
  }, 60_000);
});
