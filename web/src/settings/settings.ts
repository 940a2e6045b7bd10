/**
 * What the user sets before connecting: sampling parameters (sent as query
 * parameters, named as Kyutai's servers name them), the persona, and the
 * server address. Kept in localStorage as the user typed them.
 */
import { SAMPLING_PARAMS, parseSamplingParams, randomSeed, samplingToQuery, type ParamIssue, type SamplingParamName } from '../../../src/protocol/index.js';

export interface Settings {
  /** As typed; '' means the server's (or Kyutai's) default. */
  params: Partial<Record<SamplingParamName, string>>;
  serverAddress: string;
}

const KEY = 'quillman.settings.v1';

export function defaultSettings(): Settings {
  const params: Settings['params'] = {};
  for (const [name, spec] of Object.entries(SAMPLING_PARAMS) as [SamplingParamName, (typeof SAMPLING_PARAMS)[SamplingParamName]][]) {
    params[name] = 'default' in spec && spec.default !== undefined ? String(spec.default) : '';
  }
  return { params, serverAddress: '' };
}

export function loadSettings(storage: Pick<Storage, 'getItem'> = localStorage): Settings {
  const defaults = defaultSettings();
  try {
    const saved = JSON.parse(storage.getItem(KEY) ?? 'null') as Partial<Settings> | null;
    if (!saved || typeof saved !== 'object') return defaults;
    const params = { ...defaults.params };
    for (const name of Object.keys(SAMPLING_PARAMS) as SamplingParamName[]) {
      const v = saved.params?.[name];
      if (typeof v === 'string') params[name] = v;
    }
    return { params, serverAddress: typeof saved.serverAddress === 'string' ? saved.serverAddress : '' };
  } catch {
    return defaults; // Unreadable settings are not worth an error: start from defaults.
  }
}

export function saveSettings(settings: Settings, storage: Pick<Storage, 'setItem'> = localStorage): void {
  storage.setItem(KEY, JSON.stringify(settings));
}

/**
 * The query for a connection. Blank seeds get fresh random values per
 * session, as Kyutai's client draws them.
 */
export function queryFor(settings: Settings, random: () => number = Math.random): { ok: true; query: URLSearchParams } | { ok: false; issues: ParamIssue[] } {
  const raw = new URLSearchParams();
  for (const [name, value] of Object.entries(settings.params)) if (value !== undefined && value.trim() !== '') raw.set(name, value.trim());
  for (const seed of ['text_seed', 'audio_seed'] as const) if (!raw.has(seed)) raw.set(seed, String(randomSeed(random)));
  const parsed = parseSamplingParams(raw);
  if (!parsed.ok) return parsed;
  return { ok: true, query: samplingToQuery(parsed.params) };
}
