/**
 * The `modal` provider: one Modal GPU sandbox per worker running Kyutai's
 * moshi.server (modal-host.ts), managed by HostedWorker like any launched
 * worker. See docs/modal.md.
 */
import { defineProvider } from '../../provider.js';
import { HostedProvider } from '../../worker/hosted-provider.js';
import { ModalHost } from './modal-host.js';
import { modalSettingsSchema } from './settings.js';

const capabilities = { launches: true, fixedSet: false, gpus: true };

/** Without maxWorkers: one sandbox, the most a forgotten setting can cost. */
export const DEFAULT_MODAL_MAX_WORKERS = 1;

export const modalProvider = defineProvider({
  name: 'modal',
  summary: 'GPU sandboxes on Modal',
  description:
    "Runs Kyutai's moshi.server in one Modal GPU sandbox per worker (GPU types tried in order, weights cached on a Modal Volume), reached only through per-conversation connect tokens; scales to zero with `warm: 0`, takes over its sandboxes after a restart, and meters sandbox-seconds and estimated cost. Credentials from MODAL_TOKEN_ID/MODAL_TOKEN_SECRET or ~/.modal.toml. See docs/modal.md.",
  capabilities,
  settings: modalSettingsSchema,
  example: {},
  required: { key: 'app', hint: 'the Modal app your sandboxes run under, e.g. "quillman" (--modal-app quillman); see docs/modal.md' },
  maxWorkersText: `${DEFAULT_MODAL_MAX_WORKERS}`,
  engineLabel: 'Moshi on Modal GPUs',
  flags: [
    { key: 'app', flag: '--modal-app <name>', env: 'QUILLMAN_MODAL_APP', value: 'string', description: 'Modal app the sandboxes run under (created if missing)' },
    { key: 'environment', flag: '--modal-environment <name>', env: 'QUILLMAN_MODAL_ENVIRONMENT', value: 'string', description: 'Modal environment', defaultText: "MODAL_ENVIRONMENT, else the profile's" },
    { key: 'gpu', flag: '--modal-gpu <types>', env: 'QUILLMAN_MODAL_GPU', value: 'list', description: 'GPU types to try in order, e.g. L40S,A100-80GB' },
    { key: 'gpuWaitSeconds', flag: '--modal-gpu-wait <s>', env: 'QUILLMAN_MODAL_GPU_WAIT', value: 'number', description: 'wait for a GPU of one type before trying the next' },
    { key: 'image', flag: '--modal-image <tag>', env: 'QUILLMAN_MODAL_IMAGE', value: 'string', description: 'registry image with moshi installed, used as is', defaultText: 'python:3.11-slim + pip install moshi' },
    { key: 'volume', flag: '--modal-volume <name>', env: 'QUILLMAN_MODAL_VOLUME', value: 'string', description: 'Modal Volume caching the model weights' },
    { key: 'hfRepo', flag: '--modal-hf-repo <repo>', env: 'QUILLMAN_MODAL_HF_REPO', value: 'string', description: 'model repository for moshi.server, e.g. kyutai/moshiko-pytorch-q8', defaultText: "moshi.server's" },
    { key: 'region', flag: '--modal-region <names>', env: 'QUILLMAN_MODAL_REGION', value: 'list', description: 'regions the sandboxes may run in', defaultText: 'any' },
    { key: 'readyTimeoutSeconds', flag: '--modal-ready-timeout <s>', env: 'QUILLMAN_MODAL_READY_TIMEOUT', value: 'number', description: 'time a sandbox may take to load the model, from its last progress' },
    { key: 'sandboxTimeoutSeconds', flag: '--modal-sandbox-timeout <s>', env: 'QUILLMAN_MODAL_SANDBOX_TIMEOUT', value: 'int', description: "a sandbox's longest life (Modal ends it then)" },
    { key: 'gatewayTag', flag: '--modal-gateway-tag <tag>', env: 'QUILLMAN_MODAL_GATEWAY_TAG', value: 'string', description: "marks this gateway's sandboxes; a restart takes over those with its tag" },
  ],
  resolve: (settings, pool) => ({ maxWorkers: pool.maxWorkers ?? DEFAULT_MODAL_MAX_WORKERS, settings }),
  create(context) {
    const { settings, log, pool } = context;
    return new HostedProvider({ name: 'modal', capabilities, host: new ModalHost(settings, log, { warm: pool.warm }), settings }, context);
  },
});
