/**
 * What the Modal provider's tests share: the control-plane stand-in
 * (test/modal/stand-in/, a STAND-IN for Modal), the SDK pointed at it the
 * way a user's environment points it at Modal (MODAL_SERVER_URL and a token
 * pair), and pool settings for the provider under test. The provider calls
 * the real `modal` SDK; only the server at the other end is ours.
 *
 * Sandboxes run our loopback worker, except where the requested command asks
 * for a failure: `--hf-repo test/out-of-memory` dies at start-up the way a
 * GPU worker does when the card is full.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import WebSocket from 'ws';
import type { PoolConfigInput } from '../../src/pool/index.js';
import type { DialInfo } from '../../src/pool/types.js';
import { MARKER_VARIABLE, newMarker, processesWithMarker } from '../helpers/processes.js';
import { loopbackWorkerLauncher, startModalStandIn, type Launcher, type ModalStandIn, type ModalStandInOptions } from './stand-in/stand-in.js';

export const OUT_OF_MEMORY_REPO = 'test/out-of-memory';

/** The loopback worker for every sandbox, unless its command asks to fail. */
export const testLauncher: Launcher = (ctx) => {
  if (ctx.requestedCommand.join(' ').includes(`--hf-repo ${OUT_OF_MEMORY_REPO}`)) {
    return { command: process.execPath, args: ['-e', "console.error('torch.OutOfMemoryError: CUDA out of memory'); process.exit(1)"] };
  }
  return loopbackWorkerLauncher(ctx);
};

export interface ModalTestEnv {
  standIn: ModalStandIn;
  marker: string;
  /** Pool settings for the modal provider against the stand-in; `modal` is merged into the defaults. */
  config(options?: { workers?: number; warm?: number; idleTimeoutSeconds?: number; maxQueue?: number; modal?: Record<string, unknown> }): PoolConfigInput;
  /** Sandbox ids the stand-in still runs (queued, running or stopping). */
  live(): string[];
  /** Environment for a gateway started as a child process. */
  childEnv(): Record<string, string>;
  close(): Promise<void>;
}

/**
 * Starts the stand-in and points the SDK at it. The SDK reads its config
 * file when first imported, so MODAL_CONFIG_PATH is set before anything
 * imports it (the provider imports it lazily).
 */
export async function startModalTestEnv(options: ModalStandInOptions = {}): Promise<ModalTestEnv> {
  const marker = newMarker();
  const standIn = await startModalStandIn({ launcher: testLauncher, ...options, env: { [MARKER_VARIABLE]: marker, ...options.env } });
  const saved = { ...process.env };
  const noConfig = resolve(standIn.stateDir, 'no-modal.toml');
  process.env.MODAL_CONFIG_PATH = noConfig;
  delete process.env.MODAL_PROFILE;
  delete process.env.MODAL_ENVIRONMENT;
  Object.assign(process.env, standIn.clientEnv());
  const app = `quillman-test-${randomUUID().slice(0, 8)}`;
  const gatewayTag = `gw-${randomUUID().slice(0, 8)}`;
  return {
    standIn,
    marker,
    config({ workers = 1, warm = 0, idleTimeoutSeconds, maxQueue, modal = {} } = {}) {
      return {
        provider: 'modal',
        maxWorkers: workers,
        warm,
        ...(idleTimeoutSeconds !== undefined && { idleTimeoutSeconds }),
        ...(maxQueue !== undefined && { maxQueue }),
        modal: { app, gatewayTag, caFile: standIn.caCertPath, gpuWaitSeconds: 30, readyTimeoutSeconds: 120, ...modal },
      } as PoolConfigInput;
    },
    live: () => standIn.sandboxes({ state: 'live' }).map((s) => s.sandboxId),
    childEnv: () => ({ ...standIn.clientEnv(), MODAL_CONFIG_PATH: noConfig, NODE_EXTRA_CA_CERTS: standIn.caCertPath, [MARKER_VARIABLE]: marker }),
    async close() {
      await standIn.close();
      process.env = saved;
      for (let i = 0; i < 100 && processesWithMarker(marker).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      const left = processesWithMarker(marker);
      if (left.length) throw new Error(`sandbox processes left running: ${left.join(', ')}`);
    },
  };
}

/** Opens the websocket a lease's dial information describes; resolves once the worker accepted it. */
export function openDialled(dial: DialInfo): Promise<WebSocket> {
  return new Promise((resolveSocket, reject) => {
    const ws = new WebSocket(dial.url, dial.protocols ?? [], { perMessageDeflate: false, headers: dial.headers, ...(dial.ca && { ca: dial.ca }) });
    ws.once('open', () => resolveSocket(ws));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      reject(new Error(`HTTP ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}

export function closeSocket(ws: WebSocket): Promise<void> {
  return new Promise((done) => {
    if (ws.readyState === WebSocket.CLOSED) return done();
    ws.once('close', () => done());
    ws.close();
  });
}

/** What an upgrade without (or with a wrong) credential gets: an HTTP status, or 'open' if it got through. */
export function upgradeStatus(url: string, options: WebSocket.ClientOptions): Promise<number | 'open' | string> {
  return new Promise((done) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    ws.once('open', () => {
      ws.terminate();
      done('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      done(res.statusCode ?? 0);
    });
    ws.once('error', (err) => done(err.message));
  });
}
