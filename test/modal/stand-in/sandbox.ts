/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): one sandbox, as
 * a local process. Its lifecycle is an explicit state machine:
 *
 *   queued ──▶ running ──▶ stopping ──▶ finished
 *      └─────────┴────────────────────────▲   (no capacity, terminate while queued, crash)
 *
 * `running` means scheduled: it has a task id, its tunnels listen and its
 * process is spawned (the server inside may still be loading). The first cause
 * of an end decides the result the SDK sees (SandboxWait):
 *   terminate        TERMINATED           → sb.wait() 137
 *   killed (control) FAILURE, exitcode 137 (a crash: the process got SIGKILL)
 *   timeoutSecs      TIMEOUT              → 124
 *   idleTimeoutSecs  IDLE_TIMEOUT, exitcode 124 (the SDK returns the exit code as sent)
 *   process exits    SUCCESS (code 0) or FAILURE with its exit code (128+n for signal n)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { constants as osConstants } from 'node:os';
import { GenericStatus, type GenericResult } from './images.js';
import type { InboundFilter } from './inbound.js';
import type { LaunchContext, Launcher } from './launch.js';
import { Tunnel, TUNNEL_HOST } from './tunnels.js';
import { newId } from './ids.js';
import { OwnedTimers } from './timers.js';

export type SandboxState = 'queued' | 'running' | 'stopping' | 'finished';

const TRANSITIONS: Record<SandboxState, readonly SandboxState[]> = {
  queued: ['running', 'finished'],
  running: ['stopping', 'finished'],
  stopping: ['finished'],
  finished: [],
};

export interface OpenPort {
  port: number;
  unencrypted: boolean;
}

export interface SandboxDefinition {
  appId: string;
  environmentName: string;
  name?: string;
  tags: Record<string, string>;
  imageId: string;
  requestedCommand: string[];
  secretIds: string[];
  gpu: string;
  gpuCount: number;
  timeoutSecs: number;
  idleTimeoutSecs?: number;
  openPorts: OpenPort[];
  containerPort: number;
  /** Mount path → local directory. */
  volumes: Record<string, string>;
  readinessProbe?: { tcpPort?: number; intervalMs: number };
  inboundCidrAllowlist: string[];
  regions: string[];
  workdir?: string;
}

/** What a sandbox needs from the stand-in to run. */
export interface SandboxRuntime {
  launcher: Launcher;
  /** Environment for the process before secrets: the stand-in's own (without Modal credentials) plus its `env` option. */
  baseEnv: Record<string, string>;
  secretEnv(secretIds: readonly string[]): Record<string, string>;
  tls: { key: string; cert: string };
  stopGraceMs: number;
  inbound: InboundFilter;
  /** Called with every line the process prints, when the stand-in forwards sandbox output. */
  onOutput?: (sandboxId: string, line: string) => void;
}

export interface SandboxSnapshot {
  sandboxId: string;
  appId: string;
  name?: string;
  tags: Record<string, string>;
  state: SandboxState;
  gpu: string;
  gpuCount: number;
  taskId?: string;
  /** Seconds since the epoch, as Modal reports them. */
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  readyAt?: number;
  /** The exit code the SDK's wait()/poll() returns: null while it runs. */
  exitCode: number | null;
  result?: GenericResult;
  requestedCommand: string[];
  /** The local command run in its place. */
  launched?: { command: string; args: string[] };
  pid?: number;
  containerPort: number;
  /** Loopback port the local command listens on. */
  localPort?: number;
  tunnels: { containerPort: number; url: string; encrypted: boolean }[];
  /** Client connections open through tunnels and the connect-token proxy. */
  openConnections: number;
  /** The process's last output lines (stdout and stderr together). */
  output: string[];
}

const OUTPUT_LINES = 200;
/** Output chunks kept for SandboxGetLogs (sb.stdout / sb.stderr); older ones are dropped. */
const LOG_CHUNKS = 5000;

