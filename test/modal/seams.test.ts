/**
 * The two small seam additions the modal provider relies on, checked on an
 * in-memory host (a STAND-IN host: nothing runs): progress whose text
 * changes within one step (a ticking clock) does not keep a stuck start
 * alive, while a new step does; and an instance hears its worker's states
 * (what the sandbox-seconds meter is built on).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPool, NoWorkersError } from '../../src/pool/index.js';
import { defineProvider } from '../../src/pool/provider.js';
import { PROVIDERS } from '../../src/pool/registry.js';
import { hostedWorkerFields } from '../../src/pool/settings-schema.js';
import type { WorkerState } from '../../src/pool/types.js';
import type { HostedInstance, StartRequest, WorkerHost } from '../../src/pool/worker/host.js';
import { HostedProvider } from '../../src/pool/worker/hosted-provider.js';
import { silentLogger } from '../../src/util/logger.js';

const never = () => new AbortController().signal;

/** Reports progress every 50 ms while it "starts", for `forMs`; then runs an instance that is ready at once. */
class TickingHost implements WorkerHost {
  readonly fixHint = 'Fix the ticking host (a test stand-in).';
  readonly states: WorkerState[] = [];
  constructor(private readonly mode: 'same-step' | 'new-steps', private readonly forMs: number) {}

  async start(request: StartRequest): Promise<HostedInstance> {
    const started = Date.now();
    let tick = 0;
    while (Date.now() - started < this.forMs) {
      tick++;
      const step = this.mode === 'same-step' ? 'waiting for a GPU' : `loading layer ${tick}`;
      request.progress(`${step} (${tick})`, step);
      await new Promise((r) => setTimeout(r, 50));
      if (request.signal.aborted) throw request.signal.reason;
    }
    let end!: (how: string) => void;
    const states = this.states;
    return {
      url: 'memory://ticking/api/chat',
      readinessTarget: 'memory://ticking/health',
      ended: new Promise<string>((r) => (end = r)),
      probe: async () => ({ kind: 'ready', healthEndpoint: false }),
      dial: async () => ({ url: 'memory://ticking/api/chat' }),
      terminate: () => end('terminated'),
      observe: (state) => states.push(state),
    };
  }
}

function poolWith(host: TickingHost, readyTimeoutSeconds: number) {
  const capabilities = { launches: true, fixedSet: false, gpus: false };
  const provider = defineProvider({
    name: 'ticking',
    summary: 'test stand-in',
    description: 'Ticking host for tests.',
    capabilities,
    settings: z.strictObject({ ...hostedWorkerFields }),
    example: {},
    required: { key: 'slots', hint: '{}' },
    maxWorkersText: '1',
    flags: [],
    resolve: (settings, pool) => ({ maxWorkers: pool.maxWorkers ?? 1, settings }),
    create: (context) => new HostedProvider({ name: 'ticking', capabilities, host, settings: context.settings }, context),
  });
  const restart = { maxStartFailures: 1, cooldownSeconds: 1 };
  return createPool({ provider: 'ticking', warm: 0, ticking: { readyTimeoutSeconds, restart } } as never, silentLogger, { registry: [...PROVIDERS, provider] });
}

describe('start-up progress steps', () => {
  it('does not take a clock ticking within one step for movement: the ready timeout still fires', async () => {
    const pool = poolWith(new TickingHost('same-step', 5000), 0.5);
    await pool.start();
    const heard: string[] = [];
    const err = await pool.acquire({ signal: never(), onWarmingUp: (m) => heard.push(m) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWorkersError);
    expect((err as Error).message).toMatch(/not ready within 0\.5 s of its last progress report \("waiting for a GPU"\)/);
    // The caller still heard the clock.
    expect(heard.filter((m) => /waiting for a GPU \(\d+\)/.test(m)).length).toBeGreaterThan(2);
    await pool.close();
  });

  it('counts a new step as movement, and tells the instance every state of its worker', async () => {
    const host = new TickingHost('new-steps', 1000);
    const pool = poolWith(host, 0.5);
    await pool.start();
    const lease = await pool.acquire({ signal: never() });
    lease.release();
    await pool.close();
    expect(host.states[0]).toBe('starting');
    expect(host.states).toEqual(expect.arrayContaining(['idle', 'busy', 'stopping']));
  });
});
