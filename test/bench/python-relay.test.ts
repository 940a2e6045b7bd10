/**
 * The relay bench's Python relay (bench/python-relay/relay.py) must relay
 * like the gateway's rival it stands in for: bytes both ways untouched, the
 * query string passed on, either side's close ending the other, the upstream
 * free again afterwards. Otherwise the bench would compare the gateway with
 * something that does less. Skipped, saying why, where python3 or PyPI is
 * missing (the bench then skips its Python column too).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { PYTHON_RELAY_SCRIPT, pythonRelayEnv } from '../../bench/relay-python.js';
import { freePort } from '../helpers/net.js';
import { MARKER_VARIABLE, newMarker, processesWithMarker } from '../helpers/processes.js';

const marker = newMarker();
let unavailable: string | undefined;
let relay: ChildProcess | undefined;
let relayPort = 0;
let upstream: WebSocketServer;
const upstreamConnections: { url: string; ws: WebSocket; received: Buffer[]; closed: Promise<number> }[] = [];

async function until(check: () => Promise<boolean> | boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await Promise.resolve(check()).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function connect(path: string): Promise<{ ws: WebSocket; received: Buffer[]; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${relayPort}${path}`, { perMessageDeflate: false });
  const received: Buffer[] = [];
  ws.on('message', (d: Buffer) => received.push(d));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, received, closed }));
    ws.once('error', reject);
  });
}

const freeUpstreams = async () => ((await (await fetch(`http://127.0.0.1:${relayPort}/health`)).json()) as { free: number }).free;

beforeAll(async () => {
  // The venv is made once per machine and cached (pip needs PyPI the first time).
  const env = await pythonRelayEnv();
  if (!env.ok) {
    unavailable = env.why;
    return;
  }
  upstream = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((r) => upstream.once('listening', r));
  upstream.on('connection', (ws, req) => {
    const received: Buffer[] = [];
    ws.on('message', (d: Buffer) => received.push(d));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    upstreamConnections.push({ url: req.url ?? '', ws, received, closed });
  });
  relayPort = await freePort();
  const upstreamUrl = `ws://127.0.0.1:${(upstream.address() as { port: number }).port}/api/chat`;
  relay = spawn(env.python, [PYTHON_RELAY_SCRIPT, '--port', String(relayPort), '--upstream', upstreamUrl], { stdio: 'ignore', env: { ...process.env, [MARKER_VARIABLE]: marker } });
  await until(async () => (await freeUpstreams()) === 1, 'the Python relay to listen');
}, 360_000);

afterAll(async () => {
  if (relay && relay.exitCode === null) {
    const exited = new Promise((r) => relay!.once('exit', r));
    relay.kill('SIGTERM');
    await exited;
  }
  upstream?.close();
  await until(() => processesWithMarker(marker).length === 0, 'the Python relay to exit', 10_000);
});

describe('the relay bench\'s Python relay', () => {
  it('passes bytes both ways untouched, then ends the upstream when the client leaves', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const client = await connect('/api/chat?temp=0.7');
    await until(() => upstreamConnections.length === 1, 'the upstream connection');
    const up = upstreamConnections[0];
    expect(up.url).toBe('/api/chat?temp=0.7');

    // Not Moshi frames: a relay that forwards without parsing must not care.
    client.ws.send(Buffer.from([0xff, 0x00, 0x01, 0x02]));
    client.ws.send(Buffer.alloc(70_000, 7));
    up.ws.send(Buffer.from([0x09, 0x08]));
    await until(() => up.received.length === 2 && client.received.length === 1, 'the frames to arrive');
    expect([...up.received[0]]).toEqual([0xff, 0x00, 0x01, 0x02]);
    expect(up.received[1].equals(Buffer.alloc(70_000, 7))).toBe(true);
    expect([...client.received[0]]).toEqual([0x09, 0x08]);

    client.ws.close(1000);
    await up.closed;
    await until(async () => (await freeUpstreams()) === 1, 'the upstream to be free again');
  });

  it('closes the client with the upstream\'s code when the upstream ends first', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const before = upstreamConnections.length;
    const client = await connect('/api/chat');
    await until(() => upstreamConnections.length === before + 1, 'the upstream connection');
    upstreamConnections[before].ws.close(4005, 'ended by engine');
    expect(await client.closed).toBe(4005);
    await until(async () => (await freeUpstreams()) === 1, 'the upstream to be free again');
  });
});
