/**
 * One client conversation in the gateway: wait for a worker, connect, relay
 * both directions frame by frame, enforce limits, and give the worker back
 * only after the worker's side of the session has closed, so the next
 * conversation always starts from fresh model state.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import WebSocket from 'ws';
import { NoWorkersError, QueueFullError, type Lease, type WorkerPool } from '../pool/types.js';
import { CloseCode, closeReason } from '../protocol/close-codes.js';
import type { ServerEvent } from '../protocol/events.js';
import { encodeError, encodeMetadata, Kind } from '../protocol/frames.js';
import { describeParamIssues, parseSamplingParams, samplingToQuery, type SamplingParams } from '../protocol/sampling.js';
import { serverInfo } from '../protocol/server-info.js';
import type { Logger } from '../util/logger.js';
import { buildInfo } from './build-info.js';
import type { AddressLimits } from './access/address-limits.js';
import type { Refusal } from './access/access-control.js';
import { ClientInputValidator } from './client-input.js';
import type { GatewaySettings } from './config.js';
import { kindLabel, type ErrorKind, type GatewayMetrics, type SessionOutcome } from './metrics.js';

export interface ConversationContext {
  pool: WorkerPool;
  settings: GatewaySettings;
  metrics: GatewayMetrics;
  log: Logger;
  limits: AddressLimits;
  /** What the workers run, e.g. "cascade (CPU: …)": reported in the session's server-info message. */
  engineLabel?: string;
}

/** Who is calling, as access control found it. */
export interface Caller {
  /** The address key the per-address limits count under. */
  addressKey: string;
  /** A shorter length cap than the gateway's, from the caller's token. */
  maxSeconds?: number;
  /** Who, for the log (a token's `sub`). */
  subject?: string;
}

/** Header pages sent before the worker is live, replayed to it once it is: its decoder needs them. */
const MAX_STASHED_HEADER_BYTES = 16 * 1024;

/** `early`: messages that arrived with the upgrade response, before the relay took over the socket. */
/** `busy`: upgraded, then silent: a Kyutai server serving another client (see connect()). */
type ConnectResult = { ok: true; socket: WebSocket; early: Buffer[] } | { ok: false; refused: boolean; busy?: boolean; reason: string };

const BUSY_MESSAGE = 'The server is busy with another client; you will be connected as soon as it is free.';

export class GatewayConversation {
  readonly id = randomUUID().slice(0, 8);
  private readonly log: Logger;
  private readonly validator: ClientInputValidator;
  private readonly acquireAbort = new AbortController();
  private readonly connectedAt = performance.now();
  private liveAt = 0;
  private lease?: Lease;
  private worker?: WebSocket;
  private live = false;
  private finished = false;
  private stash: Uint8Array[] = [];
  private stashBytes = 0;
  private timers: NodeJS.Timeout[] = [];
  private lastPong = 0;
  private lastClientPong = performance.now();
  private lastClientMessage = performance.now();
  /** Set by whatever ends the conversation; unset at the end means it ended normally (see SessionOutcome). */
  private outcome?: SessionOutcome;
  /** Counted in the caller's address's queue share while waiting for a worker. */
  private queuedAtAddress = false;
  private draining = false;
  private readonly maxSeconds: number;
  private readonly finishedHandlers: (() => void)[] = [];
  /** Set when the worker stalled or died: the pool must check or replace it, not hand it on. */
  private unhealthy = false;
  private readonly relayedToWorker = new Map<number, { inc(): void }>();
  private readonly relayedToClient = new Map<number, { inc(): void }>();
  private params: SamplingParams = {};

