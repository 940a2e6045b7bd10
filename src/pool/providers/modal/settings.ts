/**
 * Settings of the Modal provider, `pool.modal`. Credentials are not among
 * them on purpose: they come only from Modal's own variables
 * (MODAL_TOKEN_ID / MODAL_TOKEN_SECRET) or its config file (~/.modal.toml),
 * so that they never end up in our config files or logs. See docs/modal.md.
 */
import { z } from 'zod';
import { MOSHI_VERSION } from '../../../kyutai/python-env.js';
import { envVars, hostedWorkerFields, seconds } from '../../settings-schema.js';

/** GPU types Modal accepts (its GPU guide); "H100!" pins an exact H100 where "H100" may be upgraded. */
export const MODAL_GPU_TYPES = ['T4', 'L4', 'A10', 'A10G', 'L40S', 'A100', 'A100-40GB', 'A100-80GB', 'H100', 'H100!', 'H200', 'B200'] as const;

/**
 * Dollars per GPU-hour, Modal's list prices as published by third parties in
 * May 2026 (H100 $0.001097/s). An estimate: CPU, memory, region multipliers
 * and discounts are not included. Users override it with `prices`.
 */
export const DEFAULT_GPU_PRICES: Record<string, number> = {
  T4: 0.59,
  L4: 0.8,
  A10: 1.1,
  A10G: 1.1,
  L40S: 1.95,
  A100: 2.1,
  'A100-40GB': 2.1,
  'A100-80GB': 2.5,
  H100: 3.95,
  'H100!': 3.95,
  H200: 4.54,
  B200: 6.25,
};

/** The port Kyutai's moshi.server listens on in the sandbox (its own default). */
export const MOSHI_PORT = 8998;

/** Where the weights volume is mounted in the sandbox; HF_HOME lives under it. */
export const VOLUME_MOUNT = '/cache';

const GPU_PATTERN = new RegExp(`^(${MODAL_GPU_TYPES.map((t) => t.replace(/[!]/g, '\\$&')).join('|')})(:[1-8])?$`);

const gpuType = z
  .string()
  .trim()
  .transform((s) => s.toUpperCase())
  .refine((s) => GPU_PATTERN.test(s), { error: `must be a Modal GPU type (${MODAL_GPU_TYPES.join(', ')}), optionally with ":n" for n GPUs, e.g. "L40S" or "A100-80GB:2"` });

/** One type, or an ordered list of fallbacks, as a list or a comma-separated string. */
const gpuList = z
  .union([z.string(), z.array(z.string())], { error: 'must be a GPU type like "L40S", or a list of them to try in order, like ["L40S", "A100-80GB"]' })
  .transform((v) => (typeof v === 'string' ? v.split(',') : v).map((s) => s.trim()).filter((s) => s !== ''))
  .pipe(
    z
      .array(gpuType)
      .min(1, 'names no GPU type; Moshi needs a GPU, e.g. "L40S"')
      .max(12)
      .refine((types) => new Set(types).size === types.length, 'lists the same GPU type twice'),
  );

const stringList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (typeof v === 'string' ? v.split(',') : v).map((s) => s.trim()).filter((s) => s !== ''));

/** Modal object names: letters, digits, dashes, dots and underscores, under 64 characters. */
const objectName = (what: string) =>
  z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,63}$/, `must be a Modal ${what} name: letters, digits, ".", "-" or "_", at most 63 characters`);

const tagValue = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9._-]{1,63}$/, 'must be letters, digits, ".", "-" or "_", at most 63 characters');

