/**
 * Pool settings, checked once at start-up so that a typo fails with the
 * setting's name and a fix, instead of surfacing later as a worker that never
 * starts. The schema is built from the provider registry: `provider` is one
 * of its names, and each provider's settings block sits under its name
 * (`pool.local`, `pool.remote`). See docs/pool.md for the defaults.
 *
 * Parsing is idempotent: a parsed config parses again to itself, so callers
 * may embed `PoolConfigSchema` in a larger schema and still hand the result
 * to createPool().
 */
import { z } from 'zod';
import type { AnyProviderDefinition, IssueReporter, ProviderDefinition } from './provider.js';
import { PROVIDERS, type ProviderName } from './registry.js';
import { MAX_WORKERS_LIMIT, seconds } from './settings-schema.js';

interface CommonPoolConfig {
  /** Workers kept started and ready while nobody talks (providers that launch workers). */
  warm: number;
  maxWorkers: number;
  idleTimeoutSeconds: number;
  maxQueue: number;
}

type Definition = (typeof PROVIDERS)[number];

type ConfigOf<D> = D extends ProviderDefinition<infer Name, infer Schema> ? CommonPoolConfig & { provider: Name } & { [K in Name]: z.output<Schema> } : never;

/** Validated settings: the pool's own, the provider's name, and that provider's settings block. */
export type PoolConfig = ConfigOf<Definition>;

export type PoolConfigInput = {
  provider?: ProviderName;
  warm?: number;
  maxWorkers?: number;
  idleTimeoutSeconds?: number;
  maxQueue?: number;
} & { [D in Definition as D['name']]?: z.input<D['settings']> };

const COMMON_SHAPE = {
  warm: z.number().int().min(0).max(MAX_WORKERS_LIMIT).default(1),
  maxWorkers: z.number().int().min(1).max(MAX_WORKERS_LIMIT).optional(),
  idleTimeoutSeconds: seconds(7 * 86_400).default(300),
  maxQueue: z.number().int().min(0).max(10_000).default(16),
};

type Parsed = { provider: string; warm: number; maxWorkers?: number; idleTimeoutSeconds: number; maxQueue: number } & Record<string, unknown>;

/** `"local" (start workers here) or "remote" (use running workers by URL)`. */
export function providerChoices(registry: readonly AnyProviderDefinition[]): string {
  const items = registry.map((p) => `"${p.name}" (${p.summary})`);
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} or ${items.at(-1)}` : items[0];
}

interface BuiltSchema {
  schema: z.ZodType<unknown>;
  base: z.ZodObject;
}

function build(registry: readonly AnyProviderDefinition[]): BuiltSchema {
  if (!registry.length) throw new Error('the provider registry is empty');
  const names = registry.map((p) => p.name);
  for (const name of names) {
    if (name in COMMON_SHAPE || name === 'provider' || names.indexOf(name) !== names.lastIndexOf(name)) {
      throw new Error(`provider name "${name}" clashes with a pool setting or another provider`);
    }
  }
  const base = z.strictObject({
    provider: z.enum(names as [string, ...string[]], { error: `must be ${providerChoices(registry)}` }).default(names[0]),
    ...COMMON_SHAPE,
    ...Object.fromEntries(registry.map((p) => [p.name, (p.settings as z.ZodType).optional()])),
  });
  const definitionOf = (c: Parsed) => registry.find((p) => p.name === c.provider)!;

  const check = (c: Parsed, ctx: z.RefinementCtx) => {
    const issue: IssueReporter = (path, message) => ctx.addIssue({ code: 'custom', path, message });
    const provider = definitionOf(c);
    const block = c[provider.name];
    if (block === undefined) {
      issue([provider.name, ...provider.required.key.split('.')], `is required when provider is "${provider.name}": ${provider.required.hint}`);
      return;
    }
    const { maxWorkers } = provider.resolve(block, { warm: c.warm, maxWorkers: c.maxWorkers }, issue);
    if (provider.capabilities.launches && c.warm > maxWorkers) {
      issue(['warm'], `is ${c.warm} but at most ${maxWorkers} worker(s) may run (maxWorkers); lower warm or raise maxWorkers`);
    }
  };

  const resolve = (c: Parsed) => {
    const provider = definitionOf(c);
    const { maxWorkers, settings } = provider.resolve(c[provider.name], { warm: c.warm, maxWorkers: c.maxWorkers }, () => undefined);
    return { provider: provider.name, warm: c.warm, maxWorkers, idleTimeoutSeconds: c.idleTimeoutSeconds, maxQueue: c.maxQueue, [provider.name]: settings };
  };

  return { base, schema: (base as unknown as z.ZodType<Parsed>).superRefine(check).transform(resolve) };
}

const built = new WeakMap<readonly AnyProviderDefinition[], BuiltSchema>();

function schemaFor(registry: readonly AnyProviderDefinition[]): BuiltSchema {
  let entry = built.get(registry);
  if (!entry) built.set(registry, (entry = build(registry)));
  return entry;
}

/** The pool settings of the built-in providers, for embedding in the whole settings schema. */
export const PoolConfigSchema = schemaFor(PROVIDERS).schema as z.ZodType<PoolConfig, PoolConfigInput>;

export class PoolConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid pool settings:\n${problems.map((p) => `  - ${p}`).join('\n')}\nFix them in the configuration (or the matching command-line flags) and start again.`);
    this.name = 'PoolConfigError';
  }
}

/** The keys of the object schema at `path` (through optional, default and pipe wrappers), for "known settings are …". */
function knownKeysAt(schema: z.ZodType, path: PropertyKey[]): string[] | undefined {
  let node: unknown = schema;
  for (const key of [...path, undefined]) {
    for (let depth = 0; depth < 8 && node && !(node instanceof z.ZodObject); depth++) {
      const def = (node as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      node = def?.innerType ?? def?.in;
    }
    if (!(node instanceof z.ZodObject)) return undefined;
    if (key === undefined) return Object.keys(node.shape);
    node = node.shape[String(key)];
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue, label: string, base: z.ZodObject): string {
  const path = issue.path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${String(key)}`), label);
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(base, issue.path);
    return `${path}: unknown setting(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}${known ? `; known settings are ${known.join(', ')}` : ''}`;
  }
  return `${path}: ${issue.message}`;
}

/**
 * Validates pool settings and fills in defaults; throws PoolConfigError
 * listing every problem. `registry` replaces the built-in providers (tests
 * register stand-ins this way).
 */
export function parsePoolConfig(input: unknown, label = 'pool', registry: readonly AnyProviderDefinition[] = PROVIDERS): PoolConfig {
  const { schema, base } = schemaFor(registry);
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data as PoolConfig;
  throw new PoolConfigError(result.error.issues.map((issue) => describeIssue(issue, label, base)));
}
