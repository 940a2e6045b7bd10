/**
 * Sampling settings travel as query parameters on the websocket URL, named as
 * Kyutai's Rust backend names them, so one URL works against our gateway and
 * against Kyutai's servers alike.
 *
 * Browser-safe: no Node APIs.
 */

export interface NumberParamSpec {
  kind: 'number' | 'integer';
  min: number;
  max: number;
  /** Kyutai web client's default; undefined means "server decides" (seeds). */
  default?: number;
  label: string;
}

export interface StringParamSpec {
  kind: 'string';
  maxLength: number;
  default?: string;
  label: string;
}

export type ParamSpec = NumberParamSpec | StringParamSpec;

/**
 * Ranges are the ones Kyutai's web client offers; values outside them are
 * rejected rather than clamped so a typo never silently changes behaviour.
 */
export const SAMPLING_PARAMS = {
  text_temperature: { kind: 'number', min: 0.2, max: 1.2, default: 0.7, label: 'Text temperature' },
  text_topk: { kind: 'integer', min: 10, max: 500, default: 25, label: 'Text top-k' },
  audio_temperature: { kind: 'number', min: 0.2, max: 1.2, default: 0.8, label: 'Audio temperature' },
  audio_topk: { kind: 'integer', min: 10, max: 500, default: 250, label: 'Audio top-k' },
  pad_mult: { kind: 'number', min: -4, max: 4, default: 0, label: 'Padding multiplier' },
  repetition_penalty: { kind: 'number', min: 1, max: 2, default: 1.0, label: 'Repetition penalty' },
  repetition_penalty_context: { kind: 'integer', min: 0, max: 200, default: 64, label: 'Repetition penalty context' },
  text_seed: { kind: 'integer', min: 0, max: 2 ** 32 - 1, label: 'Text seed' },
  audio_seed: { kind: 'integer', min: 0, max: 2 ** 32 - 1, label: 'Audio seed' },
  max_steps: { kind: 'integer', min: 1, max: 1_000_000, label: 'Maximum steps' },
  /** QuiLLMan's own: the persona / system prompt for engines with a language model. Kyutai's servers ignore it. */
  persona: { kind: 'string', maxLength: 4000, label: 'Persona' },
} as const satisfies Record<string, ParamSpec>;

export type SamplingParamName = keyof typeof SAMPLING_PARAMS;

export type SamplingParams = {
  -readonly [K in SamplingParamName]?: (typeof SAMPLING_PARAMS)[K] extends StringParamSpec ? string : number;
};

export interface ParamIssue {
  param: string;
  message: string;
}

export type ParseParamsResult =
  | { ok: true; params: SamplingParams; /** parameters we do not know, kept so they can be forwarded untouched */ passthrough: [string, string][] }
  | { ok: false; issues: ParamIssue[] };

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function parseOne(name: string, spec: ParamSpec, raw: string): { value?: number | string; issue?: ParamIssue } {
  if (spec.kind === 'string') {
    // Empty means unset, as samplingToQuery writes it: otherwise a parameter would not survive a round trip.
    if (raw === '') return {};
    if (raw.length > spec.maxLength) {
      return { issue: { param: name, message: `${name} is ${raw.length} characters; the limit is ${spec.maxLength}` } };
    }
    return { value: raw };
  }
  const trimmed = raw.trim();
  if (!NUMBER_RE.test(trimmed)) {
    return { issue: { param: name, message: `${name} must be a number, got ${JSON.stringify(raw.slice(0, 40))}` } };
  }
  const value = Number(trimmed);
  if (spec.kind === 'integer' && !Number.isInteger(value)) {
    return { issue: { param: name, message: `${name} must be a whole number, got ${trimmed}` } };
  }
  if (value < spec.min || value > spec.max) {
    return { issue: { param: name, message: `${name} must be between ${spec.min} and ${spec.max}, got ${trimmed}` } };
  }
  return { value };
}

/**
 * Validates the known parameters and keeps unknown ones aside: Kyutai's web
 * client adds its own (auth ids and the like) that a Kyutai worker may want.
 */
export function parseSamplingParams(query: URLSearchParams): ParseParamsResult {
  const params: Record<string, number | string> = {};
  const passthrough: [string, string][] = [];
  const issues: ParamIssue[] = [];
  const seen = new Set<string>();
  for (const [name, raw] of query) {
    // Own properties only: "valueOf" or "__proto__" in a query must not find Object's.
    const spec = Object.hasOwn(SAMPLING_PARAMS, name) ? (SAMPLING_PARAMS as Record<string, ParamSpec>)[name] : undefined;
    if (!spec) {
      passthrough.push([name, raw]);
      continue;
    }
    if (seen.has(name)) {
      issues.push({ param: name, message: `${name} is given more than once` });
      continue;
    }
    seen.add(name);
    const { value, issue } = parseOne(name, spec, raw);
    if (issue) issues.push(issue);
    else if (value !== undefined) params[name] = value;
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, params: params as SamplingParams, passthrough };
}

/** Formats issues as one line a user can act on. */
export function describeParamIssues(issues: ParamIssue[]): string {
  return `Invalid query parameters: ${issues.map((i) => i.message).join('; ')}. Fix the settings and reconnect.`;
}

/** Builds the query string for a websocket URL; unset values are left out. */
export function samplingToQuery(params: SamplingParams, passthrough: [string, string][] = []): URLSearchParams {
  const q = new URLSearchParams();
  for (const name of Object.keys(SAMPLING_PARAMS) as SamplingParamName[]) {
    const v = params[name];
    if (v !== undefined && v !== '') q.set(name, String(v));
  }
  for (const [k, v] of passthrough) q.append(k, v);
  return q;
}

/** A seed drawn the way Kyutai's client draws one per session. */
export function randomSeed(random: () => number = Math.random): number {
  return Math.floor(random() * 1_000_000);
}

/** Kyutai's client defaults, with fresh random seeds as that client draws them per session. */
export function defaultSamplingParams(random: () => number = Math.random): SamplingParams {
  const out: SamplingParams = {};
  for (const [name, spec] of Object.entries(SAMPLING_PARAMS) as [SamplingParamName, ParamSpec][]) {
    if (spec.kind !== 'string' && spec.default !== undefined) (out as Record<string, number>)[name] = spec.default;
  }
  out.text_seed = randomSeed(random);
  out.audio_seed = randomSeed(random);
  return out;
}
