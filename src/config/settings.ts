/**
 * Every setting of `quillman serve`, from defaults ← config file ← environment
 * ← flags, validated once at start-up. One table drives the flags, the
 * environment variables and the README's configuration table, so they cannot
 * drift apart.
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { GatewaySettingsSchema } from '../gateway/config.js';
import { PoolConfigSchema, providerChoices } from '../pool/config.js';
import type { AnyProviderDefinition, ProviderFlag } from '../pool/provider.js';
import { PROVIDER_NAMES, PROVIDERS } from '../pool/registry.js';
import { ENGINE_NAMES } from '../engines/registry.js';
import { CascadeConfigSchema } from '../engines/cascade/config.js';
import { MoshiSettingsSchema } from '../kyutai/prepare.js';

/** Our workers' engines, and `moshi`: Kyutai's own server, set up and started by the gateway (src/kyutai). */
export const SERVE_ENGINES = [...ENGINE_NAMES, 'moshi'] as const;

export const EngineSettingsSchema = z
  .object({
    name: z.enum(SERVE_ENGINES).default('cascade'),
    loopback: z.object({ delayMs: z.number().min(80), textIntervalMs: z.number().min(0) }).partial().strict().default({}),
    /**
     * Passed on to the workers as given (they validate it again); checked here
     * too, so a bad --stt or --lm-url stops `serve` with the flag's name
     * instead of failing in every worker it starts.
     */
    cascade: z
      .record(z.string(), z.unknown())
      .default({})
      .superRefine((value, ctx) => {
        const result = CascadeConfigSchema.safeParse(value);
        if (!result.success) for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      }),
    moshi: MoshiSettingsSchema.default(MoshiSettingsSchema.parse({})),
  })
  .strict();

export const SettingsSchema = z
  .object({
    gateway: GatewaySettingsSchema.default(GatewaySettingsSchema.parse({})),
    pool: PoolConfigSchema,
    engine: EngineSettingsSchema.default(EngineSettingsSchema.parse({})),
  })
  .strict();

export type Settings = z.infer<typeof SettingsSchema>;

type Parse = (raw: string) => unknown;
const int: Parse = (raw) => (/^-?\d+$/.test(raw.trim()) ? Number(raw) : raw);
const num: Parse = (raw) => (raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw);
const list: Parse = (raw) => raw.split(',').map((s) => s.trim()).filter(Boolean);
const str: Parse = (raw) => raw;
/** Relative paths are taken from where the command runs, not from where a worker it starts might run. */
const dir: Parse = (raw) => (raw.trim() === '' ? raw : resolvePath(raw));

export interface SettingSpec {
  /** Dotted path into Settings. */
  path: string;
  flag: string;
  env: string;
  parse: Parse;
  description: string;
  /** Shown in docs when the default depends on other settings. */
  defaultText?: string;
  /** The only values the flag takes (commander checks them; the schema checks the variable). */
  choices?: readonly string[];
}

/** Where the cascade engine's settings sit in Settings. */
const CASCADE_PREFIX = 'engine.cascade.';
const CASCADE_DEFAULTS = CascadeConfigSchema.parse({});
const choices = (key: 'stt' | 'tts') => CascadeConfigSchema.shape[key].unwrap().options.join(', ');

/** The value at a dotted path ('a.b.c'), or undefined where any step is missing. */
export function valueAt(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), obj);
}

/** A cascade row: its default comes from the engine's own schema, so the docs cannot drift from it. */
function cascadeSetting(spec: Omit<SettingSpec, 'path'> & { key: string }): SettingSpec {
  const { key, ...rest } = spec;
  const value = valueAt(CASCADE_DEFAULTS, key);
  return { path: CASCADE_PREFIX + key, defaultText: value === undefined ? undefined : String(value), ...rest };
}

/**
 * The cascade engine's most used settings. `quillman serve` passes them to
 * the workers it starts; a standalone `quillman worker` takes the same flags
 * and variables (see cascadeSettingsFor). Everything else goes in the config
 * file under engine.cascade (docs/cascade.md lists it).
 */
