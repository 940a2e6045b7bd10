/** The provider contract over the remote provider: real worker processes the test starts, reached by URL. */
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import type { PoolConfigInput } from '../../../src/pool/index.js';
import { freePort } from '../../helpers/net.js';
import { MARKER_VARIABLE } from '../../helpers/processes.js';
import { closeConversation, expectNoProcessesLeft, loopbackWorkerArgv, newMarker, openConversation, waitFor } from '../helpers.js';
import { describeProviderContract } from './provider-contract.js';

const marker = newMarker();
/** The worker processes behind each chat URL. */
const workers = new Map<string, ChildProcess>();

async function startWorker(): Promise<string> {
  const port = await freePort();
  const [command, ...args] = loopbackWorkerArgv(port);
  const child = spawn(command, args, { stdio: 'ignore', env: { ...process.env, [MARKER_VARIABLE]: marker } });
  const url = `ws://127.0.0.1:${port}/api/chat`;
  workers.set(url, child);
  await waitFor(`the worker on port ${port}`, () => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false));
  return url;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Each worker gets its own header, to show that dial information is per worker and reaches the gateway. */
const headerFor = (url: string) => ({ 'x-worker-key': `key-${new URL(url).port}` });

describeProviderContract('remote', {
  async setup() {
    return {
      maxSlots: 1,
      async config({ workers: count, slots = 1 }) {
        const urls = await Promise.all(Array.from({ length: count }, startWorker));
        return { provider: 'remote', remote: { urls: urls.map((url) => ({ url, slots, headers: headerFor(url) })), healthIntervalSeconds: 0.2, healthTimeoutSeconds: 2 } } as PoolConfigInput;
      },
      async broken() {
        const port = await freePort();
        return {
          config: { provider: 'remote', remote: { urls: [`ws://127.0.0.1:${port}`], healthIntervalSeconds: 0.2 } },
          failure: new RegExp(`^No worker is reachable:\\n {2}remote-1 \\(ws://127\\.0\\.0\\.1:${port}/api/chat\\): .*connection refused`),
        };
      },
      async kill(worker) {
        await stop(workers.get(worker.url)!);
      },
      async converse(dial) {
        const socket = await openConversation(dial.url, dial.headers);
        return { close: () => closeConversation(socket) };
      },
      // The remote provider starts nothing of its own.
      async running() {
        return [];
      },
      checkDial(dial, worker) {
        expect(dial).toEqual({ url: worker.url, headers: headerFor(worker.url) });
      },
    };
  },
  async teardown() {
    await Promise.all([...workers.values()].map(stop));
    await expectNoProcessesLeft(marker);
  },
});
