/**
 * Any OpenAI-compatible chat endpoint (OpenAI, llama.cpp server, Ollama,
 * vLLM, LM Studio...) with streamed completions over server-sent events.
 */
import { networkErrorCode } from '../../../util/network-error.js';
import { estimateTokens, type LmSession, type LmStage } from './types.js';

export interface OpenAiLmOptions {
  /** Base URL such as https://api.openai.com/v1, or the full …/chat/completions URL. */
  url: string;
  apiKey?: string;
  model: string;
  /** Time allowed until the first byte of the answer. */
  timeoutMs?: number;
  /** Time allowed between two pieces of a streamed answer. */
  idleTimeoutMs?: number;
}

export function chatCompletionsUrl(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return /\/chat\/completions$/.test(trimmed) ? trimmed : `${trimmed}/chat/completions`;
}

/** Splits an SSE byte stream into the `data:` payloads of its events. */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    if (buffer.length > 1_000_000) throw new Error('language model stream sent an event over 1 MB');
    let idx: number;
    while ((idx = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, idx);
      buffer = buffer.slice(idx).replace(/^\r?\n\r?\n/, '');
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) yield data;
    }
  }
}

export function openAiLm(opts: OpenAiLmOptions): LmStage {
  const url = chatCompletionsUrl(opts.url);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 20_000;
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      throw new Error(`Language model URL ${JSON.stringify(opts.url)} is not a valid URL`);
    }
  })();

  const session: LmSession = {
    async *generate(messages, gen) {
      const controller = new AbortController();
      const onAbort = () => controller.abort();
      gen.signal.addEventListener('abort', onAbort, { once: true });
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      /** The first answer gets timeoutMs; once streaming, each piece gets idleTimeoutMs. */
      const arm = (ms: number) => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, ms);
      };
      arm(timeoutMs);
      try {
        let res: Response;
        try {
          res = await fetch(url, {
            method: 'POST',
            signal: controller.signal,
            headers: {
              'content-type': 'application/json',
              accept: 'text/event-stream',
              ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
            },
            body: JSON.stringify({
              model: opts.model,
              messages,
              stream: true,
              ...(gen.temperature !== undefined ? { temperature: gen.temperature } : {}),
              ...(gen.maxTokens !== undefined ? { max_tokens: gen.maxTokens } : {}),
              ...(gen.seed !== undefined ? { seed: gen.seed } : {}),
            }),
          });
        } catch (err) {
          if (gen.signal.aborted) return;
          if (timedOut) throw new Error(`Language model at ${host} did not answer within ${timeoutMs / 1000} s`);
          const code = networkErrorCode(err);
          throw new Error(`Cannot reach the language model at ${host}${code ? ` (${code})` : ''}: check --lm-url (QUILLMAN_LM_URL) and your network`);
        }
        if (!res.ok || !res.body) {
          const text = (await res.text().catch(() => '')).slice(0, 300);
          const hint = res.status === 401 || res.status === 403 ? ' (check the API key)' : res.status === 404 ? ' (check the URL and model name)' : '';
          const fix = res.status === 401 || res.status === 403 ? ' Set the key with --lm-key or QUILLMAN_LM_KEY.' : res.status === 404 ? ' Set them with --lm-url and --lm-model.' : '';
          throw new Error(`Language model at ${host} answered HTTP ${res.status}${hint}: ${text}${fix}`);
        }
        arm(idleTimeoutMs);
        try {
          for await (const data of sseData(res.body as unknown as AsyncIterable<Uint8Array>)) {
            arm(idleTimeoutMs);
            if (data.trim() === '[DONE]') return;
            let parsed: { choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[]; error?: { message?: string } };
            try {
              parsed = JSON.parse(data);
            } catch {
              continue;
            }
            if (parsed.error) throw new Error(`Language model error: ${parsed.error.message ?? 'unknown'}`);
            const piece = parsed.choices?.[0]?.delta?.content;
            if (piece) yield piece;
          }
        } catch (err) {
          if (gen.signal.aborted) return;
          if (timedOut) throw new Error(`Language model at ${host} stalled for ${idleTimeoutMs / 1000} s`);
          throw err;
        }
      } finally {
        clearTimeout(timer);
        gen.signal.removeEventListener('abort', onAbort);
        controller.abort();
      }
    },
    async dispose() {},
  };

  return {
    name: `openai:${opts.model}@${host}`,
    countTokens: estimateTokens,
    createSession: async () => session,
  };
}
