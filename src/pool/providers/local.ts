/**
 * Local workers: processes started here from the command template, each on
 * its own port and, given a GPU list, pinned to one GPU.
 *
 * Each worker runs in its own process group (spawned detached), so stopping
 * it signals everything it started too (a Python server's helpers, a wrapper
 * script's child) and nothing of the gateway's. The flip side: a Ctrl-C at
 * the terminal reaches only the gateway, which must call pool.close() on
 * SIGINT/SIGTERM; should the gateway die without closing, the reaper (see
 * reaper.ts) stops the workers.
 *
 * Life of one worker: starting (spawned, polled until its health check says
 * ready) → idle ⇄ busy → resetting (polled until free again) → idle. A process
 * that dies is restarted with exponential backoff; one that fails to start
 * maxStartFailures times in a row gives up, carrying its last output, so the
 * user reads "CUDA out of memory" rather than "no workers".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as wait } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { LocalPoolConfig } from '../config.js';
import { probeHealth } from '../health.js';
import type { ReleaseOutcome, WorkerInfo, WorkerState } from '../types.js';
import { localChatUrl, localHealthUrl } from '../urls.js';
import { ChildOutput } from './child-output.js';
import { renderCommand, splitCommand } from './command-line.js';
import { PortAllocator } from './ports.js';
import { assertIdle, type Launch, type ManagedWorker, type ProviderEvents, type WorkerProvider } from './provider.js';
import { Reaper } from './reaper.js';

const PROBE_TIMEOUT_MS = 5_000;
/** Start-up polls begin fast (a small worker is ready in a second) and settle at every 2 s for slow model loads. */
const START_POLL_MS = { first: 100, max: 2_000 };
/** After a conversation our worker is usually free within milliseconds. */
const RESET_POLL_MS = { first: 25, max: 1_000 };
/** Output lines quoted when a worker gives up. */
const ERROR_TAIL_LINES = 12;
/** After the process exits, how long its pipes may take to deliver its last words. */
const OUTPUT_DRAIN_MS = 500;

interface LocalContext {
  config: LocalPoolConfig;
  argv: string[];
  ports: PortAllocator;
  log: Logger;
  events: ProviderEvents;
  /** The process groups the reaper must stop should the gateway die. */
  reaper(): Reaper;
  remove(worker: LocalWorker): void;
}

export class LocalProvider implements WorkerProvider {
  readonly kind = 'local';
  readonly #workers = new Set<LocalWorker>();
  readonly #context: LocalContext;
  #nextId = 1;
  #reaper?: Reaper;

  constructor(
    private readonly config: LocalPoolConfig,
    log: Logger,
    events: ProviderEvents,
  ) {
    this.#context = {
      config,
      argv: splitCommand(config.command),
      ports: new PortAllocator(config.host, config.basePort),
      log,
      events,
      reaper: () => (this.#reaper ??= new Reaper(config.stopGraceSeconds * 1000, log)),
      remove: (worker) => {
        if (this.#workers.delete(worker)) events.removed(worker);
      },
    };
  }

  workers(): Iterable<ManagedWorker> {
    return this.#workers;
  }

  async start(): Promise<void> {}

  launch(): Launch {
    const worker = new LocalWorker(`local-${this.#nextId++}`, this.#pickGpu(), this.#context);
    this.#workers.add(worker);
    return { worker, spawned: worker.boot() };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#workers].map((worker) => worker.stop('the pool is closing')));
    await this.#reaper?.stop();
  }

  /** The least loaded GPU, earlier in the list on a tie: round-robin while filling up, balanced after stops. */
  #pickGpu(): string | undefined {
    const gpus = this.config.gpus;
    if (!gpus?.length) return undefined;
    const load = new Map(gpus.map((gpu) => [gpu, 0]));
    for (const worker of this.#workers) {
      const gpu = worker.info.gpu;
      if (gpu !== undefined && !worker.failure) load.set(gpu, (load.get(gpu) ?? 0) + 1);
    }
    return gpus.reduce((best, gpu) => (load.get(gpu)! < load.get(best)! ? gpu : best));
  }
}

class LocalWorker implements ManagedWorker {
  readonly info: WorkerInfo;
  failure?: string;
  readonly #ctx: LocalContext;
  readonly #log: Logger;
  readonly #output: ChildOutput;
  #child?: ChildProcess;
  /** Aborted when the current process is gone: ends its polls and sleeps. */
  #childGone = new AbortController();
  #port?: number;
  /** Kyutai's servers have none: then a worker is free as soon as its conversation's socket closed. */
  #hasHealth = true;
  #startFailures = 0;
  #restartTimer?: NodeJS.Timeout;
  /** A restart we asked for (bad conversation, stuck reset): respawn as soon as the process is gone. */
  #restartWhenGone = false;
  /** Why we killed the process, when we did; reported instead of the bare exit status. */
  #killReason?: string;
  #killTimer?: NodeJS.Timeout;
  #stopped?: Promise<void>;
  #onStopped?: () => void;

