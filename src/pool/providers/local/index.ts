/** The `local` provider: worker processes on this machine (process-host.ts), managed by HostedWorker. */
import { defineProvider } from '../../provider.js';
import { HostedProvider } from '../../worker/hosted-provider.js';
import { LocalProcessHost } from './process-host.js';
import { defaultLocalMaxWorkers, localSettingsSchema } from './settings.js';

const capabilities = { launches: true, fixedSet: false, gpus: true };

export const localProvider = defineProvider({
  name: 'local',
  summary: 'start workers here',
  description:
    'Starts worker processes on this machine from a command template (our `quillman worker`, or Kyutai\'s `moshi.server`), one port each, pinned to GPUs when a list is given; restarts crashed ones and stops idle ones.',
  capabilities,
  settings: localSettingsSchema,
  example: { command: 'worker --port {port}' },
  required: {
    key: 'command',
    hint: 'the command that starts one worker, e.g. "quillman worker --engine cascade --port {port}" or "python -m moshi.server --port {port}"',
  },
  maxWorkersText: '1, or one per GPU slot with --gpus',
  flags: [
    { key: 'command', flag: '--worker-command <template>', env: 'QUILLMAN_WORKER_COMMAND', value: 'string', description: 'command that starts one worker, with {port}', defaultText: "this CLI's `worker --engine <engine> --port {port}`" },
    { key: 'gpus', flag: '--gpus <ids>', env: 'QUILLMAN_GPUS', value: 'list', description: 'comma-separated GPU ids; each worker is pinned to one with CUDA_VISIBLE_DEVICES' },
    { key: 'basePort', flag: '--worker-base-port <n>', env: 'QUILLMAN_WORKER_BASE_PORT', value: 'int', description: 'first port tried for workers' },
    { key: 'readyTimeoutSeconds', flag: '--worker-ready-timeout <s>', env: 'QUILLMAN_WORKER_READY_TIMEOUT', value: 'number', description: 'how long a worker may take to load its model' },
  ],
  resolve(local, pool, issue) {
    const gpus = local.gpus?.length ? local.gpus : undefined;
    const gpuSlots = (gpus?.length ?? 0) * local.workersPerGpu;
    if (gpus && pool.maxWorkers !== undefined && pool.maxWorkers > gpuSlots) {
      issue(['maxWorkers'], `is ${pool.maxWorkers} but ${gpus.length} GPU(s) × workersPerGpu ${local.workersPerGpu} give room for ${gpuSlots}; lower it, list more GPUs or raise workersPerGpu`);
    }
    return { maxWorkers: pool.maxWorkers ?? defaultLocalMaxWorkers(local), settings: { ...local, gpus } };
  },
  create({ settings, log, events, pool }) {
    return new HostedProvider({ name: 'local', capabilities, host: new LocalProcessHost(settings, log), settings }, { settings, log, events, pool });
  },
});
