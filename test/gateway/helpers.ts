/** Shared by the gateway tests: metrics, raw sockets, a TCP relay in front of a worker, workers as processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, expect } from 'vitest';
import { CLI_ARGS, eventually, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { MARKER_VARIABLE, newMarker, processesWithMarker, stopProcessGroup } from '../helpers/processes.js';

/** The value of one sample of /metrics (0 when the series does not exist yet). */
export async function metric(httpUrl: string, name: string, labels: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`, { headers })).text();
  return metricIn(text, name, labels);
}

export function metricIn(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const series = line.slice(0, line.lastIndexOf(' '));
    const bare = series === name;
    const labelled = series.startsWith(`${name}{`) && wanted.every((w) => series.includes(w));
    if ((bare && wanted.length === 0) || labelled) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/**
 * A gateway whose workers carry a marker, checked gone after the file's
 * tests; one call per test file.
 */
export function useMarkedGateways() {
  const marker = newMarker();
  afterAll(async () => {
    await eventually(() => processesWithMarker(marker).length === 0, 20_000, 'the test workers to exit');
  });
  const start = (options: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> => {
    const pool = options.pool ?? {};
    const local = { ...(pool.local as object | undefined), env: { [MARKER_VARIABLE]: marker } };
    return startTestGateway({ ...options, pool: pool.provider === 'remote' ? pool : { ...pool, local } });
  };
  /** Processes the test starts itself carry the same marker. */
  return { start, marker };
}

export const UPGRADE_REQUEST = (path = '/api/chat', extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

/** A raw TCP connection that records what it receives and when it closes. */
export function rawSocket(port: number): { socket: Socket; received: () => string; closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (d) => (received += d.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => received, closed };
}

export interface TcpRelay {
  port: number;
  /** The first line of every request that went through (e.g. "GET /api/chat?x=1 HTTP/1.1"). */
  requestLines: string[];
  /** Resolves on each new connection through the relay. */
  nextConnection(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Plain TCP between the gateway and a real worker: records the request lines,
 * and can hold each upgrade for `holdMs` before passing it on (a slow network).
 */
export async function startTcpRelay(targetPort: number, options: { holdUpgradesMs?: number } = {}): Promise<TcpRelay> {
  const requestLines: string[] = [];
  const sockets = new Set<Socket>();
  let waiters: (() => void)[] = [];
  const server: Server = createServer((inbound) => {
    sockets.add(inbound);
    inbound.on('error', () => undefined);
    inbound.once('close', () => sockets.delete(inbound));
    inbound.once('data', (first: Buffer) => {
      inbound.pause();
      const line = first.toString('latin1').split('\r\n')[0];
      requestLines.push(line);
      for (const w of waiters.splice(0)) w();
      const hold = /^GET \S*\/api\/chat/.test(line) ? (options.holdUpgradesMs ?? 0) : 0;
      setTimeout(() => {
        if (inbound.destroyed) return;
        const outbound = connect(targetPort, '127.0.0.1');
        sockets.add(outbound);
        outbound.on('error', () => inbound.destroy());
        inbound.on('close', () => outbound.destroy());
        outbound.on('close', () => {
          sockets.delete(outbound);
          inbound.destroy();
        });
        outbound.write(first);
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      }, hold);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    requestLines,
    nextConnection: () => new Promise((resolve) => waiters.push(resolve)),
    async close() {
      waiters = [];
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface WorkerProcess {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Our loopback worker as its own process (for gateways using the remote provider). */
export async function startLoopbackWorker(marker: string, extraArgs: string[] = []): Promise<WorkerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...CLI_ARGS, 'worker', '--engine', 'loopback', '--host', '127.0.0.1', '--port', String(port), ...extraArgs], {
    stdio: 'ignore',
    detached: true,
    env: { ...process.env, [MARKER_VARIABLE]: marker },
  });
  await eventually(() => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok), 30_000, `the worker on port ${port}`);
  return { port, child, stop: () => stopProcessGroup(child) };
}

/** The metrics a key holder sees. */
export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

export function expectRefusal(closed: { code: number; reason: string }, errors: string[], code: number, message: RegExp): void {
  expect(closed.code).toBe(code);
  expect(closed.reason).toMatch(message);
  expect(errors.join('\n')).toMatch(message);
}