  constructor(id: string, gpu: string | undefined, ctx: LocalContext) {
    this.#ctx = ctx;
    this.#log = ctx.log.child({ worker: id });
    this.#output = new ChildOutput(this.#log, id);
    this.info = { id, url: '', state: 'starting', provider: 'local', gpu, restarts: 0, since: Date.now() };
  }

  get recovering(): boolean {
    return this.#restartTimer !== undefined || this.#restartWhenGone;
  }

  boot(): Promise<void> {
    return this.#spawn();
  }

  lease(): void {
    assertIdle(this.info);
    this.#set('busy');
  }

  release(outcome: ReleaseOutcome): void {
    if (this.info.state !== 'busy') return;
    if (!outcome.healthy) return this.#restart(`its last conversation went wrong${outcome.reason ? ` (${outcome.reason})` : ''}`);
    if (!this.#hasHealth) return this.#set('idle');
    this.#set('resetting', 'finishing its last conversation');
    void this.#waitUntilFree();
  }

  stop(reason: string): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve) => {
      this.#onStopped = resolve;
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
      this.#restartWhenGone = false;
      this.#set('stopping', reason);
      if (this.#child) this.#terminate(this.#child);
      else this.#finishStop();
    });
    return this.#stopped;
  }

  async #spawn(): Promise<void> {
    this.#set('starting');
    const { config, argv: template, ports } = this.#ctx;
    let port: number;
    try {
      port = await ports.allocate();
    } catch (err) {
      this.#fail(`Worker ${this.info.id} could not start: ${(err as Error).message}.`);
      throw err;
    }
    if (this.#stopped) {
      ports.release(port);
      return;
    }
    this.#port = port;
    this.info.url = localChatUrl(config.host, port, config.chatPath);
    const argv = renderCommand(template, { port: String(port), host: config.host });
    const env: NodeJS.ProcessEnv = { ...process.env, ...config.env };
    if (this.info.gpu !== undefined) env.CUDA_VISIBLE_DEVICES = this.info.gpu;

