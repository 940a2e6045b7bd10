/**
 * Pieces of settings schema that several providers share. Durations are in
 * seconds; upper bounds catch values typed in milliseconds by mistake.
 */
import { z } from 'zod';

/** A sanity bound, not a capacity: one gateway relays hundreds of conversations (see docs/gateway.md). */
export const MAX_WORKERS_LIMIT = 4096;

/** Conversations one worker may hold at once; Kyutai's Rust server batches a few, nobody batches thousands. */
export const MAX_SLOTS = 256;

export const urlPath = z.string().regex(/^\/[^\s?#]*$/, 'must be a URL path starting with "/", e.g. "/health"');

export const seconds = (max: number) => z.number().positive().max(max, `is in seconds and at most ${max}`);

export const slots = z.number().int().min(1).max(MAX_SLOTS);

export const restartSchema = z
  .strictObject({
    /** Wait before the first restart of a worker that died; doubles with each failed start. */
    initialDelaySeconds: seconds(600).default(1),
    maxDelaySeconds: seconds(3600).default(30),
    /** Failed starts in a row (died or never ready) before the worker is reported down for good. */
    maxStartFailures: z.number().int().min(1).max(100).default(3),
    /** After a worker gave up, no new one is started for this long; callers get the error at once. */
    cooldownSeconds: z.number().min(0).max(86_400).default(60),
  })
  .superRefine((restart, ctx) => {
    if (restart.maxDelaySeconds < restart.initialDelaySeconds) {
      ctx.addIssue({ code: 'custom', path: ['maxDelaySeconds'], message: 'must not be below initialDelaySeconds' });
    }
  });

export type RestartSettings = z.output<typeof restartSchema>;

/**
 * The settings of every provider whose workers the pool launches (they go
 * to HostedWorker): spread into the provider's schema.
 */
export const hostedWorkerFields = {
  /** Conversations one worker holds at once. */
  slots: slots.default(1),
  /** Counted from the start, and again from each new progress report. */
  readyTimeoutSeconds: seconds(86_400).default(600),
  /** How long a released worker may stay busy tearing its conversation down before it is restarted. */
  resetTimeoutSeconds: seconds(3600).default(30),
  restart: restartSchema.prefault({}),
};

/** Environment variables for a worker: names checked, values turned into strings. */
export const envVars = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not a valid environment variable name'),
  z.union([z.string(), z.number(), z.boolean()], { error: 'must be a string or a number' }).transform(String),
);