  constructor(
    private readonly client: WebSocket,
    private readonly requestUrl: URL,
    legacy: boolean,
    private readonly ctx: ConversationContext,
    private readonly caller: Caller = { addressKey: 'unknown' },
  ) {
    this.log = ctx.log.child({ session: this.id, ...(caller.subject ? { subject: caller.subject } : {}) });
    this.validator = new ClientInputValidator(legacy, {
      maxMessageBytes: ctx.settings.maxMessageBytes,
      maxAudioLeadMs: ctx.settings.maxAudioLeadSeconds * 1000,
    });
    this.maxSeconds = Math.min(ctx.settings.maxConversationSeconds, caller.maxSeconds ?? Infinity);
  }

  /** Runs `handler` once the conversation has ended, at once if it already has. */
  onFinished(handler: () => void): void {
    if (this.finished) handler();
    else this.finishedHandlers.push(handler);
  }

  /**
   * The gateway is shutting down. A caller still waiting for a worker is
   * told to reconnect (another replica will serve it); a live one is warned
   * and may go on for `graceSeconds`, then is closed. A grace of 0 closes
   * it now, also when it was already draining.
   */
  drain(graceSeconds: number): void {
    if (this.finished) return;
    if (!this.live || graceSeconds <= 0) return this.shutDown();
    if (this.draining) return;
    this.draining = true;
    this.sendEvent({ type: 'ending_soon', secondsLeft: graceSeconds });
    this.after(graceSeconds * 1000, () => this.shutDown());
  }

  private shutDown(): void {
    if (this.finished) return;
    this.outcome = 'shutdown';
    if (this.live) {
      this.sendEvent({ type: 'ended', reason: 'shutdown' });
      return this.end(CloseCode.GoingAway, 'The server is restarting. Reconnect to start a new conversation.');
    }
    this.tellAndEnd('shutdown', CloseCode.TryAgainLater, 'The server is restarting. Reconnect in a moment.');
  }

  async run(): Promise<void> {
    const { client } = this;
    client.on('message', (data: Buffer, isBinary) => this.onClientMessage(data, isBinary));
    client.on('close', (code) => this.onClientClose(code));
    client.on('pong', () => (this.lastClientPong = performance.now()));
    this.every(this.ctx.settings.clientPingIntervalSeconds * 1000, () => this.checkClient());
    client.on('error', (err) => {
      // ws closes with 1009 on its own when maxPayload is exceeded; count it.
      if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.outcome ??= 'oversized_message';
        this.countError('oversized_message');
      }
      this.log.debug({ err: err.message }, 'client socket error');
    });

    const parsed = parseSamplingParams(this.requestUrl.searchParams);
    if (!parsed.ok) return this.fail('invalid_params', CloseCode.InvalidParams, describeParamIssues(parsed.issues));
    const query = samplingToQuery(parsed.params, parsed.passthrough).toString();
    this.params = parsed.params;