    this.#output.clear();
    this.#childGone = new AbortController();
    const child = spawn(argv[0], argv.slice(1), { cwd: config.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.#child = child;
    this.info.pid = child.pid;
    if (child.pid !== undefined) this.#ctx.reaper().watch(child.pid);
    this.#output.attach(child.stdout!, 'stdout');
    this.#output.attach(child.stderr!, 'stderr');

    return new Promise<void>((resolve, reject) => {
      child.once('spawn', () => {
        this.#log.info({ workerPid: child.pid, port, gpu: this.info.gpu }, `${this.info.id} started: ${argv.join(' ')}`);
        this.#ctx.events.changed(this);
        resolve();
        void this.#waitUntilReady(child);
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (child.pid === undefined) {
          this.#onSpawnError(child, err, argv[0]);
          reject(err);
        } else {
          this.#log.warn({ err }, `${this.info.id}: ${err.message}`);
        }
      });
      child.once('exit', (code, signal) => {
        // Whatever it left behind in its group goes with it: it would hold the port or the GPU.
        signalGroup(child.pid, 'SIGKILL');
        const settle = () => this.#onExit(child, code, signal);
        const timer = setTimeout(settle, OUTPUT_DRAIN_MS);
        child.once('close', () => {
          clearTimeout(timer);
          settle();
        });
      });
    });
  }

  async #waitUntilReady(child: ChildProcess): Promise<void> {
    const { config } = this.#ctx;
    const url = localHealthUrl(config.host, this.#port!, config.healthPath);
    const signal = this.#childGone.signal;
    const timeoutMs = config.readyTimeoutSeconds * 1000;
    let deadline = Date.now() + timeoutMs;
    let lastProgress: string | undefined;
    for (let delay = START_POLL_MS.first; ; delay = Math.min(delay * 2, START_POLL_MS.max)) {
      const probe = await probeHealth(url, PROBE_TIMEOUT_MS, signal);
      if (signal.aborted || this.#child !== child || this.info.state !== 'starting') return;
      if (probe.kind === 'warming' && probe.progress !== undefined && probe.progress !== lastProgress) {
        // A worker whose progress moves (a first start downloading its models) is not stuck: the limit counts from its latest report.
        lastProgress = probe.progress;
        deadline = Math.max(deadline, Date.now() + timeoutMs);
      }
      if (probe.kind === 'ready') {
        this.#hasHealth = probe.healthEndpoint;
        this.#startFailures = 0;
        this.#log.info(`${this.info.id} is ready at ${this.info.url}${probe.healthEndpoint ? '' : ' (no health endpoint: it is treated as free whenever no conversation holds it)'}`);
        return this.#set('idle');
      }
      if (probe.kind === 'failed') return this.#kill(child, probe.reason);
      if (probe.kind === 'warming' && probe.progress && probe.progress !== this.info.detail) this.#set('starting', probe.progress);
      if (Date.now() >= deadline) {
        const since = lastProgress === undefined ? '' : ` of its last progress report ("${lastProgress}")`;
        return this.#kill(child, `it was not ready at ${url} within ${config.readyTimeoutSeconds} s${since} (raise pool.local.readyTimeoutSeconds if loading takes longer)`);
      }
      if (!(await sleep(delay, signal))) return;
    }
  }

  async #waitUntilFree(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const { config } = this.#ctx;
    const url = localHealthUrl(config.host, this.#port!, config.healthPath);
    const signal = this.#childGone.signal;
    const deadline = Date.now() + config.resetTimeoutSeconds * 1000;
    for (let delay = RESET_POLL_MS.first; ; delay = Math.min(delay * 2, RESET_POLL_MS.max)) {
      const probe = await probeHealth(url, PROBE_TIMEOUT_MS, signal);
      if (signal.aborted || this.#child !== child || this.info.state !== 'resetting') return;
      if (probe.kind === 'ready') return this.#set('idle');
      if (probe.kind === 'failed') return this.#restart(probe.reason);
      if (Date.now() >= deadline) {
        const seen = probe.kind === 'down' ? probe.reason : `it still reported ${probe.kind}`;
        return this.#restart(`${seen} ${config.resetTimeoutSeconds} s after its conversation ended`);
      }
      if (!(await sleep(delay, signal))) return;
    }
  }

  #restart(reason: string): void {
    const child = this.#child;
    if (!child) return;
    this.#log.warn(`restarting ${this.info.id}: ${reason}`);
    this.#restartWhenGone = true;
    this.#set('resetting', `restarting: ${reason}`);
    this.#terminate(child);
  }

  #kill(child: ChildProcess, reason: string): void {
    this.#killReason = reason;
    this.#terminate(child);
  }

  /** SIGTERM to its group, SIGKILL after the grace period. */
  #terminate(child: ChildProcess): void {
    if (this.#killTimer) return;
    signalGroup(child.pid, 'SIGTERM');
    this.#killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), this.#ctx.config.stopGraceSeconds * 1000);
  }

  #processGone(child: ChildProcess): boolean {
    if (child !== this.#child) return false;
    this.#child = undefined;
    this.#childGone.abort();
    clearTimeout(this.#killTimer);
    this.#killTimer = undefined;
    if (child.pid !== undefined) this.#ctx.reaper().forget(child.pid);
    this.info.pid = undefined;
    if (this.#port !== undefined) this.#ctx.ports.release(this.#port);
    return true;
  }

  #onSpawnError(child: ChildProcess, err: NodeJS.ErrnoException, command: string): void {
    if (!this.#processGone(child)) return;
    if (this.#stopped) return this.#finishStop();
    const { config } = this.#ctx;
    const why =
      err.code === 'ENOENT'
        ? `"${command}" was not found${config.cwd ? ` (or the directory ${config.cwd} does not exist)` : ''}. Install it, put it on the PATH, or give its full path`
        : err.code === 'EACCES'
          ? `"${command}" may not be executed. Check its permissions, or give the interpreter first (e.g. "python script.py")`
          : err.message;
    this.#fail(`Worker ${this.info.id} could not be started: ${why} in pool.local.command (${config.command}).`);
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (!this.#processGone(child)) return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const killReason = this.#killReason;
    this.#killReason = undefined;
    if (this.#stopped) {
      this.#log.info(`${this.info.id} stopped (${how})`);
      return this.#finishStop();
    }
    if (this.#restartWhenGone) {
      this.#restartWhenGone = false;
      this.info.restarts++;
      void this.#spawn().catch(() => undefined);
      return;
    }
    const reason = killReason ?? `its process ${how}`;
    if (this.info.state === 'starting') {
      this.#startFailures++;
      const { maxStartFailures } = this.#ctx.config.restart;
      if (this.#startFailures >= maxStartFailures) return this.#fail(this.#giveUpMessage(reason));
      this.#log.warn(`${this.info.id} failed to start (${this.#startFailures}/${maxStartFailures}): ${reason}`);
    } else {
      this.#log.warn(`${this.info.id} died while ${this.info.state}: ${reason}`);
    }
    this.#scheduleRestart(reason);
  }

  #scheduleRestart(reason: string): void {
    const { initialDelaySeconds, maxDelaySeconds } = this.#ctx.config.restart;
    const delay = Math.min(maxDelaySeconds, initialDelaySeconds * 2 ** Math.max(0, this.#startFailures - 1));
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.info.restarts++;
      void this.#spawn().catch(() => undefined);
    }, delay * 1000);
    this.#set('down', `${reason}; restarting in ${delay} s`);
  }

  #giveUpMessage(reason: string): string {
    const lines = this.#output.lastLines(ERROR_TAIL_LINES);
    const output = lines.length ? `Its last output:\n${lines.map((l) => `  | ${l}`).join('\n')}` : 'It wrote nothing to stdout or stderr.';
    return (
      `Worker ${this.info.id} failed to start ${this.#startFailures === 1 ? 'once' : `${this.#startFailures} times in a row`}; the last time ${reason}.\n${output}\n` +
      `Fix the worker command (pool.local.command: ${this.#ctx.config.command}) or what it needs (model files, GPU memory, packages).`
    );
  }

  #fail(message: string): void {
    this.failure = message;
    this.#log.error(message);
    this.#set('down', message);
  }

  #finishStop(): void {
    this.#ctx.remove(this);
    this.#onStopped?.();
  }

  #set(state: WorkerState, detail?: string): void {
    this.info.state = state;
    this.info.since = Date.now();
    this.info.detail = detail;
    this.#ctx.events.changed(this);
  }
}

/** Signals a worker's whole process group; never anything else (no pid, or our own). */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid || pid <= 1 || pid === process.pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone (ESRCH), or the group is not ours to signal: nothing else to do.
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  // The only rejection is the abort; callers branch on the boolean rather than catch.
  return wait(ms, true, { signal }).catch(() => false);
}
