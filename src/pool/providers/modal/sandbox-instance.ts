/**
 * One Modal sandbox running Kyutai's server, as the pool's HostedWorker
 * sees it: checked, dialled, ended.
 *
 * The sandbox has no public tunnel. Everything reaches it through Modal's
 * connect-token endpoint: HTTPS and websockets carrying
 * `Authorization: Bearer <token>`, which Modal checks before anything
 * reaches the container. The gateway keeps the tokens: one for its own
 * health checks, and a fresh one for each conversation (made ahead, so a
 * caller does not wait for it), labelled with the worker and the lease in
 * the unforgeable user data Modal passes to the server. A leaked endpoint
 * URL alone reaches nothing.
 */
import type { Logger } from 'pino';
import type { Probe } from '../../health.js';
import type { DialInfo, WorkerDetails, WorkerState } from '../../types.js';
import { toChatUrl } from '../../urls.js';
import { delayAfter } from '../../worker/backoff.js';
import type { HostedInstance } from '../../worker/host.js';
import { isGone, type ModalSdk, type Sandbox } from './control-plane.js';
import { probeEndpoint } from './endpoint-probe.js';
import { billStateOf, type Meter } from './ledger.js';
import { SandboxOutput } from './sandbox-output.js';
import { MOSHI_PORT } from './settings.js';
import { article, type StartProgress } from './start-progress.js';

/** Modal out of reach while a sandbox is watched: tries again, slower each time. */
const WATCH_RETRY = { firstMs: 500, maxMs: 30_000 };

/** A health check slower than this says the sandbox is not fit for a conversation. */
const PROBE_TIMEOUT_MS = 10_000;
/** Sandbox output after it ended: how long to wait for the last lines before giving up on them. */
const OUTPUT_DRAIN_MS = 3000;
const TERMINATE_ATTEMPTS = 5;
const ABANDONED = -1;
/**
 * While starting, a check that finds the server not listening yet waits up to
 * 1.5 s for its next line of output; after a line, it checks every 150 ms for
 * up to 2 s, instead of waiting for the pool's slowing polls.
 */
const LINE_WAIT_MS = 1500;
const RECENT_LINE_MS = 1000;
const QUICK_RECHECK_MS = 2000;
const QUICK_RECHECK_INTERVAL_MS = 150;

export interface ConnectToken {
  url: string;
  token: string;
}

export interface SandboxInstanceOptions {
  sdk: ModalSdk;
  sandbox: Sandbox;
  workerId: string;
  app: string;
  gpu: string;
  /** The gateway's own token, for health checks. */
  probeToken: ConnectToken;
  /** Extra certificate authorities (PEM) to trust, with the system's. */
  ca?: string[];
  meter: Meter;
  log: Logger;
  /** Fresh starts report the model loading to waiting callers; adopted sandboxes have none. */
  progress?: StartProgress;
  adopted?: boolean;
}

export class SandboxInstance implements HostedInstance {
  readonly url: string;
  readonly readinessTarget: string;
  readonly ended: Promise<string>;
  readonly #o: SandboxInstanceOptions;
  /** Read while it starts (progress, the lines quoted if it fails), then closed: a long poll per stream per sandbox adds up. */
  readonly #output?: SandboxOutput;
  readonly #healthUrl: string;
  readonly #startedAt = new Date();
  #leases = 0;
  #dials = 0;
  #nextToken?: Promise<ConnectToken>;
  #terminating = false;
  #gone = false;
  #lastLineAt = -Infinity;
  /** Until the worker first leaves `starting`: its output is read meanwhile. */
  #starting = true;
  readonly #lineWaiters = new Set<() => void>();
  readonly #abandoned = deferred<typeof ABANDONED>();

  constructor(options: SandboxInstanceOptions) {
    this.#o = options;
    const base = options.probeToken.url.replace(/\/+$/, '');
    this.#healthUrl = `${base}/health`;
    this.url = toChatUrl(base, '/api/chat');
    this.readinessTarget = `${this.#healthUrl} (sandbox ${options.sandbox.sandboxId})`;
    const log = options.log.child({ worker: options.workerId, sandbox: options.sandbox.sandboxId });
    // An adopted sandbox's output would start again from its first line: what it said then is in the earlier gateway's log.
    if (!options.adopted) this.#output = new SandboxOutput(options.sandbox, ({ text, redrawn }) => {
      this.#lastLineAt = performance.now();
      for (const wake of [...this.#lineWaiters]) wake();
      // A redrawn progress bar is news for waiting callers, noise in the log.
      if (redrawn) log.debug(`[${options.workerId}] ${text}`);
      else log.info(`[${options.workerId}] ${text}`);
      options.progress?.stage(`Kyutai's server is starting on ${article(options.gpu)} ${options.gpu}: ${text.slice(0, 120)}`);
    });
    options.progress?.stage(`Kyutai's server is starting on ${article(options.gpu)} ${options.gpu}`);
    this.ended = this.#watch();
  }

  get sandboxId(): string {
    return this.#o.sandbox.sandboxId;
  }

  async probe(signal: AbortSignal): Promise<Probe> {
    let probe = await this.#probeOnce(signal);
    // While it starts, news from the server (Kyutai's last line comes right before it listens) is
    // the moment to look again: a caller is waiting, and the pool's polls slow down to every 2 s.
    if (notYet(probe) && this.#output && this.#starting && !this.#gone && (this.#lineIsRecent() || (await this.#nextLine(LINE_WAIT_MS, signal)))) {
      const deadline = performance.now() + QUICK_RECHECK_MS;
      while (notYet(probe) && !this.#gone && !signal.aborted && performance.now() < deadline) {
        await sleep(QUICK_RECHECK_INTERVAL_MS);
        probe = await this.#probeOnce(signal);
      }
    }
    if (probe.kind === 'ready') {
      this.#o.progress?.finish();
      // The first conversation's token is made while nobody waits for it.
      this.#nextToken ??= this.#mint();
    }
    return probe;
  }

