/**
 * The Modal control-plane stand-in (test/modal/stand-in/), driven by the REAL
 * `modal` SDK over real sockets: gRPC to the stand-in, TLS tunnels and the
 * connect-token proxy to real local processes (our loopback worker, or a small
 * inspection server). What the Modal provider's tests will rely on is proven
 * here first.
 */
import { spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import type { Image, ModalClient as ModalClientType, Sandbox } from 'modal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MARKER_VARIABLE, newMarker, processesWithMarker } from '../helpers/processes.js';
import { connectClient, isHandshake } from '../helpers/ws-client.js';
import { loopbackWorkerLauncher, REPO_ROOT, startModalStandIn, type Launcher, type ModalStandIn } from './stand-in/stand-in.js';

const marker = newMarker();
const INSPECT_SERVER = resolve(import.meta.dirname, 'stand-in/fixtures/inspect-server.mjs');
/** The command a provider would send for Kyutai's server: the stand-in does not run it. */
const KYUTAI_COMMAND = ['python', '-m', 'moshi.server', '--host', '0.0.0.0', '--port', '8998'];

/** The inspection server for sandboxes whose command names it; the loopback worker for the rest. */
const launcher: Launcher = (ctx) =>
  ctx.requestedCommand[0] === 'inspect'
    ? { command: process.execPath, args: [INSPECT_SERVER, '--port', String(ctx.port), ...(ctx.volumes['/data'] ? ['--volume', ctx.volumes['/data']] : [])] }
    : loopbackWorkerLauncher(ctx);

let standIn: ModalStandIn;
let ModalClient: typeof ModalClientType;
const loud: string[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  standIn = await startModalStandIn({ launcher, env: { [MARKER_VARIABLE]: marker }, log: (line) => loud.push(line) });
  // The SDK reads its config file when loaded, and these variables when a client is made.
  process.env.MODAL_CONFIG_PATH = resolve(standIn.stateDir, 'no-such-modal.toml');
  delete process.env.MODAL_PROFILE;
  delete process.env.MODAL_ENVIRONMENT;
  Object.assign(process.env, standIn.clientEnv());
  ({ ModalClient } = await import('modal'));
});