export const CASCADE_SETTINGS: SettingSpec[] = [
  cascadeSetting({ key: 'openai.url', flag: '--lm-url <url>', env: 'QUILLMAN_LM_URL', parse: str, description: 'cascade: OpenAI-compatible endpoint to use instead of the local model (e.g. http://127.0.0.1:11434/v1)' }),
  cascadeSetting({ key: 'openai.apiKey', flag: '--lm-key <key>', env: 'QUILLMAN_LM_KEY', parse: str, description: 'cascade: API key for --lm-url (prefer the variable: flags show in `ps`)' }),
  cascadeSetting({ key: 'openai.model', flag: '--lm-model <name>', env: 'QUILLMAN_LM_MODEL', parse: str, description: 'cascade: model name asked of --lm-url' }),
  cascadeSetting({ key: 'llama.model', flag: '--gguf <name|file>', env: 'QUILLMAN_GGUF', parse: str, description: 'cascade: local language model: a name from `quillman models list`, or a .gguf file' }),
  cascadeSetting({ key: 'llama.threads', flag: '--llama-threads <n>', env: 'QUILLMAN_LLAMA_THREADS', parse: int, description: 'cascade: CPU threads of the local model (0: one per core less one, at most 8)' }),
  cascadeSetting({ key: 'stt', flag: '--stt <name>', env: 'QUILLMAN_STT', parse: str, description: `cascade: speech recogniser: ${choices('stt')}` }),
  cascadeSetting({ key: 'tts', flag: '--tts <name>', env: 'QUILLMAN_TTS', parse: str, description: `cascade: voice: ${choices('tts')}` }),
  cascadeSetting({ key: 'persona', flag: '--persona <text>', env: 'QUILLMAN_PERSONA', parse: str, description: "cascade: default persona (system prompt); a client's `persona` parameter replaces it", defaultText: 'a friendly voice assistant, 1–3 short spoken sentences' }),
  cascadeSetting({ key: 'cacheDir', flag: '--models-dir <dir>', env: 'QUILLMAN_CACHE_DIR', parse: dir, description: 'cascade: model cache (also used by `quillman models`)', defaultText: '~/.cache/quillman/models' }),
];

const PARSERS: Record<ProviderFlag['value'], Parse> = { int, number: num, list, string: str, path: dir };

/**
 * Each provider's own flags (its definition's `flags`), under pool.<provider>.
 * Defaults come from the provider's schema, so the docs cannot drift from it.
 */
export const PROVIDER_SETTINGS: SettingSpec[] = PROVIDERS.flatMap((provider: AnyProviderDefinition) => {
  const defaults = provider.settings.parse(provider.example);
  return provider.flags.map((flag) => {
    const required = valueAt(provider.example, flag.key) !== undefined;
    const value = required ? undefined : valueAt(defaults, flag.key);
    const defaultText = flag.defaultText ?? (value === undefined ? undefined : Array.isArray(value) ? value.join(',') : String(value));
    return { path: `pool.${provider.name}.${flag.key}`, flag: flag.flag, env: flag.env, parse: PARSERS[flag.value], description: `${provider.name}: ${flag.description}`, defaultText };
  });
});

