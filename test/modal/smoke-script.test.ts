/**
 * scripts/modal-smoke.ts, the real-account check, run here against the
 * control-plane STAND-IN instead of Modal (the script cannot tell): it must
 * skip without a token, hold a cold and a warm conversation and print what it
 * measured, leave nothing running, and `--stop-all` must end what gateways
 * left in an app.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/gateway.js';
import { startModalTestEnv, type ModalTestEnv } from './harness.js';

let env: ModalTestEnv;
const SCRIPT = 'scripts/modal-smoke.ts';

beforeAll(async () => {
  env = await startModalTestEnv();
});

afterAll(async () => {
  await env?.close();
});

function runScript(args: string[], extraEnv: Record<string, string | undefined>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: REPO, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('the Modal smoke script', () => {
  it('skips, saying what it needs, without a token', async () => {
    const { code, out } = await runScript([], { MODAL_TOKEN_ID: '', MODAL_TOKEN_SECRET: '', MODAL_CONFIG_PATH: '/nonexistent/modal.toml' });
    expect(code).toBe(0);
    expect(out).toMatch(/skipped.*MODAL_TOKEN_ID and MODAL_TOKEN_SECRET/s);
  });

  it('holds a cold and a warm conversation, prints what it measured, and leaves nothing running', async () => {
    const { code, out } = await runScript(['--app', 'quillman-smoke-test', '--ready-timeout', '120'], env.childEnv());
    expect(out).toMatch(/\| cold \| \d+ \| \d+ \|/);
    expect(out).toMatch(/\| warm \| \d+ \| \d+ \|/);
    expect(out).toMatch(/waiting for an L40S GPU on Modal/);
    expect(out).toMatch(/quillman_modal_estimated_cost_dollars_total\{gpu="L40S"\} [\d.e-]+/);
    expect(code).toBe(0);
    expect(env.live()).toEqual([]);
  }, 180_000);

  it('--stop-all terminates every sandbox a gateway left in the app, and nothing else', async () => {
    const { ModalClient } = await import('modal');
    const modal = new ModalClient();
    const app = await modal.apps.fromName('quillman-stop-test', { createIfMissing: true });
    const image = modal.images.fromRegistry('python:3.11-slim');
    const params = { gpu: 'T4', command: ['python', '-m', 'moshi.server', '--port', '8998'] };
    const left = await modal.sandboxes.create(app, image, { ...params, tags: { 'quillman-gateway': 'old-gateway' } });
    const unrelated = await modal.sandboxes.create(app, image, params);
    const { code, out } = await runScript(['--stop-all', '--app', 'quillman-stop-test'], env.childEnv());
    expect(out).toMatch(/1 sandbox\(es\) terminated in app "quillman-stop-test"/);
    expect(code).toBe(0);
    await env.standIn.waitForSandbox(left.sandboxId, (s) => s.state === 'finished', 30_000);
    expect(env.standIn.sandbox(unrelated.sandboxId)?.state).toBe('running');
    await unrelated.terminate();
    modal.close();
  }, 60_000);
});