afterAll(async () => {
  await standIn?.close();
  process.env = savedEnv;
  // Every sandbox process carried the marker: none may be left.
  for (let i = 0; i < 50 && processesWithMarker(marker).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect(processesWithMarker(marker)).toEqual([]);
});

type CreateParams = NonNullable<Parameters<ModalClientType['sandboxes']['create']>[2]>;

/** A sandbox as the Modal provider will make them; `image` overrides the default one. */
async function gpuSandbox(modal: ModalClientType, params: CreateParams & { image?: Image } = {}): Promise<Sandbox> {
  const { image = modal.images.fromRegistry('python:3.12-slim').dockerfileCommands(['RUN pip install moshi']), ...rest } = params;
  const app = await modal.apps.fromName('stand-in-test', { createIfMissing: true });
  return modal.sandboxes.create(app, image, { gpu: 'L40S', command: KYUTAI_COMMAND, encryptedPorts: [8998], timeoutMs: 600_000, ...rest });
}

/** Opens a Moshi websocket and resolves once the worker's handshake arrives. */
async function handshakeThrough(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  // The worker may still be starting: a tunnel to a port nothing listens on closes at once.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const client = connectClient(url, { ca: standIn.caCertPem, ...options });
    try {
      const closedFirst = client.closed.then(({ code }) => Promise.reject(new Error(`closed (${code}) before the handshake`)));
      await Promise.race([client.waitFor(isHandshake, 15_000, 'handshake'), closedFirst]);
      return client.ws;
    } catch (err) {
      client.ws.terminate();
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** What the upgrade got: 'open', an HTTP status, or the socket error. */
function upgradeOutcome(url: string, options: WebSocket.ClientOptions = {}): Promise<{ status?: number; error?: string; open?: true }> {
  return new Promise((done) => {
    const ws = new WebSocket(url, { ca: standIn.caCertPem, ...options });
    ws.on('open', () => {
      ws.terminate();
      done({ open: true });
    });
    ws.on('unexpected-response', (_req, res) => {
      done({ status: res.statusCode });
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => done({ error: err.message }));
  });
}

function httpsGet(url: string, options: { headers?: Record<string, string>; method?: string; body?: string; ca?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = httpsRequest(url, { method: options.method ?? 'GET', headers: options.headers, ca: options.ca ?? standIn.caCertPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', fail);
    req.end(options.body);
  });
}

/** Retries while the sandbox's server is still starting (the proxy answers 502). */
async function eventuallyOk(url: string, options: Parameters<typeof httpsGet>[1]): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await httpsGet(url, options);
    if (res.status !== 502 || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Resolves once something accepts TCP connections on this loopback port. */
async function serverListening(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await new Promise<boolean>((done) => {
      const socket = connect(port, '127.0.0.1');
      const finish = (listening: boolean) => {
        socket.destroy();
        done(listening);
      };
      socket.once('connect', () => finish(true));
      socket.once('error', () => finish(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A separate Node process opens the websocket with its default TLS settings and reports the first Moshi frame kind. */
async function childHandshake(url: string): Promise<string> {
  const script = [
    "import WebSocket from 'ws';",
    'const ws = new WebSocket(process.argv[1]);',
    "ws.on('message', (d) => { if (d[0] === 0) { console.log('handshake'); ws.close(); } });",
    "ws.on('close', () => process.exit(0));",
    "ws.on('error', (e) => { console.log('error: ' + e.message); process.exit(1); });",
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, url], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_EXTRA_CA_CERTS: standIn.caCertPath, [MARKER_VARIABLE]: marker },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.once('exit', r));
  return out.trim();
}

function isSubsequence(needle: string[], haystack: string[]): boolean {
  let i = 0;
  for (const item of haystack) if (item === needle[i]) i++;
  return i === needle.length;
}

describe('the GPU sandbox path of the real SDK', () => {
  it('builds an image, places a GPU sandbox, tunnels a websocket to the worker with verified TLS, and terminates it', async () => {
    standIn.resetCounts();
    const modal = new ModalClient();
    const volume = await modal.volumes.fromName('weights', { createIfMissing: true });
    const secret = await modal.secrets.fromObject({ HF_TOKEN: 'hf-test' });
    const sb = await gpuSandbox(modal, { volumes: { '/root/.cache': volume }, secrets: [secret], env: { MOSHI_MODE: 'test' }, tags: { pool: 'first' }, idleTimeoutMs: 300_000 });

    expect(sb.sandboxId).toMatch(/^sb-[0-9A-Za-z]{22}$/);
    const placed = standIn.sandbox(sb.sandboxId)!;
    expect(placed).toMatchObject({ state: 'running', gpu: 'L40S', gpuCount: 1, containerPort: 8998, tags: { pool: 'first' }, requestedCommand: KYUTAI_COMMAND });
    expect(placed.launched?.args).toContain('loopback');
    expect(await sb.poll()).toBeNull();

    // The process's output reaches the SDK's sb.stdout / sb.stderr (SandboxGetLogs); our worker logs to stderr.
    const reader = sb.stderr.getReader();
    let printed = '';
    while (!printed.includes('worker listening')) {
      const { value, done } = await reader.read();
      if (done) break;
      printed += value;
    }
    await reader.cancel();
    expect(printed).toContain('worker listening');

    const tunnels = await sb.tunnels();
    expect(Object.keys(tunnels)).toEqual(['8998']);
    const tunnel = tunnels[8998]!;
    expect(tunnel.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const wsUrl = `${tunnel.url.replace('https://', 'wss://')}/api/chat`;
    const ws = await handshakeThrough(wsUrl);
    expect(standIn.sandbox(sb.sandboxId)!.openConnections).toBe(1);
    ws.close();
    await new Promise((r) => ws.once('close', r));

    // The certificate is verified for real: without the stand-in's CA, TLS refuses.
    const untrusted = await upgradeOutcome(wsUrl, { ca: undefined });
    expect(untrusted.error).toMatch(/self[- ]signed|unable to verify|certificate/i);
    // A child process (a gateway under test) trusts it through NODE_EXTRA_CA_CERTS, with no code of its own.
    expect(await childHandshake(wsUrl)).toBe('handshake');

    await sb.terminate();
    expect(await sb.wait()).toBe(137);
    expect(await sb.poll()).toBe(137);
    const ended = standIn.sandbox(sb.sandboxId)!;
    expect(ended.state).toBe('finished');
    expect(() => process.kill(ended.pid!, 0)).toThrow();

    // The RPCs of the issue, in its order, and nothing the stand-in lacks.
    const order = ['AuthTokenGet', 'AppGetOrCreate', 'EnvironmentGetOrCreate', 'ImageGetOrCreate', 'ImageJoinStreaming', 'SecretGetOrCreate', 'SandboxCreate', 'SandboxGetTaskId', 'SandboxGetTunnels', 'SandboxTerminate', 'SandboxWait'];
    expect(isSubsequence(order, standIn.rpcLog())).toBe(true);
    expect(standIn.unknownCalls()).toEqual([]);
  });

  it('streams build logs and the new sandbox id to a grpcMiddleware, where a provider can report progress', async () => {
    const seen = { logs: [] as string[], created: [] as string[] };
    // nice-grpc middleware, passed through the SDK's documented grpcMiddleware option.
    async function* observe(call: any, options: any): AsyncGenerator<any, any, undefined> {
      const path: string = call.method.path;
      if (!call.responseStream) {
        const response = yield* call.next(call.request, options);
        if (path.endsWith('/SandboxCreate')) seen.created.push(response.sandboxId);
        return response;
      }
      for await (const item of call.next(call.request, options)) {
        if (path.endsWith('/ImageJoinStreaming')) for (const log of item.taskLogs) seen.logs.push(log.data);
        yield item;
      }
    }
    const modal = new ModalClient({ grpcMiddleware: [observe as never] });
    const sb = await gpuSandbox(modal, { image: modal.images.fromRegistry('python:3.12-slim').dockerfileCommands(['RUN pip install moshi', 'RUN echo progress']) });
    expect(seen.created).toEqual([sb.sandboxId]);
    expect(seen.logs.join('')).toMatch(/Step 1\/3 : FROM base[\s\S]*Step 2\/3 : RUN pip install moshi[\s\S]*Step 3\/3 : RUN echo progress[\s\S]*Built image im-/);
    await sb.terminate();
  });

  it('builds each image layer once and reports a failed build as the SDK expects', async () => {
    const modal = new ModalClient();
    const app = await modal.apps.fromName('stand-in-test', { createIfMissing: true });
    const layers = standIn.builtImages().length;
    await modal.images.fromRegistry('python:3.12-slim').dockerfileCommands(['RUN pip install moshi']).build(app);
    expect(standIn.builtImages().length).toBe(layers);
    expect(standIn.builtImages().every((i) => i.builds === 1)).toBe(true);

    standIn.setImageBuild({ failWith: 'pip: no matching distribution for moshi==99' });
    try {
      const broken = modal.images.fromRegistry('python:3.12-slim').dockerfileCommands(['RUN pip install moshi==99']);
      await expect(broken.build(app)).rejects.toThrow(/failed with the exception:\s+pip: no matching distribution/);
    } finally {
      standIn.setImageBuild({ failWith: undefined });
    }
  });

  it('gives the process the secrets and env the SDK passed, and keeps volume files across sandboxes', async () => {
    const modal = new ModalClient();
    const app = await modal.apps.fromName('stand-in-test', { createIfMissing: true });
    const image = modal.images.fromRegistry('python:3.12-slim');
    const volume = await modal.volumes.fromName('shared-data', { createIfMissing: true });
    standIn.putSecret('hub-token', { HUB_TOKEN: 'from-dashboard' });
    const named = await modal.secrets.fromName('hub-token', { requiredKeys: ['HUB_TOKEN'] });
    const inline = await modal.secrets.fromObject({ INLINE_SECRET: 'inline' });
    const create = () =>
      modal.sandboxes.create(app, image, { gpu: 'L4', command: ['inspect', '--port', '9000'], volumes: { '/data': volume }, secrets: [named, inline], env: { PLAIN_ENV: 'plain' }, timeoutMs: 120_000 });

    const writer = await create();
    const creds = await writer.createConnectToken({ port: 9000 });
    const auth = { Authorization: `Bearer ${creds.token}` };
    const env = await eventuallyOk(`${creds.url}/env?keys=HUB_TOKEN,INLINE_SECRET,PLAIN_ENV,MODAL_TOKEN_SECRET`, { headers: auth });
    expect(JSON.parse(env.body)).toEqual({ HUB_TOKEN: 'from-dashboard', INLINE_SECRET: 'inline', PLAIN_ENV: 'plain', MODAL_TOKEN_SECRET: null });
    expect((await httpsGet(`${creds.url}/file/weights.bin`, { method: 'PUT', body: 'cached weights', headers: auth })).status).toBe(200);
    await writer.terminate();

    const reader = await create();
    const readerCreds = await reader.createConnectToken({ port: 9000 });
    const file = await eventuallyOk(`${readerCreds.url}/file/weights.bin`, { headers: { Authorization: `Bearer ${readerCreds.token}` } });
    expect(file).toEqual({ status: 200, body: 'cached weights' });
    await reader.terminate();
    await expect(modal.secrets.fromName('hub-token', { requiredKeys: ['OTHER'] })).rejects.toThrow(/missing key/);
  });
});

describe('connect tokens', () => {
  it('refuse a request without a valid token and pass one with it, as header or query parameter', async () => {
    const modal = new ModalClient();
    const sb = await gpuSandbox(modal);
    const creds = await sb.createConnectToken({ port: 8998, userMetadata: '{"caller":"gateway"}' });
    expect(creds.url).toBe(standIn.connectUrl);
    const chat = `${creds.url.replace('https://', 'wss://')}/api/chat`;
    const before = standIn.connectRefusals();

    expect(await upgradeOutcome(chat)).toEqual({ status: 401 });
    expect(await upgradeOutcome(chat, { headers: { Authorization: 'Bearer not-a-token' } })).toEqual({ status: 403 });
    expect(await upgradeOutcome(`${chat}?_modal_connect_token=forged`)).toEqual({ status: 403 });
    expect((await httpsGet(`${creds.url}/health`)).status).toBe(401);
    const after = standIn.connectRefusals();
    expect((after[401] ?? 0) - (before[401] ?? 0)).toBe(2);
    expect((after[403] ?? 0) - (before[403] ?? 0)).toBe(2);

    const viaHeader = await handshakeThrough(chat, { headers: { Authorization: `Bearer ${creds.token}` } });
    viaHeader.close();
    await new Promise((r) => viaHeader.once('close', r));
    const viaQuery = await handshakeThrough(`${chat}?_modal_connect_token=${creds.token}`);
    viaQuery.close();

    // A token for a port nothing serves reaches the proxy but no server.
    const wrongPort = await sb.createConnectToken();
    expect((await httpsGet(`${wrongPort.url}/health`, { headers: { Authorization: `Bearer ${wrongPort.token}` } })).status).toBe(502);

    // A token dies with its sandbox.
    await sb.terminate();
    await sb.wait();
    expect((await upgradeOutcome(chat, { headers: { Authorization: `Bearer ${creds.token}` } })).status).toBe(502);
    await expect(sb.createConnectToken({ port: 8998 })).rejects.toThrow(/finished/);
  });

  it('forward the user metadata as an unforgeable X-Verified-User-Data header and strip the token', async () => {
    const modal = new ModalClient();
    const app = await modal.apps.fromName('stand-in-test', { createIfMissing: true });
    const sb = await modal.sandboxes.create(app, modal.images.fromRegistry('python:3.12-slim'), { gpu: 'T4', command: ['inspect', '--port', '9000'], timeoutMs: 120_000 });
    const creds = await sb.createConnectToken({ port: 9000, userMetadata: '{"user":"u1"}' });
    const res = await eventuallyOk(`${creds.url}/echo?a=1&_modal_connect_token=${creds.token}`, { headers: { 'X-Verified-User-Data': '{"user":"admin"}' } });
    const seen = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe('/echo?a=1');
    expect(seen.headers['x-verified-user-data']).toBe('{"user":"u1"}');
    await sb.terminate();
  });

  it('honour the inbound CIDR allowlist on tunnels and connect tokens', async () => {
    const modal = new ModalClient();
    const sb = await gpuSandbox(modal, { inboundCidrAllowlist: ['10.0.0.0/8'] });
    const tunnel = (await sb.tunnels())[8998]!;
    // The worker listens (checked behind the tunnel's back), yet the tunnel lets nobody from 127.0.0.1 in.
    await serverListening(standIn.sandbox(sb.sandboxId)!.localPort!);
    const outcome = await upgradeOutcome(`${tunnel.url.replace('https://', 'wss://')}/api/chat`);
    expect(outcome.open).toBeUndefined();
    expect(outcome.error).toBeDefined();
    expect(standIn.sandbox(sb.sandboxId)!.openConnections).toBe(0);
    const creds = await sb.createConnectToken({ port: 8998 });
    expect((await httpsGet(`${creds.url}/health`, { headers: { Authorization: `Bearer ${creds.token}` } })).status).toBe(403);
    await sb.terminate();
  });
});

describe('finding sandboxes again', () => {
  it('lists by tags, and fromId/fromName work from a new client after a gateway restart', async () => {
    const first = new ModalClient();
    const app = await first.apps.fromName('stand-in-test', { createIfMissing: true });
    const a = await gpuSandbox(first, { tags: { pool: 'reclaim', role: 'worker' }, name: 'reclaim-a' });
    const b = await gpuSandbox(first, { tags: { pool: 'reclaim', role: 'worker' } });
    const other = await gpuSandbox(first, { tags: { pool: 'someone-else' } });
    first.close();

    // The "restarted gateway": a new client, the same control plane.
    const second = new ModalClient();
    const found: string[] = [];
    for await (const sb of second.sandboxes.list({ appId: app.appId, tags: { pool: 'reclaim' } })) found.push(sb.sandboxId);
    expect(found.sort()).toEqual([a.sandboxId, b.sandboxId].sort());
    expect(standIn.sandboxes({ tags: { pool: 'reclaim' }, state: 'live' }).map((s) => s.sandboxId).sort()).toEqual(found);

    const again = await second.sandboxes.fromId(a.sandboxId);
    expect(await again.poll()).toBeNull();
    expect(await again.getTags()).toEqual({ pool: 'reclaim', role: 'worker' });
    const ws = await handshakeThrough(`${(await again.tunnels())[8998]!.url.replace('https://', 'wss://')}/api/chat`);
    ws.close();
    expect((await second.sandboxes.fromName('stand-in-test', 'reclaim-a')).sandboxId).toBe(a.sandboxId);
    await expect(second.sandboxes.fromName('stand-in-test', 'no-such-sandbox')).rejects.toThrow(/not found/);

    for (const id of [a.sandboxId, b.sandboxId, other.sandboxId]) {
      const sb = await second.sandboxes.fromId(id);
      await sb.terminate();
      expect(await sb.wait()).toBe(137);
    }
    const left: string[] = [];
    for await (const sb of second.sandboxes.list({ appId: app.appId, tags: { pool: 'reclaim' } })) left.push(sb.sandboxId);
    expect(left).toEqual([]);
    // A terminated name is free again.
    const reused = await gpuSandbox(second, { name: 'reclaim-a' });
    await expect(gpuSandbox(second, { name: 'reclaim-a' })).rejects.toThrow(/already exists/);
    await reused.terminate();
  });
});

describe('test controls', () => {
  it('delays scheduling: the SDK polls SandboxGetTaskId while the sandbox is queued', async () => {
    const modal = new ModalClient();
    standIn.setSchedulingDelay(1500, 'A10');
    try {
      const polls = standIn.rpcCounts().SandboxGetTaskId ?? 0;
      const creating = gpuSandbox(modal, { gpu: 'A10', tags: { case: 'delay' } });
      const queued = await eventuallyValue(() => standIn.sandboxes({ tags: { case: 'delay' } })[0]);
      expect(queued.state).toBe('queued');
      expect(queued.taskId).toBeUndefined();
      const sb = await creating;
      expect(standIn.sandbox(sb.sandboxId)!.state).toBe('running');
      expect((standIn.rpcCounts().SandboxGetTaskId ?? 0) - polls).toBeGreaterThanOrEqual(2);
      await sb.terminate();
    } finally {
      standIn.setSchedulingDelay(0, 'A10');
    }
  });

  it('has no capacity for a GPU type: RESOURCE_EXHAUSTED after a bounded wait, and no process runs', async () => {
    const modal = new ModalClient();
    standIn.setNoCapacity(['H100'], { failAfterMs: 800 });
    try {
      const err = await gpuSandbox(modal, { gpu: 'H100', tags: { case: 'no-capacity' } }).then(
        () => undefined,
        (e: unknown) => e as { code?: number; details?: string },
      );
      expect(err?.code).toBe(8); // RESOURCE_EXHAUSTED, a nice-grpc ClientError
      expect(err?.details).toMatch(/No capacity for GPU H100/);
      const [failed] = standIn.sandboxes({ tags: { case: 'no-capacity' } });
      expect(failed).toMatchObject({ state: 'finished', pid: undefined, taskId: undefined });
      // Other types still have GPUs: the fallback a provider tries next works.
      const fallback = await gpuSandbox(modal, { gpu: 'L40S' });
      await fallback.terminate();
    } finally {
      standIn.restoreCapacity();
    }
  });

  it('queues without capacity as Modal does; terminating the queued sandbox ends the waiting create()', async () => {
    const modal = new ModalClient();
    standIn.setNoCapacity(['A100-80GB'], { queue: true });
    try {
      const app = await modal.apps.fromName('stand-in-test', { createIfMissing: true });
      const creating = gpuSandbox(modal, { gpu: 'A100-80GB', tags: { case: 'queued' } }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      // A provider's own bound: find the queued sandbox by its tags and terminate it.
      const queued = await eventuallyValue(async () => {
        for await (const sb of modal.sandboxes.list({ appId: app.appId, tags: { case: 'queued' } })) return sb;
        return undefined;
      });
      expect(standIn.sandbox(queued.sandboxId)!.state).toBe('queued');
      await queued.terminate();
      const err = await creating;
      expect(err?.name).toBe('ConflictError');
      expect(await queued.wait()).toBe(137);
    } finally {
      standIn.restoreCapacity();
    }
  });

  it('kills a sandbox: its open conversation is cut and wait() returns 137', async () => {
    const modal = new ModalClient();
    const sb = await gpuSandbox(modal);
    const ws = await handshakeThrough(`${(await sb.tunnels())[8998]!.url.replace('https://', 'wss://')}/api/chat`);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    const snapshot = await standIn.kill(sb.sandboxId);
    expect(snapshot.result).toMatchObject({ status: 2, exitcode: 137 });
    expect(await closed).toBe(1006);
    expect(await sb.wait()).toBe(137);
    expect(() => process.kill(snapshot.pid!, 0)).toThrow();
  });

  it('ends a sandbox at its timeout (124) and an idle one at its idle timeout, not while a tunnel connection is open', async () => {
    const modal = new ModalClient();
    const timed = await gpuSandbox(modal, { timeoutMs: 2000 });
    expect(await timed.wait()).toBe(124);
    expect(standIn.sandbox(timed.sandboxId)!.result?.status).toBe(4);

    const idle = await gpuSandbox(modal, { idleTimeoutMs: 2000 });
    const ws = await handshakeThrough(`${(await idle.tunnels())[8998]!.url.replace('https://', 'wss://')}/api/chat`);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await idle.poll()).toBeNull();
    ws.close();
    expect(await idle.wait()).toBe(124);
    expect(standIn.sandbox(idle.sandboxId)!.result?.status).toBe(7);
  });

  it('refuses a wrong token with UNAUTHENTICATED, and the SDK itself refuses a missing one', async () => {
    const wrong = new ModalClient({ tokenId: 'ak-wrong', tokenSecret: 'as-wrong' });
    const err = (await wrong.apps.fromName('stand-in-test').catch((e: unknown) => e)) as { code?: number; details?: string };
    expect(err.code).toBe(16);
    expect(err.details).toMatch(/Invalid token id or secret/);

    const missing = new ModalClient({ tokenId: '', tokenSecret: '' });
    await expect(missing.apps.fromName('stand-in-test')).rejects.toThrow(/missing credentials/);

    // Rotating the pair revokes it, even for a client holding a fresh auth token.
    const holder = new ModalClient();
    await holder.apps.fromName('stand-in-test', { createIfMissing: true });
    const old = standIn.credentials;
    standIn.setCredentials({ tokenId: 'ak-rotated', tokenSecret: 'as-rotated' });
    try {
      expect(((await holder.apps.fromName('stand-in-test').catch((e: unknown) => e)) as { code?: number }).code).toBe(16);
    } finally {
      standIn.setCredentials(old);
    }
  });

  it('reports an RPC it does not implement, by name', async () => {
    const modal = new ModalClient();
    await expect(modal.queues.fromName('some-queue', { createIfMissing: true })).rejects.toThrow(/does not implement QueueGetOrCreate/);
    expect(standIn.unknownCalls()).toContain('QueueGetOrCreate');
    expect(loud.some((line) => line.includes('QueueGetOrCreate'))).toBe(true);
  });

  it('serves a CPU sandbox when the SDK is told to use the V1 API (MODAL_SANDBOX_V2=0)', async () => {
    process.env.MODAL_SANDBOX_V2 = '0';
    try {
      const modal = new ModalClient();
      const app = await modal.apps.fromName('stand-in-test', { createIfMissing: true });
      const sb = await modal.sandboxes.create(app, modal.images.fromRegistry('python:3.12-slim'), { command: KYUTAI_COMMAND, encryptedPorts: [8998] });
      expect(standIn.sandbox(sb.sandboxId)).toMatchObject({ state: 'running', gpu: '' });
      await sb.terminate();
    } finally {
      delete process.env.MODAL_SANDBOX_V2;
    }
  });
});

async function eventuallyValue<T>(fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting for a value');
    await new Promise((r) => setTimeout(r, 50));
  }
}