export const SETTINGS: SettingSpec[] = [
  { path: 'gateway.port', flag: '--port <n>', env: 'QUILLMAN_PORT', parse: int, description: 'HTTP port of the gateway' },
  { path: 'gateway.host', flag: '--host <addr>', env: 'QUILLMAN_HOST', parse: str, description: 'address to listen on (0.0.0.0 to serve the network; the microphone then needs https)' },
  { path: 'engine.name', flag: '--engine <name>', env: 'QUILLMAN_ENGINE', parse: str, description: `engine: ${ENGINE_NAMES.join(', ')} (our workers), or moshi (Kyutai's server on this machine's GPUs, set up for you)`, choices: SERVE_ENGINES },
  { path: 'pool.provider', flag: '--provider <name>', env: 'QUILLMAN_PROVIDER', parse: str, description: `where workers come from: ${providerChoices(PROVIDERS).replaceAll('"', '')}`, choices: PROVIDER_NAMES },
  { path: 'pool.warm', flag: '--warm <n>', env: 'QUILLMAN_WARM', parse: int, description: 'workers kept started and ready while nobody talks' },
  { path: 'pool.maxWorkers', flag: '--max-workers <n>', env: 'QUILLMAN_MAX_WORKERS', parse: int, description: 'most workers at once (each holds its slots of conversations, one by default)', defaultText: PROVIDERS.map((p) => `${p.maxWorkersText} (${p.name})`).join('; ') },
  { path: 'pool.idleTimeoutSeconds', flag: '--idle-timeout <s>', env: 'QUILLMAN_IDLE_TIMEOUT', parse: num, description: 'idle time before a warm worker beyond --warm is stopped' },
  { path: 'pool.maxQueue', flag: '--max-queue <n>', env: 'QUILLMAN_MAX_QUEUE', parse: int, description: 'conversations that may wait for a worker; more are refused' },
  { path: 'gateway.maxConversationSeconds', flag: '--max-conversation <s>', env: 'QUILLMAN_MAX_CONVERSATION', parse: num, description: 'maximum conversation length; the client is warned before' },
  ...PROVIDER_SETTINGS,
  { path: 'gateway.tlsCert', flag: '--tls-cert <file>', env: 'QUILLMAN_TLS_CERT', parse: str, description: 'PEM certificate: serve https/wss (the microphone needs https beyond localhost)' },
  { path: 'gateway.tlsKey', flag: '--tls-key <file>', env: 'QUILLMAN_TLS_KEY', parse: str, description: 'PEM private key for --tls-cert' },
  { path: 'gateway.staticDir', flag: '--static-dir <dir>', env: 'QUILLMAN_STATIC_DIR', parse: str, description: 'built web app to serve', defaultText: 'dist/web' },
  // Access control and draining (docs/security.md).
  { path: 'gateway.apiKeys', flag: '--api-keys <keys>', env: 'QUILLMAN_API_KEYS', parse: list, description: 'comma-separated API keys; when set (or --token-secret), every conversation needs a key or a token (prefer the variable: flags show in `ps`)', defaultText: '—' },
  { path: 'gateway.tokenSecrets', flag: '--token-secret <secrets>', env: 'QUILLMAN_TOKEN_SECRET', parse: list, description: 'HMAC secret(s), 32+ characters, for conversation tokens minted by your site (`quillman token`); the first signs, all verify', defaultText: '—' },
  { path: 'gateway.allowedOrigins', flag: '--allowed-origins <origins>', env: 'QUILLMAN_ALLOWED_ORIGINS', parse: list, description: "web origins besides the gateway's own whose pages may open conversations (https://app.example.com), or *", defaultText: '—' },
  { path: 'gateway.trustedProxies', flag: '--trusted-proxies <addrs>', env: 'QUILLMAN_TRUSTED_PROXIES', parse: list, description: 'reverse proxies (IPs or CIDR ranges) whose X-Forwarded-For names the client for the per-address limits', defaultText: '—' },
  { path: 'gateway.maxConnectionsPerAddress', flag: '--max-connections-per-address <n>', env: 'QUILLMAN_MAX_CONNECTIONS_PER_ADDRESS', parse: int, description: 'open connections from one address (0: no limit)' },
  { path: 'gateway.maxQueuedPerAddress', flag: '--max-queued-per-address <n>', env: 'QUILLMAN_MAX_QUEUED_PER_ADDRESS', parse: int, description: 'conversations from one address waiting for a worker at once (0: no limit)' },
  { path: 'gateway.maxNewConversationsPerMinute', flag: '--conversations-per-minute <n>', env: 'QUILLMAN_CONVERSATIONS_PER_MINUTE', parse: int, description: 'new conversations one address may open per minute (0: no limit)' },
  { path: 'gateway.drainSeconds', flag: '--drain-seconds <s>', env: 'QUILLMAN_DRAIN_SECONDS', parse: num, description: 'on SIGTERM/SIGINT: how long live conversations may go on (warned with ending_soon) before they are closed' },
  ...CASCADE_SETTINGS,
  { path: 'engine.moshi.voice', flag: '--moshi-voice <name>', env: 'QUILLMAN_MOSHI_VOICE', parse: str, description: 'moshi: Kyutai voice, moshiko or moshika', defaultText: 'moshiko', choices: ['moshiko', 'moshika'] },
  { path: 'engine.moshi.quantization', flag: '--moshi-quantization <q>', env: 'QUILLMAN_MOSHI_QUANTIZATION', parse: str, description: 'moshi: weights: bf16 (24 GB GPUs), q8 (12 GB), or auto by the smallest GPU used', defaultText: 'auto', choices: ['auto', 'bf16', 'q8'] },
  { path: 'engine.moshi.device', flag: '--moshi-device <d>', env: 'QUILLMAN_MOSHI_DEVICE', parse: str, description: 'moshi: cuda; cpu only with a small --moshi-checkpoint (tests)', defaultText: 'cuda', choices: ['cuda', 'cpu'] },
  { path: 'engine.moshi.checkpoint', flag: '--moshi-checkpoint <dir>', env: 'QUILLMAN_MOSHI_CHECKPOINT', parse: dir, description: "moshi: a folder with config.json, Moshi and Mimi safetensors and tokenizer.model, instead of Kyutai's weights" },
];


