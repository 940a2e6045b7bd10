/**
 * The project's worker: one engine, one conversation at a time, on its own
 * port, speaking the same Moshi protocol as Kyutai's servers so the gateway
 * treats every worker alike.
 *
 *   GET /health    200 {status: idle|busy} when ready (with `problem` when the engine cannot serve), 503 {status: warming} while loading;
 *                  eventLoopDelay: how long the event loop was held up since the current (or last)
 *                  conversation began: the output clock is only as steady as the loop that runs it
 *   GET /api/chat  websocket; HTTP 503 while a conversation is in progress
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Engine, ProgressReport } from '../engines/engine.js';
import { CloseCode, closeReason } from '../protocol/close-codes.js';
import { encodeError, encodeMetadata } from '../protocol/frames.js';
import { describeParamIssues, parseSamplingParams } from '../protocol/sampling.js';
import type { Logger } from '../util/logger.js';
import { LoopDelayMonitor } from './loop-delay.js';
import { WorkerSession } from './session.js';
import { warmUpOnce } from './warm-up.js';

export interface WorkerServerOptions {
  port: number;
  host: string;
  engine: Engine;
  log: Logger;
  /** Largest websocket message accepted; Ogg pages are at most ~64 KiB. */
  maxMessageBytes?: number;
  maxBufferedBytes?: number;
  idleTimeoutMs?: number;
  packetsPerPage?: number;
  /** Benchmarks only: see WorkerSessionOptions.echoPages. */
  echoPages?: boolean;
}

export interface WorkerServer {
  readonly port: number;
  readonly server: Server;
  /** True while a conversation holds the worker. */
  busy(): boolean;
  close(): Promise<void>;
}

type Status = { status: 'warming'; progress?: ProgressReport } | { status: 'idle' } | { status: 'busy' } | { status: 'failed'; error: string };

export async function startWorkerServer(options: WorkerServerOptions): Promise<WorkerServer> {
  const { engine, log } = options;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: options.maxMessageBytes ?? 256 * 1024 });
  let status: Status = { status: 'warming' };
  let session: WorkerSession | undefined;
  let conversations = 0;
  const loopDelay = new LoopDelayMonitor();

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'GET' && path === '/health') {
      // An engine that cannot hold a conversation (a stage failed to load) says why; the gateway reports it as degraded.
      const problem = (engine as { problem?: unknown }).problem;
      const body = JSON.stringify({ ...status, engine: engine.info, conversations, eventLoopDelay: loopDelay.snapshot(), ...(typeof problem === 'string' ? { problem } : {}) });
      // 503 while warming means "wait"; 500 after a failed warm-up means "this worker will not become ready".
      const code = status.status === 'idle' || status.status === 'busy' ? 200 : status.status === 'warming' ? 503 : 500;
      res.writeHead(code, { 'content-type': 'application/json' });
      return void res.end(body);
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('QuiLLMan worker: connect a websocket to /api/chat, or see /health\n');
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api/chat') return rejectUpgrade(socket, 404, 'Not Found');
    if (status.status !== 'idle') {
      // Busy or still loading: refuse before the upgrade so a pool can skip this worker cheaply.
      return rejectUpgrade(socket, 503, status.status === 'busy' ? 'Busy' : 'Warming Up');
    }
    const parsed = parseSamplingParams(url.searchParams);
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (!parsed.ok) {
        const message = describeParamIssues(parsed.issues);
        ws.send(encodeMetadata({ type: 'error', code: 'invalid_params', message }));
        ws.send(encodeError(message));
        return ws.close(CloseCode.InvalidParams, closeReason(message));
      }
      if (status.status !== 'idle') return ws.close(CloseCode.TryAgainLater, 'Busy');
      status = { status: 'busy' };
      conversations++;
      const current = new WorkerSession(ws, {
        engine,
        sampling: parsed.params,
        log: log.child({ conversation: conversations }),
        maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
        idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
        packetsPerPage: options.packetsPerPage ?? 1,
        echoPages: options.echoPages,
      });
      session = current;
      loopDelay.start();
      log.info({ conversation: conversations }, 'conversation started');
      void current.start();
      void current.finished.then(() => {
        loopDelay.stop();
        const delay = loopDelay.snapshot();
        const clock = current.clock.stats;
        const summary = {
          conversation: conversations,
          framesIn: current.framesIn,
          framesOut: current.framesOut,
          loopDelayP99Ms: delay.p99Ms,
          loopDelayMaxMs: delay.maxMs,
          outputClockWorstLateMs: Math.round(clock.worstLateMs),
          outputClockLateTicks: clock.lateTicks,
        };
        // A tick a quarter frame late or worse means something blocked the event loop: say so where people look.
        if (clock.lateTicks > 0 || clock.restarts > 0) log.warn({ ...summary, outputClockRestarts: clock.restarts }, 'reply audio fell behind its clock: the event loop was blocked');
        log.info(summary, 'conversation ended; worker reset');
        session = undefined;
        if (status.status === 'busy') status = { status: 'idle' };
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, engine: engine.info.name }, 'worker listening');

  // Listen first, then warm up: the health endpoint shows progress while models load.
  await warmUpOnce(engine, (progress) => {
    status = { status: 'warming', progress };
  }).then(
    () => {
      status = { status: 'idle' };
      log.info({ engine: engine.info }, 'worker ready');
    },
    (err: Error) => {
      status = { status: 'failed', error: err.message };
      log.error({ err }, 'engine failed to warm up');
    },
  );

  return {
    port,
    server,
    busy: () => status.status === 'busy',
    async close() {
      await session?.end(CloseCode.GoingAway, 'worker shutting down');
      for (const client of wss.clients) client.terminate();
      loopDelay.dispose();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
}
