/**
 * Kyutai's REAL moshi.server (the pinned PyPI release, on the tiny random
 * checkpoint, on this machine's CPU) as the process of each "sandbox" of the
 * control-plane STAND-IN: whole conversations from a client through the
 * gateway, the modal provider, Modal's connect-token endpoint (the stand-in's
 * TLS proxy) to Kyutai's server. Only Modal's control plane and the GPU are
 * stood in; the server code and the wire are Kyutai's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTinyMoshi, HOW_TO_MAKE, tinyServerArgs, TINY_SERVER_ENV, type TinyMoshi } from '../../scripts/kyutai/tiny-moshi.js';
import { runChat } from '../../src/client/chat.js';
import { GatewaySettingsSchema } from '../../src/gateway/config.js';
import { startGateway, type Gateway } from '../../src/gateway/server.js';
import { createPool, type WorkerPool } from '../../src/pool/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { speak } from '../helpers/speech.js';
import { waitFor } from '../pool/helpers.js';
import { startModalTestEnv, type ModalTestEnv } from './harness.js';
import type { Launcher } from './stand-in/stand-in.js';

let env: ModalTestEnv;
let pool: WorkerPool;
let gateway: Gateway;
let speech: Float32Array;

function requireTiny(): TinyMoshi {
  const tiny = findTinyMoshi();
  if (!tiny) throw new Error(`Kyutai's Moshi server for tests is not set up on this machine. Run \`${HOW_TO_MAKE}\` once (it installs moshi in a Python environment and writes a tiny model), then run the tests again.`);
  return tiny;
}

beforeAll(async () => {
  const tiny = requireTiny();
  // The sandbox runs what the provider asked for, on the tiny checkpoint: Kyutai's server on the container port, HF_HOME on the volume.
  const launcher: Launcher = (ctx) => ({
    command: tiny.python,
    args: tinyServerArgs(tiny, ctx.port),
    env: { ...TINY_SERVER_ENV, HF_HOME: `${ctx.volumes['/cache']}/huggingface` },
  });
  [env, speech] = await Promise.all([startModalTestEnv({ launcher }), speak('Hello there. Can you hear me on this serverless GPU?')]);
  pool = createPool(env.config({ workers: 1, warm: 0, modal: { readyTimeoutSeconds: 300 } }), silentLogger);
  await pool.start();
  gateway = await startGateway({ settings: GatewaySettingsSchema.parse({ host: '127.0.0.1', port: 0 }), pool, log: silentLogger, engineLabel: "Kyutai's Moshi on Modal GPUs" });
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await pool?.close();
  await env?.close();
});

describe("Kyutai's real server in a Modal sandbox", () => {
  it('holds a whole conversation through the gateway, then a second one on the same sandbox', async () => {
    const chatUrl = `ws://127.0.0.1:${gateway.port}/api/chat`;
    const told: string[] = [];
    const first = await runChat({ url: chatUrl, input: speech, lingerMs: 1500, handshakeTimeoutMs: 240_000, onEvent: (e) => told.push(String((e as { message?: string }).message ?? '')) });
    expect(first.errors).toEqual([]);
    expect(first.timeToHandshakeMs).toBeGreaterThan(0);
    expect(first.audio.length / 24_000).toBeGreaterThan(1);
    expect(first.pagesReceived).toBeGreaterThan(10);
    // The caller heard the start-up stages while the cold sandbox came up.
    expect(told.join('\n')).toMatch(/waiting for an L40S GPU on Modal/);
    expect(told.join('\n')).toMatch(/Kyutai's server is starting on an L40S/);

    const [sandbox] = env.standIn.sandboxes({ state: 'live' });
    // What the provider asked Modal to run (the stand-in ran the tiny model in its place).
    expect(sandbox).toMatchObject({ gpu: 'L40S', containerPort: 8998, requestedCommand: ['python', '-m', 'moshi.server', '--host', '0.0.0.0', '--port', '8998', '--static', 'none'], tunnels: [] });
    expect(sandbox.output.join('\n')).toMatch(/moshi|mimi/i);

    // Kyutai's server resets its model state per connection: the warm sandbox serves the next caller.
    await waitFor('the sandbox free again', () => pool.snapshot().workers[0]?.state === 'idle', 30_000);
    const second = await runChat({ url: chatUrl, input: speech.subarray(0, 24_000 * 2), lingerMs: 1000, handshakeTimeoutMs: 60_000 });
    expect(second.errors).toEqual([]);
    expect(second.audio.length / 24_000).toBeGreaterThan(1);
    expect(env.standIn.sandboxes()).toHaveLength(1);
    expect(pool.snapshot().workers[0].details?.sandboxId).toBe(sandbox.sandboxId);
  }, 300_000);
});