  #lineIsRecent(): boolean {
    return performance.now() - this.#lastLineAt < RECENT_LINE_MS;
  }

  /** Resolves true at the server's next line of output, false after `ms` or when the check is cancelled. */
  #nextLine(ms: number, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (news: boolean) => {
        clearTimeout(timer);
        this.#lineWaiters.delete(onLine);
        signal.removeEventListener('abort', onAbort);
        resolve(news);
      };
      const onLine = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.#lineWaiters.add(onLine);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #probeOnce(signal: AbortSignal): Promise<Probe> {
    if (this.#gone) return Promise.resolve({ kind: 'down', reason: `sandbox ${this.sandboxId} has ended` });
    const { probeToken, ca } = this.#o;
    return probeEndpoint({ url: this.#healthUrl, headers: { authorization: `Bearer ${probeToken.token}` }, ca, timeoutMs: PROBE_TIMEOUT_MS }, signal);
  }

  async dial(): Promise<DialInfo> {
    if (this.#gone) throw new Error(`sandbox ${this.sandboxId} has ended`);
    this.#dials++;
    const ready = this.#nextToken ?? this.#mint();
    this.#nextToken = this.#mint();
    let token: ConnectToken;
    try {
      token = await ready;
    } catch {
      // The one made ahead failed (a passing error): one more try, now.
      token = await this.#mint();
    }
    return {
      url: toChatUrl(token.url, '/api/chat'),
      headers: { authorization: `Bearer ${token.token}` },
      ...(this.#o.ca && { ca: this.#o.ca }),
    };
  }

  terminate(): void {
    if (this.#terminating || this.#gone) return;
    this.#terminating = true;
    this.#o.meter.set('stopping');
    this.#o.progress?.finish();
    void this.#terminate();
  }

  observe(state: WorkerState): void {
    if (this.#terminating || this.#gone) return;
    this.#o.meter.set(billStateOf(state));
    if (state !== 'starting' && this.#starting) {
      this.#starting = false;
      this.#o.progress?.finish();
      this.#output?.stop();
    }
  }

  details(): WorkerDetails {
    return {
      sandboxId: this.sandboxId,
      gpuType: this.#o.gpu,
      app: this.#o.app,
      since: this.#startedAt.toISOString(),
      conversations: this.#dials,
      access: 'connect token',
      ...(this.#o.adopted && { adopted: true }),
    };
  }

  lastOutput(lines: number): string[] {
    return this.#output?.last(lines) ?? [];
  }

  /** A token for one conversation. Tokens cannot be revoked: they die with the sandbox, and never leave the gateway. */
  #mint(): Promise<ConnectToken> {
    const lease = ++this.#leases;
    const made = this.#o.sandbox.createConnectToken({
      port: MOSHI_PORT,
      userMetadata: JSON.stringify({ worker: this.#o.workerId, lease, sandbox: this.sandboxId }),
    });
    // Made ahead: a failure is only seen if a conversation asks for it.
    made.catch(() => undefined);
    return made;
  }

  async #terminate(): Promise<void> {
    const { sandbox, sdk, log } = this.#o;
    for (let attempt = 1; attempt <= TERMINATE_ATTEMPTS && !this.#gone; attempt++) {
      try {
        await sandbox.terminate();
        return;
      } catch (err) {
        if (isGone(sdk, err)) return;
        if (attempt === TERMINATE_ATTEMPTS) {
          log.error({ err, sandbox: this.sandboxId }, `could not terminate Modal sandbox ${this.sandboxId}: ${(err as Error).message}. It stops by itself at its timeout; end it sooner on Modal's dashboard, or with scripts/modal-smoke.ts --stop-all.`);
          this.#abandoned.resolve(ABANDONED);
          return;
        }
        await sleep(500 * 2 ** attempt);
      }
    }
  }

  /** Resolves once Modal says the sandbox finished, however it ended. */
  async #watch(): Promise<string> {
    const { sandbox, sdk } = this.#o;
    let how: string;
    for (let attempt = 0; ; attempt++) {
      try {
        // A sandbox we could not end (Modal out of reach) is let go, so a shutdown is not held forever.
        const code = await Promise.race([sandbox.wait(), this.#abandoned.promise]);
        how = code === ABANDONED ? `sandbox ${this.sandboxId} could not be terminated (see the log); it ends at its timeout` : this.#describeExit(code);
        break;
      } catch (err) {
        if (isGone(sdk, err)) {
          how = `Modal no longer knows sandbox ${this.sandboxId}`;
          break;
        }
        // Modal unreachable for a moment: keep watching, a little slower each time.
        await Promise.race([sleep(delayAfter(WATCH_RETRY, attempt)), this.#abandoned.promise]);
      }
    }
    this.#gone = true;
    this.#o.progress?.finish();
    if (this.#output) {
      await Promise.race([this.#output.done, sleep(OUTPUT_DRAIN_MS)]);
      this.#output.stop();
    }
    this.#o.meter.close();
    return how;
  }

  #describeExit(code: number): string {
    if (this.#terminating) return `sandbox ${this.sandboxId} was terminated`;
    if (code === 137) return `sandbox ${this.sandboxId} was killed (exit code 137: ended on Modal, or out of memory)`;
    if (code === 124) return `sandbox ${this.sandboxId} reached its time limit (pool.modal.sandboxTimeoutSeconds)`;
    return `Kyutai's server in sandbox ${this.sandboxId} exited with code ${code}`;
  }
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function notYet(probe: Probe): boolean {
  return probe.kind === 'down' || probe.kind === 'warming';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
