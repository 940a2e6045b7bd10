/**
 * What /health, /health/ready and /health/live answer.
 *
 * - live: the process answers at all (an orchestrator restarts it when not).
 * - ready: this gateway can take a conversation now: not draining, a worker
 *   ready or on its way, and the engine able to hold a conversation. A
 *   worker that started but whose engine could not load a stage (no
 *   language model, no speech recogniser) says so in its own /health as
 *   `problem`; when every ready worker says so, the gateway is degraded and
 *   repeats why, so that an orchestrator and a person both see it.
 */
import type { PoolSnapshot, WorkerInfo, WorkerPool } from '../pool/types.js';
import { readJsonObject } from '../pool/health.js';
import { healthUrlOf } from '../pool/urls.js';

export type HealthStatus = 'ok' | 'starting' | 'degraded' | 'draining';

export interface Assessment {
  status: HealthStatus;
  /** Why the status is not ok, one sentence each. */
  reasons: string[];
  pool: PoolSnapshot;
}

/** Our workers answer /health next to /api/chat; others (Kyutai's) have none, which reads as no problem. */
function workerHealthUrl(worker: WorkerInfo): string | undefined {
  try {
    if (!new URL(worker.url).pathname.endsWith('/api/chat')) return undefined;
    return healthUrlOf(worker.url, '/api/chat', '/health');
  } catch {
    return undefined;
  }
}

const CHECK_EVERY_MS = 5000;
const CHECK_TIMEOUT_MS = 2000;
/** Ready workers asked per check: enough to tell one broken worker from a broken engine. */
const WORKERS_PER_CHECK = 3;
const MAX_PROBLEM_CHARS = 500;

/** Asks ready workers whether their engine can hold a conversation; at most once per CHECK_EVERY_MS. */
export class EngineCheck {
  #checkedAt = -Infinity;
  #running?: Promise<void>;
  /** Problem reported by each worker checked last time (undefined: none). */
  #problems = new Map<string, string | undefined>();

  /** Problems of the last check, refreshed in the background when stale; the first call waits for it. */
  async problems(workers: WorkerInfo[]): Promise<Map<string, string | undefined>> {
    const ready = workers.filter((w) => w.state === 'idle' || w.state === 'busy');
    if (performance.now() - this.#checkedAt > CHECK_EVERY_MS && !this.#running) {
      const first = this.#checkedAt === -Infinity;
      this.#running = this.#check(ready.slice(0, WORKERS_PER_CHECK)).finally(() => {
        this.#checkedAt = performance.now();
        this.#running = undefined;
      });
      if (first) await this.#running;
    }
    const ids = new Set(ready.map((w) => w.id));
    return new Map([...this.#problems].filter(([id]) => ids.has(id)));
  }

  async #check(workers: WorkerInfo[]): Promise<void> {
    const results = await Promise.all(
      workers.map(async (w): Promise<[string, string | undefined] | undefined> => {
        const url = workerHealthUrl(w);
        if (!url) return undefined;
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
          const body = await readJsonObject(response);
          // Not our JSON: not ours to judge (the pool's own checks report a worker that is down).
          if (!body) return undefined;
          return [w.id, typeof body.problem === 'string' ? body.problem.slice(0, MAX_PROBLEM_CHARS) : undefined];
        } catch {
          // Unreachable or not ours: the pool's own checks report a worker that is down.
          return undefined;
        }
      }),
    );
    this.#problems = new Map(results.filter((r): r is [string, string | undefined] => r !== undefined));
  }
}

export class GatewayHealth {
  readonly #engine = new EngineCheck();

  constructor(
    private readonly pool: WorkerPool,
    private readonly isDraining: () => boolean,
  ) {}

  async assess(): Promise<Assessment> {
    const pool = this.pool.snapshot();
    if (this.isDraining()) return { status: 'draining', reasons: ['The gateway is shutting down and takes no new conversations.'], pool };
    const serving = pool.workers.filter((w) => w.state === 'idle' || w.state === 'busy' || w.state === 'resetting');
    if (serving.length === 0) {
      const coming = pool.workers.some((w) => w.state === 'starting' || w.state === 'down');
      if (coming && pool.accepting) return { status: 'starting', reasons: ['No worker is ready yet.', ...describeWorkers(pool.workers)], pool };
      // Workers started on demand (no warm ones): the first caller waits for one, but is served.
      if (pool.accepting) return { status: 'ok', reasons: [], pool };
      return { status: 'degraded', reasons: ['No worker can serve a conversation.', ...describeWorkers(pool.workers)], pool };
    }
    const problems = await this.#engine.problems(pool.workers);
    const broken = [...problems].filter(([, problem]) => problem !== undefined);
    if (problems.size > 0 && broken.length === problems.size) {
      return {
        status: 'degraded',
        reasons: ["The engine cannot hold a conversation; clients are told why and disconnected.", ...broken.map(([id, problem]) => `${id}: ${problem}`)],
        pool,
      };
    }
    return { status: 'ok', reasons: [], pool };
  }
}

function describeWorkers(workers: WorkerInfo[]): string[] {
  return workers.filter((w) => w.detail).map((w) => `${w.id} (${w.state}): ${w.detail}`);
}