export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SettingsError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the top level must be a mapping');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new SettingsError(`config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

/** Commander's camelCase key for a flag such as "--max-workers <n>". */
export function flagKey(flag: string): string {
  return flag
    .split(' ')[0]
    .replace(/^--/, '')
    .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export interface LoadSettingsInput {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Commander's parsed options (raw strings). */
  flags?: Record<string, unknown>;
  /** Fills defaults that depend on other settings (e.g. the worker command depends on the engine), before validation. */
  derive?: (raw: Record<string, unknown>) => void;
}

/**
 * A worker's cascade settings: its environment, under what the gateway that
 * started it handed down (QUILLMAN_ENGINE_SETTINGS, which already holds the
 * gateway's own environment and flags), under the worker's own flags.
 * Checked here so a bad value names its flag and variable.
 */
export function cascadeSettingsFor(input: { env?: NodeJS.ProcessEnv; inherited?: Record<string, unknown>; flags?: Record<string, unknown> }): Record<string, unknown> {
  const env = input.env ?? process.env;
  const fromEnv: Record<string, unknown> = {};
  const fromFlags: Record<string, unknown> = {};
  for (const spec of CASCADE_SETTINGS) {
    const key = spec.path.slice(CASCADE_PREFIX.length);
    const envValue = env[spec.env];
    if (envValue !== undefined && envValue !== '') setPath(fromEnv, key, spec.parse(envValue));
    const flagValue = input.flags?.[flagKey(spec.flag)];
    if (flagValue !== undefined) setPath(fromFlags, key, typeof flagValue === 'string' ? spec.parse(flagValue) : flagValue);
  }
  const merged: Record<string, unknown> = {};
  mergeDeep(merged, fromEnv);
  mergeDeep(merged, structuredClone(input.inherited ?? {}));
  mergeDeep(merged, fromFlags);
  const result = CascadeConfigSchema.safeParse(merged);
  if (!result.success) {
    throw new SettingsError(`invalid cascade settings:\n${result.error.issues.map((issue) => describeIssue(CASCADE_PREFIX + issue.path.join('.'), issue.message)).join('\n')}`);
  }
  return merged;
}

function describeIssue(path: string, message: string): string {
  const spec = SETTINGS.find((s) => s.path === path);
  const where = spec ? ` (${spec.flag.split(' ')[0]} / ${spec.env})` : '';
  return `  ${path || '(top level)'}${where}: ${message}`;
}

export function loadSettings(input: LoadSettingsInput = {}): Settings {
  const env = input.env ?? process.env;
  const raw: Record<string, unknown> = {};
  const file = input.configFile ?? env.QUILLMAN_CONFIG;
  if (file) mergeDeep(raw, readConfigFile(file));
  for (const spec of SETTINGS) {
    const value = env[spec.env];
    if (value !== undefined && value !== '') setPath(raw, spec.path, spec.parse(value));
  }
  for (const spec of SETTINGS) {
    const value = input.flags?.[flagKey(spec.flag)];
    if (value !== undefined) setPath(raw, spec.path, typeof value === 'string' ? spec.parse(value) : value);
  }
  input.derive?.(raw);
  const result = SettingsSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => describeIssue(issue.path.join('.'), issue.message));
    throw new SettingsError(`invalid settings:\n${lines.join('\n')}`);
  }
  return result.data;
}

function mergeDeep(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (value && typeof value === 'object' && !Array.isArray(value) && existing && typeof existing === 'object' && !Array.isArray(existing)) {
      mergeDeep(existing as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      target[key] = value;
    }
  }
}