export const modalSettingsSchema = z
  .strictObject({
    /** The Modal app the sandboxes run under (created if missing); its name shows on Modal's dashboard and bill. */
    app: objectName('app').default('quillman'),
    /** Modal environment; default: MODAL_ENVIRONMENT, else the profile's, else Modal's default one. */
    environment: z.string().trim().min(1).optional(),
    /** GPU types to try in order: the next is asked for when no GPU of one could be had within gpuWaitSeconds. */
    gpu: gpuList.default(['L40S']),
    /** How long to wait for a GPU of one type before trying the next (Modal itself would wait 21 minutes). */
    gpuWaitSeconds: seconds(1200).default(120),
    /** A registry image with Kyutai's moshi installed, used as is; default: baseImage plus `pip install moshi==<moshiVersion>`. */
    image: z.string().trim().min(1).optional(),
    baseImage: z.string().trim().min(1).default('python:3.11-slim'),
    moshiVersion: z
      .string()
      .trim()
      .regex(/^[0-9][0-9A-Za-z.+-]*$/, 'must be a version of the moshi package, e.g. "0.2.13"')
      .default(MOSHI_VERSION),
    /** Named Modal Volume for Hugging Face's cache (HF_HOME), so that a new sandbox does not download the weights again. */
    volume: objectName('volume').default('quillman-moshi-weights'),
    /** Hugging Face repository of the model (moshi.server's --hf-repo), e.g. "kyutai/moshiko-pytorch-q8" for an L4. */
    hfRepo: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/, 'must be a Hugging Face repository like "kyutai/moshiko-pytorch-bf16"')
      .optional(),
    /** More arguments for moshi.server. */
    serverArgs: stringList.default([]),
    /** Regions the sandboxes may run in (Modal's region names, e.g. "us-east"); default: anywhere. */
    region: stringList.default([]),
    /** CPU cores and memory each sandbox asks for (Modal bills max(request, use)); the GPU does the model's work. */
    cpu: z.number().positive().max(64).default(2),
    memoryMiB: z.number().int().min(1024).max(262_144).default(16_384),
    /**
     * Addresses allowed to reach the sandboxes at all (CIDRs, e.g. the
     * gateway's public address "203.0.113.7/32"), on top of the connect
     * tokens; default: any address with a token.
     */
    allowFrom: stringList.default([]),
    /** Names of Modal Secrets whose variables the sandboxes get (e.g. one holding HF_TOKEN). */
    secrets: z.array(objectName('secret')).default([]),
    /** Variables for the sandboxes, beside HF_HOME. */
    env: envVars.default({}),
    /** A sandbox's longest life (Modal's `timeout`; at most 24 h): a safety net against one left running. */
    sandboxTimeoutSeconds: z.number().int().min(60).max(86_400, 'is in seconds and at most 86400 (Modal allows 24 h)').default(86_400),
    /**
     * Tag value that marks this gateway's sandboxes in the app: a restarted
     * gateway takes over those with its tag. Gateways sharing an app need
     * different values.
     */
    gatewayTag: tagValue.default('quillman'),
    /** Dollars per GPU-hour by type, over the built-in table (for the estimated cost in /metrics). */
    prices: z.record(gpuType, z.number().min(0).max(10_000, 'is in dollars per GPU-hour and at most 10000')).default({}),
    /** PEM file of extra certificate authorities to trust for sandbox connections (tests against a stand-in, a TLS-inspecting proxy). */
    caFile: z.string().trim().min(1).optional(),
    ...hostedWorkerFields,
    /** A sandbox holds one conversation: Kyutai's server serves one at a time. */
    slots: z.literal(1, { error: 'must be 1: a sandbox runs one Moshi, which holds one conversation' }).default(1),
    /** A first start downloads about 15 GB of weights into the volume. */
    readyTimeoutSeconds: seconds(86_400).default(1200),
  })
  .superRefine((s, ctx) => {
    if (s.image && s.baseImage !== 'python:3.11-slim') {
      ctx.addIssue({ code: 'custom', path: ['baseImage'], message: 'is not used when image is set: give one or the other' });
    }
  });

export type ModalSettings = z.output<typeof modalSettingsSchema>;

/** The hourly price of one sandbox of this GPU type ("A100-80GB:2" counts two). */
export function pricePerHour(gpu: string, overrides: Record<string, number>): number | undefined {
  const [type, count] = gpu.split(':');
  const unit = overrides[gpu] ?? overrides[type] ?? DEFAULT_GPU_PRICES[type];
  if (unit === undefined) return undefined;
  return overrides[gpu] !== undefined ? unit : unit * Number(count ?? 1);
}
