/**
 * The local host: worker processes started here from the command template,
 * each on its own port and, given a GPU list, pinned to one GPU.
 *
 * Each worker runs in its own process group (spawned detached), so ending
 * it signals everything it started too (a Python server's helpers, a
 * wrapper script's child) and nothing of the gateway's. The flip side: a
 * Ctrl-C at the terminal reaches only the gateway, which must call
 * pool.close() on SIGINT/SIGTERM; should the gateway die without closing,
 * the reaper (see reaper.ts) stops the workers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { probeHealth } from '../../health.js';
import type { DialInfo } from '../../types.js';
import { localChatUrl, localHealthUrl } from '../../urls.js';
import { WorkerStartError, type HostedInstance, type Placement, type StartRequest, type WorkerHost } from '../../worker/host.js';
import { ChildOutput } from './child-output.js';
import { renderCommand, splitCommand } from './command-line.js';
import { PortAllocator } from './ports.js';
import { Reaper } from './reaper.js';
import type { LocalSettings } from './settings.js';

const PROBE_TIMEOUT_MS = 5_000;
/** After the process exits, how long its pipes may take to deliver its last words. */
const OUTPUT_DRAIN_MS = 500;

export class LocalProcessHost implements WorkerHost {
  readonly fixHint: string;
  readonly #config: LocalSettings;
  readonly #log: Logger;
  readonly #argv: string[];
  readonly #ports: PortAllocator;
  /** Workers per GPU, for placing the next one. */
  readonly #gpuLoad = new Map<string, number>();
  #reaper?: Reaper;

  constructor(config: LocalSettings, log: Logger) {
    this.#config = config;
    this.#log = log;
    this.#argv = splitCommand(config.command);
    this.#ports = new PortAllocator(config.host, config.basePort);
    this.fixHint = `Fix the worker command (pool.local.command: ${config.command}) or what it needs (model files, GPU memory, packages).`;
    for (const gpu of config.gpus ?? []) this.#gpuLoad.set(gpu, 0);
  }

  /** The least loaded GPU, earlier in the list on a tie: round-robin while filling up, balanced after stops. */
  place(): Placement {
    const gpus = this.#config.gpus;
    if (!gpus?.length) return { release: () => undefined };
    const gpu = gpus.reduce((best, id) => (this.#gpuLoad.get(id)! < this.#gpuLoad.get(best)! ? id : best));
    this.#gpuLoad.set(gpu, this.#gpuLoad.get(gpu)! + 1);
    let released = false;
    return {
      gpu,
      release: () => {
        if (released) return;
        released = true;
        this.#gpuLoad.set(gpu, this.#gpuLoad.get(gpu)! - 1);
      },
    };
  }

  async start(request: StartRequest): Promise<HostedInstance> {
    const config = this.#config;
    const id = request.workerId;
    let port: number;
    try {
      port = await this.#ports.allocate();
    } catch (err) {
      throw new WorkerStartError(`Worker ${id} could not start: ${(err as Error).message}.`, { cause: err });
    }
    if (request.signal.aborted) {
      this.#ports.release(port);
      throw request.signal.reason;
    }
    const argv = renderCommand(this.#argv, { port: String(port), host: config.host });
    const env: NodeJS.ProcessEnv = { ...process.env, ...config.env };
    const gpu = request.placement?.gpu;
    if (gpu !== undefined) env.CUDA_VISIBLE_DEVICES = gpu;
    const log = this.#log.child({ worker: id });
    const output = new ChildOutput(log, id);

    const child = spawn(argv[0], argv.slice(1), { cwd: config.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid !== undefined) this.#watchdog().watch(child.pid);
    output.attach(child.stdout!, 'stdout');
    output.attach(child.stderr!, 'stderr');

    return new Promise<HostedInstance>((resolve, reject) => {
      child.once('spawn', () => {
        log.info({ workerPid: child.pid, port, gpu }, `${id} started: ${argv.join(' ')}`);
        resolve(new LocalProcess(child, port, output, config, () => this.#gone(child, port)));
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) return log.warn({ err }, `${id}: ${err.message}`);
        this.#ports.release(port);
        reject(new WorkerStartError(`Worker ${id} could not be started: ${this.#spawnProblem(err, argv[0])} in pool.local.command (${config.command}).`, { cause: err }));
      });
    });
  }

  async close(): Promise<void> {
    await this.#reaper?.stop();
  }

  /** The process groups the reaper must stop should the gateway die. */
  #watchdog(): Reaper {
    return (this.#reaper ??= new Reaper(this.#config.stopGraceSeconds * 1000, this.#log));
  }

  #gone(child: ChildProcess, port: number): void {
    if (child.pid !== undefined) this.#watchdog().forget(child.pid);
    this.#ports.release(port);
  }

  #spawnProblem(err: NodeJS.ErrnoException, command: string): string {
    if (err.code === 'ENOENT') {
      return `"${command}" was not found${this.#config.cwd ? ` (or the directory ${this.#config.cwd} does not exist)` : ''}. Install it, put it on the PATH, or give its full path`;
    }
    if (err.code === 'EACCES') return `"${command}" may not be executed. Check its permissions, or give the interpreter first (e.g. "python script.py")`;
    return err.message;
  }
}

/** One worker process. */
class LocalProcess implements HostedInstance {
  readonly url: string;
  readonly readinessTarget: string;
  readonly pid?: number;
  readonly ended: Promise<string>;
  readonly #child: ChildProcess;
  readonly #output: ChildOutput;
  readonly #graceMs: number;
  #killTimer?: NodeJS.Timeout;
  #exited = false;

  constructor(child: ChildProcess, port: number, output: ChildOutput, config: LocalSettings, onGone: () => void) {
    this.#child = child;
    this.#output = output;
    this.#graceMs = config.stopGraceSeconds * 1000;
    this.pid = child.pid;
    this.url = localChatUrl(config.host, port, config.chatPath);
    this.readinessTarget = localHealthUrl(config.host, port, config.healthPath);
    this.ended = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exited = true;
        clearTimeout(this.#killTimer);
        // Whatever it left behind in its group goes with it: it would hold the port or the GPU.
        signalGroup(child.pid, 'SIGKILL');
        let settled = false;
        const settle = () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          onGone();
          resolve(signal ? `its process was killed by ${signal}` : `its process exited with code ${code}`);
        };
        const timer = setTimeout(settle, OUTPUT_DRAIN_MS);
        child.once('close', settle);
      });
    });
  }

  probe(signal: AbortSignal) {
    return probeHealth(this.readinessTarget, PROBE_TIMEOUT_MS, signal);
  }

  async dial(): Promise<DialInfo> {
    return { url: this.url };
  }

  /** SIGTERM to its group, SIGKILL after the grace period. */
  terminate(): void {
    if (this.#killTimer || this.#exited) return;
    signalGroup(this.#child.pid, 'SIGTERM');
    this.#killTimer = setTimeout(() => signalGroup(this.#child.pid, 'SIGKILL'), this.#graceMs);
  }

  lastOutput(lines: number): string[] {
    return this.#output.lastLines(lines);
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