    let toldBusy = false;
    for (let attempt = 1, tries = 1; attempt <= this.ctx.settings.connectAttempts && !this.finished; attempt++, tries++) {
      // A retry keeps its place at the front: this client has already waited its turn.
      const lease = await this.acquire(tries > 1);
      if (!lease) return;
      if (this.finished) return lease.release({ healthy: true, reason: 'client left' });
      const result = await this.connect(lease, query);
      if (result.ok) return this.startRelay(lease, result.socket, result.early);
      // The client left while we dialled and we cut the dial: nothing to say about the worker.
      if (this.finished) return lease.release({ healthy: true, reason: 'client left' });
      if (result.busy) {
        // Waiting for a server in use elsewhere is waiting in line, not a failed attempt: the client may leave at any time.
        attempt--;
        this.log.info({ worker: lease.worker.id }, result.reason);
        lease.release({ healthy: true, refused: true, reason: result.reason });
        if (!toldBusy) this.sendEvent({ type: 'warming_up', message: BUSY_MESSAGE });
        toldBusy = true;
        continue;
      }
      this.countError(result.refused ? 'worker_refused' : 'worker_unreachable');
      this.log.warn({ worker: lease.worker.id, reason: result.reason, attempt }, 'worker did not take the conversation');
      lease.release({ healthy: result.refused, refused: result.refused, reason: result.reason });
    }
    if (!this.finished) {
      this.fail('worker_unreachable', CloseCode.TryAgainLater, 'No worker accepted the conversation. Try again in a moment; if it persists, check the gateway log.');
    }
  }

  private async acquire(front: boolean): Promise<Lease | undefined> {
    try {
      return await this.ctx.pool.acquire({
        front,
        signal: this.acquireAbort.signal,
        onQueued: (position, queued) => {
          if (!this.enterQueue()) return;
          this.sendEvent({ type: 'queue', position, queued });
        },
        onWarmingUp: (message) => this.sendEvent({ type: 'warming_up', message }),
      });
    } catch (err) {
      if (this.finished) return undefined;
      if (err instanceof QueueFullError) this.fail('queue_full', CloseCode.TryAgainLater, err.message);
      else if (err instanceof NoWorkersError) this.fail('no_workers', CloseCode.TryAgainLater, err.message);
      else this.fail('no_workers', CloseCode.InternalError, `Could not get a worker: ${(err as Error).message}`);
      return undefined;
    } finally {
      this.leaveQueue();
    }
  }

  /** Counts this caller in its address's share of the queue; refuses it when the share is taken. */
  private enterQueue(): boolean {
    if (this.finished) return false;
    if (this.queuedAtAddress) return true;
    if (!this.ctx.limits.enterQueue(this.caller.addressKey)) {
      this.refuse({
        reason: 'too_many_queued',
        code: CloseCode.TooManyRequests,
        message: `Too many conversations from your address are already waiting for a worker (the limit is ${this.ctx.settings.maxQueuedPerAddress}). Try again when one has started.`,
      });
      return false;
    }
    this.queuedAtAddress = true;
    return true;
  }

  private leaveQueue(): void {
    if (!this.queuedAtAddress) return;
    this.queuedAtAddress = false;
    this.ctx.limits.leaveQueue(this.caller.addressKey);
  }

  /** Turns the caller away before it was served: counted as a refusal, not as an error. */
  private refuse(refusal: Refusal & { reason: 'too_many_queued' }): void {
    if (this.finished) return;
    this.outcome = 'too_many_queued';
    this.ctx.metrics.refusals.labels(refusal.reason).inc();
    this.log.info({ refused: refusal.reason, code: refusal.code }, refusal.message);
    this.tellAndEnd(refusal.reason, refusal.code, refusal.message);
  }

  private async connect(lease: Lease, query: string): Promise<ConnectResult> {
    // The provider says where and how to reach the worker for this lease (a tunnel URL, a per-lease token).
    let target: Awaited<ReturnType<Lease['dial']>>;
    try {
      target = await lease.dial();
    } catch (err) {
      return { ok: false, refused: false, reason: `no way to reach the worker: ${(err as Error).message}` };
    }
    if (this.acquireAbort.signal.aborted) return { ok: false, refused: false, reason: 'the client left' };
    const url = target.url + (query ? (target.url.includes('?') ? '&' : '?') + query : '');
    const socket = new WebSocket(url, target.protocols ?? [], {
      headers: target.headers,
      ...(target.ca && { ca: target.ca }),
      perMessageDeflate: false,
      handshakeTimeout: this.ctx.settings.workerHandshakeTimeoutSeconds * 1000,
      maxPayload: this.ctx.settings.maxMessageBytes * 4,
    });
    // The worker may send its handshake in the same packet as the upgrade response, so 'message'
    // can fire before the promise below resolves: collect from the start.
    const early: Buffer[] = [];
    socket.on('message', (data: Buffer) => early.push(data));
    return new Promise((resolve) => {
      // Only a connection still being made is cut when the client leaves; a live one is closed properly by end().
      const cut = () => socket.terminate();
      const done = (r: ConnectResult) => {
        socket.removeAllListeners('open');
        socket.removeAllListeners('unexpected-response');
        this.acquireAbort.signal.removeEventListener('abort', cut);
        resolve(r);
      };
      socket.once('open', () => {
        if (lease.worker.healthEndpoint !== false || early.length > 0) return done({ ok: true, socket, early });
        // Kyutai's server upgrades at once but sends its handshake only once its one conversation lock is
        // free: silence after the upgrade means another client holds it (docs/kyutai.md).
        const busyAfterMs = this.ctx.settings.workerBusyAfterSeconds * 1000;
        const timer = setTimeout(() => {
          socket.off('message', spoke);
          // A waiting server does not read, so a close frame would go unanswered: cut the connection.
          socket.terminate();
          done({ ok: false, refused: true, busy: true, reason: `${lease.worker.id} upgraded but said nothing for ${busyAfterMs / 1000} s: it is busy with another client` });
        }, busyAfterMs);
        const closed = () => {
          clearTimeout(timer);
          done({ ok: false, refused: false, reason: `${lease.worker.id} closed the connection before its handshake` });
        };
        const spoke = () => {
          clearTimeout(timer);
          socket.off('close', closed);
          done({ ok: true, socket, early });
        };
        socket.once('message', spoke);
        socket.once('close', closed);
      });
      socket.once('unexpected-response', (_req, res) => {
        socket.terminate();
        done({ ok: false, refused: res.statusCode === 503, reason: `HTTP ${res.statusCode}` });
      });
      socket.on('error', (err) => done({ ok: false, refused: false, reason: err.message }));
      this.acquireAbort.signal.addEventListener('abort', cut, { once: true });
    });
  }

  private startRelay(lease: Lease, worker: WebSocket, early: Buffer[]): void {
    this.lease = lease;
    this.worker = worker;
    this.log.info({ worker: lease.worker.id }, 'worker connected');
    worker.removeAllListeners('error');
    worker.removeAllListeners('message');
    worker.on('error', (err) => this.log.warn({ err: err.message }, 'worker socket error'));
    worker.on('message', (data: Buffer) => this.onWorkerMessage(data));
    for (const data of early) this.onWorkerMessage(data);
    worker.on('pong', () => (this.lastPong = performance.now()));
    worker.on('close', (code, reason) => this.onWorkerClose(code, reason.toString()));
    lease.lost.addEventListener('abort', () => worker.terminate(), { once: true });
    if (lease.lost.aborted || this.finished) return void worker.close(CloseCode.Normal, 'client left');

    this.lastPong = performance.now();
    this.every(this.ctx.settings.workerPingIntervalSeconds * 1000, () => this.checkWorker());
    this.after(this.ctx.settings.workerHandshakeTimeoutSeconds * 1000, () => {
      if (!this.live) this.stalled('The worker did not complete its handshake in time.');
    });
  }

  private onWorkerMessage(data: Buffer): void {
    if (this.finished || data.length === 0) return;
    const kind = data[0];
    if (!this.live) {
      if (kind === Kind.Audio) return; // never audio before the handshake
      if (kind === Kind.Handshake) {
        this.sendToClient(data, kind);
        return this.goLive();
      }
    }
    this.sendToClient(data, kind);
  }

  private goLive(): void {
    this.live = true;
    this.liveAt = performance.now();
    this.ctx.metrics.timeToHandshake.observe((this.liveAt - this.connectedAt) / 1000);
    this.ctx.metrics.sessionsActive.inc();
    const maxConversationSeconds = this.maxSeconds;
    const { warnBeforeEndSeconds } = this.ctx.settings;
    this.sendEvent({ type: 'session', id: this.id, maxSeconds: maxConversationSeconds, worker: this.lease?.worker.id });
    // For Kyutai's web client, which fills its server-info panel from a message of this shape only.
    const worker = this.lease?.worker;
    this.sendEvent(serverInfo(this.params, this.ctx.engineLabel ?? worker?.provider ?? 'unknown', `${hostname()}/${worker?.id ?? 'worker'}`, buildInfo()));
    for (const bytes of this.stash) this.sendToWorker(bytes);
    this.stash = [];
    for (const before of warnBeforeEndSeconds) {
      if (before < maxConversationSeconds) this.after((maxConversationSeconds - before) * 1000, () => this.sendEvent({ type: 'ending_soon', secondsLeft: before }));
    }
    this.after(maxConversationSeconds * 1000, () => {
      this.outcome = 'time_limit';
      this.countError('time_limit');
      this.sendEvent({ type: 'ended', reason: 'time_limit' });
      this.end(CloseCode.TimeLimit, `The conversation reached its ${maxConversationSeconds} s limit. Reconnect to start a new one.`);
    });
    this.lastClientMessage = performance.now();
  }

  private checkWorker(): void {
    const now = performance.now();
    const stallMs = this.ctx.settings.workerStallTimeoutSeconds * 1000;
    if (now - this.lastPong > stallMs) return this.stalled(`The worker stopped responding for ${Math.round(stallMs / 1000)} s.`);
    if (this.live && now - this.lastClientMessage > this.ctx.settings.clientIdleTimeoutSeconds * 1000) {
      this.outcome = 'client_idle';
      this.countError('client_idle');
      return this.fail('client_idle', CloseCode.ClientIdle, 'No audio from your microphone for too long; the conversation was closed. Reconnect to continue.');
    }
    if (this.worker?.readyState === WebSocket.OPEN) this.worker.ping();
  }

  /** A client that stops reading never sees our pings, however much the kernel buffers for it. */
  private checkClient(): void {
    if (performance.now() - this.lastClientPong > this.ctx.settings.clientPongTimeoutSeconds * 1000) return this.dropSlowConsumer();
    if (this.client.readyState === WebSocket.OPEN) this.client.ping();
  }

  private dropSlowConsumer(): void {
    this.outcome = 'slow_consumer';
    this.countError('slow_consumer');
    this.end(CloseCode.SlowConsumer, 'You stopped receiving audio, so the conversation was dropped. Check your network and reconnect.');
    // The close frame may never drain to a client that is not reading: free its buffers now.
    const client = this.client;
    setTimeout(() => client.terminate(), 1000).unref();
  }

  private stalled(message: string): void {
    this.outcome = 'worker_stalled';
    this.unhealthy = true;
    this.fail('worker_stalled', CloseCode.WorkerStalled, `${message} Reconnect to get another worker.`);
    this.worker?.terminate();
  }

  private onClientMessage(data: Buffer, isBinary: boolean): void {
    if (this.finished) return;
    this.lastClientMessage = performance.now();
    const input = this.validator.check(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), isBinary, this.lastClientMessage);
    if (input.action === 'reject') return this.fail(input.error, input.code, input.message);
    if (input.action === 'ignore') return;
    if (!this.live) {
      // Audio before the handshake is stale by the time a worker listens; only the stream headers matter.
      if (input.header && this.stashBytes + input.bytes.length <= MAX_STASHED_HEADER_BYTES) {
        this.stash.push(Uint8Array.from(input.bytes));
        this.stashBytes += input.bytes.length;
      }
      return;
    }
    this.sendToWorker(input.bytes);
  }

  private sendToWorker(bytes: Uint8Array): void {
    const worker = this.worker;
    if (!worker || worker.readyState !== WebSocket.OPEN) return;
    if (worker.bufferedAmount > this.ctx.settings.workerMaxBufferedBytes) return this.stalled('The worker stopped reading audio.');
    worker.send(bytes);
    const kind = bytes[0];
    let counter = this.relayedToWorker.get(kind);
    if (!counter) this.relayedToWorker.set(kind, (counter = this.ctx.metrics.framesRelayed.labels('to_worker', kindLabel(kind))));
    counter.inc();
  }

  private sendToClient(bytes: Uint8Array, kind: number): void {
    const { client } = this;
    if (client.readyState !== WebSocket.OPEN) return;
    if (client.bufferedAmount > this.ctx.settings.clientMaxBufferedBytes) return this.dropSlowConsumer();
    client.send(bytes);
    let counter = this.relayedToClient.get(kind);
    if (!counter) this.relayedToClient.set(kind, (counter = this.ctx.metrics.framesRelayed.labels('to_client', kindLabel(kind))));
    counter.inc();
  }

  private sendEvent(event: ServerEvent): void {
    if (this.client.readyState === WebSocket.OPEN) this.client.send(encodeMetadata(event));
  }

  private countError(kind: ErrorKind): void {
    this.ctx.metrics.errors.labels(kind).inc();
  }

  /** Tells the client what went wrong (kind-5 and a typed event), then ends. */
  private fail(error: ErrorKind, code: number, message: string): void {
    if (this.finished) return;
    this.outcome ??= error;
    this.countError(error);
    this.log.info({ error, code }, message);
    this.tellAndEnd(error, code, message);
  }

  /** Tells the client why (a typed event and a kind-5 frame), then closes with `code`. */
  private tellAndEnd(error: string, code: number, message: string): void {
    this.sendEvent({ type: 'error', code: error, message });
    if (this.client.readyState === WebSocket.OPEN) this.client.send(encodeError(message));
    this.end(code, message);
  }

  private onClientClose(code: number): void {
    this.log.debug({ code }, 'client closed');
    this.end(code === 1009 ? CloseCode.MessageTooBig : CloseCode.Normal, 'client left');
  }

  private onWorkerClose(code: number, reason: string): void {
    const { client } = this;
    if (!this.finished) {
      if (this.lease?.lost.aborted || code === 1006) {
        this.unhealthy = true;
        this.fail('worker_lost', CloseCode.InternalError, 'The worker serving this conversation stopped unexpectedly. Reconnect to start a new conversation.');
      } else {
        // A deliberate close by the worker (time limit, engine ended, bad audio it caught): pass it on as is.
        if (code !== CloseCode.Normal && code !== CloseCode.EndedByEngine) this.outcome = 'worker_error';
        this.end(code >= 1000 && code < 5000 && code !== 1005 ? code : CloseCode.Normal, reason || 'the worker ended the conversation');
      }
    }
    if (client.readyState === WebSocket.OPEN) client.close(CloseCode.Normal, 'conversation ended');
    this.releaseWorker();
  }

  private releaseWorker(): void {
    const lease = this.lease;
    if (!lease) return;
    this.lease = undefined;
    lease.release({ healthy: !this.unhealthy, reason: this.outcome ?? 'completed' });
    this.log.info({ worker: lease.worker.id, outcome: this.outcome ?? 'completed' }, 'worker released');
  }

  /** Ends the conversation once: closes the client, asks the worker to close, and releases it when it has. */
  private end(code: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.acquireAbort.abort();
    this.leaveQueue();
    this.outcome ??= this.live ? 'completed' : 'left_queue';
    if (this.live) {
      this.ctx.metrics.sessionsActive.dec();
      this.ctx.metrics.sessionLength.observe((performance.now() - this.liveAt) / 1000);
    }
    this.ctx.metrics.sessionsTotal.labels(this.outcome).inc();
    for (const handler of this.finishedHandlers.splice(0)) handler();
    const { client, worker } = this;
    if (client.readyState === WebSocket.OPEN || client.readyState === WebSocket.CONNECTING) client.close(code, closeReason(reason));
    if (worker) {
      if (worker.readyState === WebSocket.OPEN) {
        worker.close(CloseCode.Normal, 'conversation ended');
        // A worker that never completes the close handshake is cut off; release waits for 'close' either way.
        setTimeout(() => worker.terminate(), 5000).unref();
      } else if (worker.readyState === WebSocket.CLOSED) {
        this.releaseWorker();
      }
    }
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }
}
