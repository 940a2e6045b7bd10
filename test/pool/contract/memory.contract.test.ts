/** The provider contract over the in-memory host (a stand-in): the pool and HostedWorker without processes. */
import { expect } from 'vitest';
import type { PoolConfigInput } from '../../../src/pool/index.js';
import { PROVIDERS } from '../../../src/pool/registry.js';
import { MemoryHost, memoryProvider } from './memory-host.js';
import { describeProviderContract } from './provider-contract.js';

const hosts: MemoryHost[] = [];
let current = new MemoryHost();
const registry = [...PROVIDERS, memoryProvider(() => current)];
const usedTokens = new Set<string>();

const memoryConfig = (settings: Record<string, unknown>, pool: Record<string, unknown>) => ({ provider: 'memory', ...pool, memory: settings }) as unknown as PoolConfigInput;

function instanceAt(url: string) {
  const instance = hosts.map((h) => h.instanceOf(url)).find(Boolean);
  if (!instance) throw new Error(`no memory instance at ${url}`);
  return instance;
}

describeProviderContract('memory', {
  async setup() {
    return {
      registry,
      maxSlots: 4,
      async config({ workers, slots = 1, warm = 0 }) {
        hosts.push((current = new MemoryHost()));
        return memoryConfig({ slots }, { maxWorkers: workers, warm });
      },
      async broken() {
        hosts.push((current = new MemoryHost({ crashingStarts: Infinity, crashOutput: ['loading', 'torch.OutOfMemoryError: CUDA out of memory'] })));
        const restart = { initialDelaySeconds: 0.05, maxDelaySeconds: 0.2, maxStartFailures: 3, cooldownSeconds: 1 };
        return { config: memoryConfig({ restart }, { maxWorkers: 1, warm: 0 }), failure: /\| torch\.OutOfMemoryError: CUDA out of memory/ };
      },
      async kill(worker) {
        instanceAt(worker.url).kill('it was killed by SIGKILL');
      },
      async converse(dial) {
        const instance = instanceAt(dial.url);
        if (!instance.running) throw new Error('refused: not running');
        instance.conversations++;
        return { close: async () => instance.endConversation() };
      },
      async running() {
        return hosts.flatMap((h) => [...h.live].map((i) => i.url));
      },
      checkDial(dial) {
        // A fresh credential for every lease.
        const token = dial.headers?.authorization;
        expect(token).toMatch(/^Bearer memory-\d+\.\d+\.\d+$/);
        expect(usedTokens.has(token!)).toBe(false);
        usedTokens.add(token!);
      },
    };
  },
});
