/**
 * The provider contract over the modal provider: the real `modal` SDK
 * against the control-plane stand-in (a STAND-IN for Modal), sandboxes
 * running our loopback worker, reached through connect tokens over TLS.
 */
import { expect } from 'vitest';
import { describeProviderContract } from '../pool/contract/provider-contract.js';
import { closeSocket, OUT_OF_MEMORY_REPO, openDialled, startModalTestEnv, type ModalTestEnv } from './harness.js';

let env: ModalTestEnv;
const tokens = new Set<string>();

describeProviderContract('modal', {
  timeoutMs: 60_000,
  async setup() {
    env = await startModalTestEnv();
    return {
      maxSlots: 1,
      async config({ workers, warm = 0 }) {
        return env.config({ workers, warm });
      },
      async broken() {
        const restart = { initialDelaySeconds: 0.05, maxDelaySeconds: 0.2, maxStartFailures: 3, cooldownSeconds: 1 };
        return {
          config: env.config({ workers: 1, modal: { hfRepo: OUT_OF_MEMORY_REPO, restart } }),
          failure: /failed to start 3 times in a row; the last time Kyutai's server in sandbox sb-\w+ exited with code 1\.\nIts last output:\n {2}\| torch\.OutOfMemoryError: CUDA out of memory\nCheck pool\.modal/,
        };
      },
      async kill(worker) {
        await env.standIn.kill(String(worker.details?.sandboxId));
      },
      async converse(dial) {
        const ws = await openDialled(dial);
        return { close: () => closeSocket(ws) };
      },
      async running() {
        return env.live();
      },
      checkDial(dial, worker) {
        // No public tunnel: Modal's connect-token endpoint, over TLS, with a credential of this lease's own.
        expect(dial.url).toMatch(/^wss:\/\/.+\/api\/chat$/);
        const token = dial.headers?.authorization;
        expect(token).toMatch(/^Bearer \S+$/);
        expect(tokens.has(token!)).toBe(false);
        tokens.add(token!);
        expect(worker.details).toMatchObject({ sandboxId: expect.stringMatching(/^sb-/), gpuType: 'L40S', access: 'connect token' });
        expect(JSON.stringify(worker)).not.toContain(token!.slice(7));
      },
    };
  },
  async teardown() {
    const sandboxes = env.standIn.sandboxes();
    await env.close();
    // Not one public tunnel was opened.
    expect(sandboxes.flatMap((s) => s.tunnels)).toEqual([]);
  },
});