export interface LogChunk {
  seq: number;
  /** 1 stdout, 2 stderr (Modal's FileDescriptor). */
  fd: 1 | 2;
  data: string;
}

/** The SDK's mapping from a result to an exit code (getReturnCode). */
export function exitCodeOf(result: GenericResult | undefined): number | null {
  if (!result || result.status === GenericStatus.Unspecified) return null;
  if (result.status === GenericStatus.Timeout) return 124;
  if (result.status === GenericStatus.Terminated) return 137;
  return result.exitcode;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export class StandInSandbox {
  readonly sandboxId = newId('sb');
  readonly events = new EventEmitter();
  readonly createdAt: number;
  #state: SandboxState = 'queued';
  #taskId?: string;
  #startedAt?: number;
  #finishedAt?: number;
  #readyAt?: number;
  #result?: GenericResult;
  /** Set when scheduling gave up for lack of GPUs: SandboxGetTaskId answers RESOURCE_EXHAUSTED with it. */
  capacityError?: string;
  #pendingResult?: GenericResult;
  #starting: Promise<void> = Promise.resolve();
  #process?: ChildProcess;
  #exited = false;
  #launched?: { command: string; args: string[] };
  #localPort?: number;
  #tunnels: Tunnel[] = [];
  #tunnelsReady = false;
  #connections = 0;
  readonly #timers = new OwnedTimers();
  #idleTimer?: NodeJS.Timeout;
  readonly #output: string[] = [];
  readonly #chunks: LogChunk[] = [];
  #chunkSeq = 0;
  tags: Record<string, string>;

  constructor(
    readonly definition: SandboxDefinition,
    private readonly runtime: SandboxRuntime,
    createdAt: number,
  ) {
    this.createdAt = createdAt;
    this.tags = { ...definition.tags };
    this.events.setMaxListeners(0);
  }

  get state(): SandboxState {
    return this.#state;
  }
  get taskId(): string | undefined {
    return this.#taskId;
  }
  get result(): GenericResult | undefined {
    return this.#result;
  }
  get readyAt(): number | undefined {
    return this.#readyAt;
  }
  get startedAt(): number | undefined {
    return this.#startedAt;
  }
  get finishedAt(): number | undefined {
    return this.#finishedAt;
  }
  get tunnelsReady(): boolean {
    return this.#tunnelsReady;
  }
  get isLive(): boolean {
    return this.#state !== 'finished';
  }

  tunnels(): { host: string; port: number; containerPort: number; encrypted: boolean }[] {
    return this.#tunnels.map((t) => ({ host: TUNNEL_HOST, port: t.port, containerPort: t.containerPort, encrypted: t.encrypted }));
  }

  /** Output of one stream after sequence number `after`. */
  logsAfter(after: number, fd: 1 | 2): LogChunk[] {
    return this.#chunks.filter((c) => c.seq > after && c.fd === fd);
  }

  /** Loopback port serving `containerPort`, while the sandbox runs. */
  targetPort(containerPort: number): number | undefined {
    return this.#state === 'running' && containerPort === this.definition.containerPort ? this.#localPort : undefined;
  }

  get inbound(): InboundFilter {
    return this.runtime.inbound;
  }

  #transition(to: SandboxState): void {
    if (!TRANSITIONS[this.#state].includes(to)) throw new Error(`sandbox ${this.sandboxId}: no transition ${this.#state} → ${to}`);
    this.#state = to;
    this.events.emit('change');
  }

  /** Scheduled: gets a task id, opens its tunnels and spawns its process. */
  start(): void {
    this.#taskId = newId('ta');
    this.#startedAt = Date.now() / 1000;
    this.#transition('running');
    this.#starting = this.#launch().catch((err: unknown) => {
      this.#output.push(`[stand-in] launch failed: ${String(err)}`);
      if (this.#state === 'running') this.#finish({ status: GenericStatus.InitFailure, exception: `stand-in could not launch the sandbox: ${String(err)}`, exitcode: 127 });
    });
  }

  async #launch(): Promise<void> {
    const def = this.definition;
    this.#localPort = await freeLoopbackPort();
    if (this.#state !== 'running') return;
    const hooks = { allowed: this.runtime.inbound, opened: () => this.connectionOpened(), closed: () => this.connectionClosed() };
    this.#tunnels = await Promise.all(
      def.openPorts.map((p) =>
        Tunnel.open({ containerPort: p.port, encrypted: !p.unencrypted, targetPort: p.port === def.containerPort ? this.#localPort : undefined, tls: this.runtime.tls, hooks }),
      ),
    );
    if (this.#state !== 'running') {
      await this.#closeTunnels();
      return;
    }
    this.#tunnelsReady = true;
    this.events.emit('change');

    const ctx: LaunchContext = {
      sandboxId: this.sandboxId,
      taskId: this.#taskId!,
      requestedCommand: [...def.requestedCommand],
      containerPort: def.containerPort,
      port: this.#localPort,
      env: { ...this.runtime.baseEnv, ...this.runtime.secretEnv(def.secretIds) },
      volumes: { ...def.volumes },
      gpu: def.gpu,
      gpuCount: def.gpuCount,
      workdir: def.workdir,
    };
    const local = this.runtime.launcher(ctx);
    this.#launched = { command: local.command, args: [...local.args] };
    const child = spawn(local.command, local.args, { cwd: local.cwd, env: { ...ctx.env, ...local.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.#process = child;
    const collect = (fd: 1 | 2) => (chunk: Buffer) => {
      const text = chunk.toString();
      this.#chunks.push({ seq: ++this.#chunkSeq, fd, data: text });
      if (this.#chunks.length > LOG_CHUNKS) this.#chunks.shift();
      for (const line of text.split('\n')) {
        if (!line) continue;
        this.#output.push(line);
        if (this.#output.length > OUTPUT_LINES) this.#output.shift();
        this.runtime.onOutput?.(this.sandboxId, line);
      }
      this.events.emit('change');
    };
    child.stdout?.on('data', collect(1));
    child.stderr?.on('data', collect(2));
    child.on('error', (err) => {
      if (child.pid !== undefined) return;
      this.#exited = true;
      this.#output.push(`[stand-in] spawn failed: ${err.message}`);
      this.#onExit({ status: GenericStatus.InitFailure, exception: `could not start ${local.command}: ${err.message}`, exitcode: 127 });
    });
    child.on('exit', (code, signal) => {
      this.#exited = true;
      const exitcode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      this.#onExit({ status: exitcode === 0 ? GenericStatus.Success : GenericStatus.Failure, exception: exitcode === 0 ? '' : `process exited with code ${exitcode}`, exitcode });
    });

    if (def.timeoutSecs > 0) this.#timers.after(def.timeoutSecs * 1000, () => this.stop({ status: GenericStatus.Timeout, exception: `Sandbox timed out after ${def.timeoutSecs}s`, exitcode: 124 }));
    this.#armIdleTimer();
    if (def.readinessProbe?.tcpPort !== undefined) this.#probe(def.readinessProbe.tcpPort, def.readinessProbe.intervalMs);
  }

  #onExit(natural: GenericResult): void {
    // The process group may hold more than the process itself.
    this.#signalGroup('SIGKILL');
    if (this.#state === 'stopping') this.#finish(this.#pendingResult ?? natural);
    else if (this.#state === 'running') this.#finish(natural);
  }

  /** Ends the sandbox with `result` (the first cause wins); its tunnels close at once, the process gets `signal`. */
  stop(result: GenericResult, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): void {
    if (this.#state === 'queued') return this.#finish(result);
    if (this.#state !== 'running') return;
    this.#pendingResult = result;
    this.#transition('stopping');
    void this.#closeTunnels();
    void this.#starting.then(() => {
      if (this.#state !== 'stopping') return;
      if (!this.#process || this.#exited) return this.#finish(result);
      this.#signalGroup(signal);
      if (signal === 'SIGTERM') this.#timers.after(this.runtime.stopGraceMs, () => this.#signalGroup('SIGKILL'));
    });
  }

  /** The stand-in's "kill" control: the process dies of SIGKILL as in a crash. */
  kill(): void {
    this.stop({ status: GenericStatus.Failure, exception: 'Sandbox process was killed (stand-in control)', exitcode: 137 }, 'SIGKILL');
  }

  /** Scheduling gave up: no GPU of the requested type. */
  failNoCapacity(message: string): void {
    if (this.#state !== 'queued') return;
    this.capacityError = message;
    this.#finish({ status: GenericStatus.Failure, exception: message, exitcode: 0 });
  }

  #finish(result: GenericResult): void {
    if (this.#state === 'finished') return;
    this.#result = result;
    this.#finishedAt = Date.now() / 1000;
    this.#timers.clear();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    void this.#closeTunnels();
    this.#transition('finished');
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const pid = this.#process?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** For the stand-in's own exit: nothing may outlive it. */
  killNow(): void {
    this.#signalGroup('SIGKILL');
  }

  async #closeTunnels(): Promise<void> {
    const tunnels = this.#tunnels;
    await Promise.all(tunnels.map((t) => t.close()));
  }

  connectionOpened(): void {
    this.#connections++;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.events.emit('change');
  }

  connectionClosed(): void {
    this.#connections = Math.max(0, this.#connections - 1);
    if (this.#connections === 0) this.#armIdleTimer();
    this.events.emit('change');
  }

  /** Modal counts a sandbox active while a TCP connection is open over one of its tunnels. */
  #armIdleTimer(): void {
    const secs = this.definition.idleTimeoutSecs;
    if (!secs || this.#state !== 'running' || this.#connections > 0) return;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      this.stop({ status: GenericStatus.IdleTimeout, exception: `Sandbox idle for ${secs}s`, exitcode: 124 });
    }, secs * 1000);
  }

  #probe(containerPort: number, intervalMs: number): void {
    const attempt = () => {
      const port = this.targetPort(containerPort);
      if (this.#state !== 'running') return;
      if (port === undefined) return void this.#timers.after(intervalMs, attempt);
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        this.#readyAt = Date.now() / 1000;
        this.events.emit('change');
      });
      socket.once('error', () => {
        socket.destroy();
        this.#timers.after(intervalMs, attempt);
      });
    };
    attempt();
  }

  /** Resolves true once `predicate` holds, false after `timeoutMs` or when `signal` aborts. */
  waitFor(predicate: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.events.off('change', check);
        signal?.removeEventListener('abort', abort);
        resolve(value);
      };
      const check = () => predicate() && done(true);
      const abort = () => done(false);
      const timer = setTimeout(() => done(predicate()), timeoutMs);
      this.events.on('change', check);
      signal?.addEventListener('abort', abort);
    });
  }

  snapshot(): SandboxSnapshot {
    const def = this.definition;
    return {
      sandboxId: this.sandboxId,
      appId: def.appId,
      name: def.name,
      tags: { ...this.tags },
      state: this.#state,
      gpu: def.gpu,
      gpuCount: def.gpuCount,
      taskId: this.#taskId,
      createdAt: this.createdAt,
      startedAt: this.#startedAt,
      finishedAt: this.#finishedAt,
      readyAt: this.#readyAt,
      exitCode: exitCodeOf(this.#result),
      result: this.#result ? { ...this.#result } : undefined,
      requestedCommand: [...def.requestedCommand],
      launched: this.#launched ? { command: this.#launched.command, args: [...this.#launched.args] } : undefined,
      pid: this.#process?.pid,
      containerPort: def.containerPort,
      localPort: this.#localPort,
      tunnels: this.#tunnels.map((t) => ({ containerPort: t.containerPort, encrypted: t.encrypted, url: `${t.encrypted ? 'https' : 'tcp'}://${TUNNEL_HOST}:${t.port}` })),
      openConnections: this.#connections,
      output: [...this.#output],
    };
  }
}
