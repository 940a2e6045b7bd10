/** The provider contract over the local provider: real `quillman worker --engine loopback` processes. */
import { expect } from 'vitest';
import { closeConversation, basePortForFile, expectNoProcessesLeft, localConfig, newMarker, nodeCommand, openConversation, processesWithMarker } from '../helpers.js';
import { describeProviderContract } from './provider-contract.js';

const marker = newMarker();
/** A worker command that dies at start-up the way a GPU worker does when the card is full. */
const OUT_OF_MEMORY = nodeCommand('-e', `"console.error('torch.OutOfMemoryError: CUDA out of memory'); process.exit(1)" -- --port {port}`);

describeProviderContract('local', {
  async setup() {
    return {
      maxSlots: 1,
      async config({ workers, slots = 1, warm = 0 }) {
        return localConfig({ maxWorkers: workers, warm, local: { basePort: basePortForFile(60), slots } }, marker);
      },
      async broken() {
        const restart = { initialDelaySeconds: 0.05, maxDelaySeconds: 0.2, maxStartFailures: 3, cooldownSeconds: 1 };
        return {
          config: localConfig({ maxWorkers: 1, warm: 0, local: { basePort: basePortForFile(60), command: OUT_OF_MEMORY, restart } }, marker),
          failure: /the last time its process exited with code 1\.\nIts last output:\n {2}\| torch\.OutOfMemoryError: CUDA out of memory\nFix the worker command/,
        };
      },
      async kill(worker) {
        process.kill(worker.pid!, 'SIGKILL');
      },
      async converse(dial) {
        const socket = await openConversation(dial.url, dial.headers);
        return { close: () => closeConversation(socket) };
      },
      async running() {
        return processesWithMarker(marker).map(String);
      },
      checkDial(dial, worker) {
        expect(dial).toEqual({ url: worker.url });
      },
    };
  },
  async teardown() {
    await expectNoProcessesLeft(marker);
  },
});
