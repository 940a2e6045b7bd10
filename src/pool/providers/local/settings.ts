/** Settings of the local provider, `pool.local`. See docs/pool.md for why each default is what it is. */
import { z } from 'zod';
import { envVars, hostedWorkerFields, seconds, urlPath } from '../../settings-schema.js';
import { COMMAND_PLACEHOLDERS, splitCommand, unknownPlaceholders } from './command-line.js';

/**
 * Without a GPU list the pool cannot tell how many model instances the
 * machine holds; one is the only number that never overcommits it (two Moshi
 * instances do not fit a 24 GB card, and two CPU conversations sharing the
 * cores both stop being real-time). Queueing is better than stuttering.
 */
export const DEFAULT_LOCAL_MAX_WORKERS = 1;

const command = z
  .string({ error: 'must be the command line that starts one worker, e.g. "quillman worker --engine cascade --port {port}"' })
  .trim()
  .superRefine((value, ctx) => {
    try {
      splitCommand(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `${(err as Error).message}. Quote arguments with '…' or "…"` });
      return;
    }
    if (!value.includes('{port}')) {
      ctx.addIssue({ code: 'custom', message: `must contain {port} where the worker's port goes, e.g. "${value} --port {port}"` });
    }
    const unknown = unknownPlaceholders(value);
    if (unknown.length) {
      ctx.addIssue({
        code: 'custom',
        message: `has unknown placeholder(s) ${unknown.map((p) => `{${p}}`).join(', ')}; the pool fills in ${COMMAND_PLACEHOLDERS.map((p) => `{${p}}`).join(' and ')}`,
      });
    }
  });

const gpuList = z
  .union([z.string(), z.array(z.union([z.string(), z.number().int().min(0)]))], {
    error: 'must be a list of GPU ids like [0, 1] or a string like "0,1"',
  })
  .transform((value) => (typeof value === 'string' ? value.split(',') : value).map((id) => String(id).trim()).filter((id) => id !== ''))
  .pipe(
    z
      .array(z.string().regex(/^[^,\s]+$/, 'a GPU id is an index like 0 or a UUID like GPU-5f3c…, without spaces'))
      .max(64)
      .refine((ids) => new Set(ids).size === ids.length, 'lists the same GPU twice; use workersPerGpu to run several workers on one GPU'),
  );

export const localSettingsSchema = z.strictObject({
  command,
  host: z.string().trim().min(1).default('127.0.0.1'),
  basePort: z.number().int().min(1).max(65_535).default(9100),
  gpus: gpuList.optional(),
  workersPerGpu: z.number().int().min(1).max(16).default(1),
  ...hostedWorkerFields,
  /** Between SIGTERM and SIGKILL. */
  stopGraceSeconds: seconds(600).default(10),
  healthPath: urlPath.default('/health'),
  chatPath: urlPath.default('/api/chat'),
  env: envVars.default({}),
  cwd: z.string().min(1).optional(),
});

export type LocalSettings = z.output<typeof localSettingsSchema>;

/** Without maxWorkers: one worker per GPU slot, or DEFAULT_LOCAL_MAX_WORKERS where no GPUs are listed. */
export function defaultLocalMaxWorkers(local: { gpus?: readonly unknown[]; workersPerGpu: number }): number {
  const gpus = local.gpus?.length ?? 0;
  return gpus ? gpus * local.workersPerGpu : DEFAULT_LOCAL_MAX_WORKERS;
}
