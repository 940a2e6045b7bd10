/**
 * Pool settings, checked once at start-up so that a typo fails with the
 * setting's name and a fix, instead of surfacing later as a worker that never
 * starts. Durations are in seconds; upper bounds catch values typed in
 * milliseconds by mistake. See docs/pool.md for why each default is what it is.
 *
 * Parsing is idempotent: a parsed config parses again to itself, so callers
 * may embed `PoolConfigSchema` in a larger schema and still hand the result
 * to createPool().
 */
import { z } from 'zod';
import { COMMAND_PLACEHOLDERS, splitCommand, unknownPlaceholders } from './providers/command-line.js';
import { toChatUrl } from './urls.js';

/**
 * Without a GPU list the pool cannot tell how many model instances the
 * machine holds; one is the only number that never overcommits it (two Moshi
 * instances do not fit a 24 GB card, and two CPU conversations sharing the
 * cores both stop being real-time). Queueing is better than stuttering.
 */
export const DEFAULT_LOCAL_MAX_WORKERS = 1;

/** A sanity bound, not a capacity: one gateway relays hundreds of conversations (see docs/gateway.md). */
const MAX_WORKERS_LIMIT = 4096;

const urlPath = z.string().regex(/^\/[^\s?#]*$/, 'must be a URL path starting with "/", e.g. "/health"');
const seconds = (max: number) => z.number().positive().max(max, `is in seconds and at most ${max}`);

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

const envVars = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not a valid environment variable name'),
  z.union([z.string(), z.number(), z.boolean()], { error: 'must be a string or a number' }).transform(String),
);

const restartSchema = z.strictObject({
  /** Wait before the first restart of a worker that died; doubles with each failed start. */
  initialDelaySeconds: seconds(600).default(1),
  maxDelaySeconds: seconds(3600).default(30),
  /** Failed starts in a row (died or never ready) before the worker is reported down for good. */
  maxStartFailures: z.number().int().min(1).max(100).default(3),
  /** After a worker gave up, no new one is started for this long; callers get the error at once. */
  cooldownSeconds: z.number().min(0).max(86_400).default(60),
});

const localSchema = z.strictObject({
  command,
  host: z.string().trim().min(1).default('127.0.0.1'),
  basePort: z.number().int().min(1).max(65_535).default(9100),
  gpus: gpuList.optional(),
  workersPerGpu: z.number().int().min(1).max(16).default(1),
  readyTimeoutSeconds: seconds(86_400).default(600),
  /** How long a released worker may stay busy tearing its conversation down before it is restarted. */
  resetTimeoutSeconds: seconds(3600).default(30),
  /** Between SIGTERM and SIGKILL. */
  stopGraceSeconds: seconds(600).default(10),
  healthPath: urlPath.default('/health'),
  chatPath: urlPath.default('/api/chat'),
  env: envVars.default({}),
  cwd: z.string().min(1).optional(),
  restart: restartSchema.prefault({}),
});

const remoteSchema = z.strictObject({
  urls: z
    .array(
      z.string().superRefine((value, ctx) => {
        try {
          toChatUrl(value, '/api/chat');
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
    )
    .min(1, 'list at least one worker, e.g. ["ws://10.0.0.5:8998"]; list a URL once per conversation it can hold at a time')
    .max(MAX_WORKERS_LIMIT),
  healthIntervalSeconds: seconds(3600).default(10),
  healthTimeoutSeconds: seconds(600).default(5),
  healthPath: urlPath.default('/health'),
  chatPath: urlPath.default('/api/chat'),
});

const baseSchema = z.strictObject({
  provider: z.enum(['local', 'remote'], { error: 'must be "local" (start workers here) or "remote" (use running workers by URL)' }).default('local'),
  warm: z.number().int().min(0).max(MAX_WORKERS_LIMIT).default(1),
  maxWorkers: z.number().int().min(1).max(MAX_WORKERS_LIMIT).optional(),
  idleTimeoutSeconds: seconds(7 * 86_400).default(300),
  maxQueue: z.number().int().min(0).max(10_000).default(16),
  local: localSchema.optional(),
  remote: remoteSchema.optional(),
});

export type LocalPoolConfig = z.output<typeof localSchema>;
export type RemotePoolConfig = z.output<typeof remoteSchema>;
interface CommonPoolConfig {
  /** Workers kept started and ready while nobody talks (local only). */
  warm: number;
  maxWorkers: number;
  idleTimeoutSeconds: number;
  maxQueue: number;
}
export type PoolConfig = (CommonPoolConfig & { provider: 'local'; local: LocalPoolConfig }) | (CommonPoolConfig & { provider: 'remote'; remote: RemotePoolConfig });

type ParsedBase = z.output<typeof baseSchema>;

function checkConsistency(c: ParsedBase, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (c.provider === 'local') {
    if (!c.local) {
      issue(['local', 'command'], 'is required when provider is "local": the command that starts one worker, e.g. "quillman worker --engine cascade --port {port}" or "python -m moshi.server --port {port}"');
      return;
    }
    const gpus = c.local.gpus ?? [];
    const gpuSlots = gpus.length * c.local.workersPerGpu;
    if (gpus.length && c.maxWorkers !== undefined && c.maxWorkers > gpuSlots) {
      issue(['maxWorkers'], `is ${c.maxWorkers} but ${gpus.length} GPU(s) × workersPerGpu ${c.local.workersPerGpu} give room for ${gpuSlots}; lower it, list more GPUs or raise workersPerGpu`);
    }
    const maxWorkers = c.maxWorkers ?? defaultLocalMaxWorkers(c.local);
    if (c.warm > maxWorkers) issue(['warm'], `is ${c.warm} but at most ${maxWorkers} worker(s) may run (maxWorkers); lower warm or raise maxWorkers`);
    if (c.local.restart.maxDelaySeconds < c.local.restart.initialDelaySeconds) {
      issue(['local', 'restart', 'maxDelaySeconds'], 'must not be below initialDelaySeconds');
    }
  } else {
    if (!c.remote) {
      issue(['remote', 'urls'], 'is required when provider is "remote": the workers\' addresses, e.g. ["ws://10.0.0.5:8998"]');
      return;
    }
    if (c.maxWorkers !== undefined && c.maxWorkers !== c.remote.urls.length) {
      issue(['maxWorkers'], `is ${c.maxWorkers} but remote.urls lists ${c.remote.urls.length} worker(s); with remote workers the list decides: remove maxWorkers, or list a URL once per conversation it can hold`);
    }
  }
}

/** Without maxWorkers: one worker per GPU slot, or DEFAULT_LOCAL_MAX_WORKERS where no GPUs are listed. */
function defaultLocalMaxWorkers(local: { gpus?: readonly unknown[]; workersPerGpu: number }): number {
  const gpus = local.gpus?.length ?? 0;
  return gpus ? gpus * local.workersPerGpu : DEFAULT_LOCAL_MAX_WORKERS;
}

function resolve(c: ParsedBase): PoolConfig {
  const common = { warm: c.warm, idleTimeoutSeconds: c.idleTimeoutSeconds, maxQueue: c.maxQueue };
  if (c.provider === 'local') {
    const local = c.local!;
    const gpus = local.gpus?.length ? local.gpus : undefined;
    const maxWorkers = c.maxWorkers ?? defaultLocalMaxWorkers(local);
    return { provider: 'local', ...common, maxWorkers, local: { ...local, gpus } };
  }
  const remote = c.remote!;
  const urls = remote.urls.map((url) => toChatUrl(url, remote.chatPath));
  return { provider: 'remote', ...common, maxWorkers: urls.length, remote: { ...remote, urls } };
}

export const PoolConfigSchema = baseSchema.superRefine(checkConsistency).transform(resolve);
export type PoolConfigInput = z.input<typeof PoolConfigSchema>;

export class PoolConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid pool settings:\n${problems.map((p) => `  - ${p}`).join('\n')}\nFix them in the configuration (or the matching command-line flags) and start again.`);
    this.name = 'PoolConfigError';
  }
}

const KNOWN_KEYS: Record<string, string[]> = {
  '': Object.keys(baseSchema.shape),
  local: Object.keys(localSchema.shape),
  remote: Object.keys(remoteSchema.shape),
  'local.restart': Object.keys(restartSchema.shape),
};

function describeIssue(issue: z.core.$ZodIssue, label: string): string {
  const path = issue.path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${String(key)}`), label);
  if (issue.code === 'unrecognized_keys') {
    const known = KNOWN_KEYS[issue.path.join('.')];
    return `${path}: unknown setting(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}${known ? `; known settings are ${known.join(', ')}` : ''}`;
  }
  return `${path}: ${issue.message}`;
}

/** Validates pool settings and fills in defaults; throws PoolConfigError listing every problem. */
export function parsePoolConfig(input: unknown, label = 'pool'): PoolConfig {
  const result = PoolConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new PoolConfigError(result.error.issues.map((issue) => describeIssue(issue, label)));
}
