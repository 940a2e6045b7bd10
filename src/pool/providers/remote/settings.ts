/**
 * Settings of the remote provider, `pool.remote`. Each worker is a URL,
 * optionally with the number of conversations it holds at once (Kyutai's
 * Rust server batches several): `ws://gpu-1:8998#slots=4`, or
 * `{ url, slots, headers }` in a config file, where `headers` go with every
 * connection to it (a reverse proxy's credentials).
 */
import { z } from 'zod';
import { MAX_SLOTS, MAX_WORKERS_LIMIT, seconds, slots, urlPath } from '../../settings-schema.js';
import { toChatUrl } from '../../urls.js';

export interface RemoteWorkerEntry {
  url: string;
  slots: number;
  headers?: Record<string, string>;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const headers = z.record(z.string(), z.string({ error: 'must be a string' })).superRefine((value, ctx) => {
  for (const name of Object.keys(value)) if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid HTTP header name' });
});

const entryObject = z.strictObject({
  url: z.string(),
  slots: slots.default(1),
  headers: headers.optional(),
});

type EntryInput = string | z.input<typeof entryObject>;

const SLOTS_SUFFIX = /#slots=([^#]*)$/;

/** `url` or `url#slots=N` or `{ url, slots, headers }` → `{ url, slots, headers? }`, every problem reported at the entry. */
const workerEntry = z.custom<EntryInput>(() => true).transform((value, ctx): RemoteWorkerEntry => {
  const problem = (message: string, path: (string | number)[] = []) => {
    ctx.addIssue({ code: 'custom', message, path });
    return z.NEVER;
  };
  let entry: RemoteWorkerEntry;
  if (typeof value === 'string') {
    const suffix = SLOTS_SUFFIX.exec(value);
    const count = suffix ? Number(suffix[1]) : 1;
    if (suffix && !(Number.isInteger(count) && count >= 1 && count <= MAX_SLOTS)) {
      return problem(`"${value}": #slots= takes a whole number of conversations from 1 to ${MAX_SLOTS}, e.g. ${value.slice(0, suffix.index)}#slots=4`);
    }
    entry = { url: suffix ? value.slice(0, suffix.index) : value, slots: count };
  } else {
    const parsed = entryObject.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      return z.NEVER;
    }
    entry = parsed.data;
    if (!entry.headers) delete entry.headers;
  }
  try {
    toChatUrl(entry.url, '/api/chat');
  } catch (err) {
    const message = (err as Error).message;
    return problem(message.includes('#fragment') ? `${message}; the only one allowed is #slots=N, the conversations it holds at once` : message, typeof value === 'string' ? [] : ['url']);
  }
  return entry;
});

export const remoteSettingsSchema = z.strictObject({
  urls: z
    .array(workerEntry)
    .min(1, 'list at least one worker, e.g. ["ws://10.0.0.5:8998"]; add #slots=N to a URL that holds several conversations at once')
    .max(MAX_WORKERS_LIMIT),
  healthIntervalSeconds: seconds(3600).default(10),
  healthTimeoutSeconds: seconds(600).default(5),
  healthPath: urlPath.default('/health'),
  chatPath: urlPath.default('/api/chat'),
});

export type RemoteSettings = z.output<typeof remoteSettingsSchema>;
