/**
 * A gateway on Modal that dies (SIGKILL: no goodbye) and a new one in its
 * place: the new gateway finds the sandboxes by its tag, keeps the healthy
 * idle ones up to maxWorkers, terminates the rest, serves conversations on
 * what it took over, and leaves nothing running when it stops. Gateways are
 * real `quillman serve` processes; Modal is the control-plane STAND-IN in
 * this process, so its sandboxes outlive the gateway as Modal's would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerInfo } from '../../src/pool/types.js';
import { CLI_ARGS, REPO } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { stopProcessGroup } from '../helpers/processes.js';
import { connectClient, isEvent, isHandshake } from '../helpers/ws-client.js';
import { waitFor } from '../pool/helpers.js';
import { startModalTestEnv, type ModalTestEnv } from './harness.js';

let env: ModalTestEnv;
const children: ChildProcess[] = [];
const APP = 'quillman-restart-test';
const TAG = 'gw-restart-test';

beforeAll(async () => {
  env = await startModalTestEnv();
});

afterAll(async () => {
  await Promise.all(children.map((c) => stopProcessGroup(c, 10_000)));
  await env?.close();
});

interface ChildGateway {
  child: ChildProcess;
  url: string;
  output(): string;
  workers(): Promise<WorkerInfo[]>;
}

async function startGatewayProcess(flags: string[]): Promise<ChildGateway> {
  const port = await freePort();
  const args = [...CLI_ARGS, 'serve', '--host', '127.0.0.1', '--port', String(port), '--provider', 'modal', '--modal-app', APP, '--modal-gateway-tag', TAG, '--modal-gpu-wait', '30', ...flags];
  const child = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, ...env.childEnv(), QUILLMAN_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-50_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-50_000)));
  const url = `http://127.0.0.1:${port}`;
  const workers = async () => ((await (await fetch(`${url}/health`)).json()) as { pool: { workers: WorkerInfo[] } }).pool.workers;
  await waitFor(`the gateway to listen (output so far:\n${output})`, async () => {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}:\n${output}`);
    return (await fetch(`${url}/health/live`)).ok;
  }, 60_000);
  return { child, url, output: () => output, workers };
}

const ours = () => env.standIn.sandboxes({ tags: { 'quillman-gateway': TAG } });
const liveOurs = () => ours().filter((s) => s.state !== 'finished');

describe('a gateway restart on Modal', () => {
  it('takes over the healthy idle sandboxes up to maxWorkers, terminates the rest, and leaves none behind', async () => {
    // Another gateway's sandbox in the same app: not ours to take or end.
    const { ModalClient } = await import('modal');
    const modal = new ModalClient();
    const app = await modal.apps.fromName(APP, { createIfMissing: true });
    const foreign = await modal.sandboxes.create(app, modal.images.fromRegistry('python:3.11-slim'), {
      gpu: 'T4',
      command: ['python', '-m', 'moshi.server', '--port', '8998'],
      tags: { 'quillman-gateway': 'someone-else' },
    });

    const first = await startGatewayProcess(['--warm', '3', '--max-workers', '3']);
    await waitFor('three warm sandboxes', async () => (await first.workers()).filter((w) => w.state === 'idle').length === 3, 90_000);
    const before = liveOurs().map((s) => s.sandboxId).sort();
    expect(before).toHaveLength(3);

    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    // Dead gateway, sandboxes still running (and billing) on Modal.
    expect(liveOurs().map((s) => s.sandboxId).sort()).toEqual(before);

    const second = await startGatewayProcess(['--warm', '1', '--max-workers', '2', '--idle-timeout', '600']);
    await waitFor('two sandboxes taken over and ready', async () => (await second.workers()).filter((w) => w.state === 'idle').length === 2, 60_000);
    const taken = (await second.workers()).map((w) => String(w.details?.sandboxId)).sort();
    expect((await second.workers()).every((w) => w.details?.adopted === true)).toBe(true);
    expect(before).toEqual(expect.arrayContaining(taken));
    await waitFor('the third sandbox terminated', () => liveOurs().length === 2, 30_000);
    // None was made anew: the healthy ones were reused.
    expect(ours()).toHaveLength(3);
    expect(second.output()).toMatch(/terminating Modal sandbox sb-\w+ left by an earlier gateway: more than maxWorkers \(2\)/);

    // A conversation on a sandbox it took over.
    const client = connectClient(`${second.url.replace('http', 'ws')}/api/chat`);
    await client.waitFor(isHandshake, 60_000, 'handshake');
    const session = await client.waitFor(isEvent('session'), 10_000, 'the session event');
    expect(session.kind === 'metadata' && session.data).toMatchObject({ worker: expect.stringMatching(/^modal-\d$/) });
    client.ws.close();
    await client.closed;

    // A clean stop ends everything this gateway owns, and only that.
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
    await waitFor('our sandboxes gone', () => liveOurs().length === 0, 30_000);
    expect(env.standIn.sandbox(foreign.sandboxId)?.state).toBe('running');
    await foreign.terminate();
    modal.close();
  }, 240_000);
});
