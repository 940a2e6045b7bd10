/**
 * The OpenAI-compatible language model stage against a FAKE of a cloud chat
 * API: a tiny server on 127.0.0.1 speaking the streamed chat-completions
 * protocol (server-sent events). Nothing leaves the machine.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletionsUrl, openAiLm, sseData } from '../../src/engines/cascade/lm/openai.js';
import type { ChatMessage } from '../../src/engines/cascade/lm/types.js';
import { freePort } from '../helpers/net.js';
import { openHarness, run } from './driver.js';
import { speak, toFrames } from './helpers.js';

interface Seen {
  auth?: string;
  body: { model: string; messages: ChatMessage[]; stream: boolean; max_tokens?: number; temperature?: number };
  closedEarly: boolean;
}

let server: Server;
let base: string;
const seen: Seen[] = [];
/** Words the fake streams back, one SSE event each. */
let script: string[] = ['Hello', ' from', ' the', ' fake', ' cloud.'];
let wordDelayMs = 5;

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += c;
  return s;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
    res.writeHead(404).end('{"error":{"message":"no such route"}}');
    return;
  }
  const entry: Seen = { auth: req.headers.authorization, body: JSON.parse(await readBody(req)), closedEarly: false };
  seen.push(entry);
  if (entry.auth !== 'Bearer sk-test') {
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"message":"Incorrect API key provided"}}');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.on('close', () => {
    if (!res.writableEnded) entry.closedEarly = true;
  });
  // A role-only first chunk, as OpenAI sends, and a comment line, which clients must skip.
  res.write(`data: ${JSON.stringify({ choices: [{ delta: { role: 'assistant' } }] })}\n\n: keep-alive\n\n`);
  for (const word of script) {
    if (res.destroyed) return;
    await new Promise((r) => setTimeout(r, wordDelayMs));
    // Split one event across two writes to exercise the SSE reassembly.
    const event = `data: ${JSON.stringify({ choices: [{ delta: { content: word }, finish_reason: null }] })}\r\n\r\n`;
    res.write(event.slice(0, 10));
    res.write(event.slice(10));
  }
  res.end('data: [DONE]\n\n');
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function collect(iter: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const p of iter) out.push(p);
  return out;
}

describe('OpenAI-compatible language model (against a local fake cloud API)', () => {
  it('streams the reply piece by piece and sends model, messages and key', async () => {
    script = ['Hello', ' from', ' the', ' fake', ' cloud.'];
    const lm = openAiLm({ url: base, apiKey: 'sk-test', model: 'fake-model' });
    const session = await lm.createSession();
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi!' },
    ];
    const pieces = await collect(session.generate(messages, { signal: new AbortController().signal, maxTokens: 50, temperature: 0.7 }));
    expect(pieces).toEqual(script);
    const req = seen[seen.length - 1];
    expect(req.body).toMatchObject({ model: 'fake-model', messages, stream: true, max_tokens: 50, temperature: 0.7 });
    expect(lm.name).toBe(`openai:fake-model@${new URL(base).host}`);
  });

  it('stops and closes the connection when aborted mid-stream', async () => {
    script = Array.from({ length: 200 }, (_, i) => ` w${i}`);
    wordDelayMs = 10;
    const lm = openAiLm({ url: `${base}/chat/completions`, apiKey: 'sk-test', model: 'm' });
    const session = await lm.createSession();
    const ac = new AbortController();
    const pieces: string[] = [];
    for await (const p of session.generate([{ role: 'user', content: 'talk' }], { signal: ac.signal })) {
      pieces.push(p);
      if (pieces.length === 5) ac.abort();
    }
    // 200 words were on their way: stopping within a few of the abort is what "promptly" means here.
    expect(pieces.length).toBeLessThan(10);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen[seen.length - 1].closedEarly).toBe(true);
    wordDelayMs = 5;
  });

  it('explains a rejected key', async () => {
    const lm = openAiLm({ url: base, apiKey: 'wrong', model: 'm' });
    const session = await lm.createSession();
    await expect(collect(session.generate([{ role: 'user', content: 'x' }], { signal: new AbortController().signal }))).rejects.toThrow(/HTTP 401 \(check the API key\).*Incorrect API key/);
  });

  it('explains an unreachable endpoint', async () => {
    const port = await freePort();
    const lm = openAiLm({ url: `http://127.0.0.1:${port}/v1`, model: 'm' });
    const session = await lm.createSession();
    await expect(collect(session.generate([{ role: 'user', content: 'x' }], { signal: new AbortController().signal }))).rejects.toThrow(/Cannot reach the language model at 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  it('times out a server that never answers', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const lm = openAiLm({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, model: 'm', timeoutMs: 300 });
    const session = await lm.createSession();
    await expect(collect(session.generate([{ role: 'user', content: 'x' }], { signal: new AbortController().signal }))).rejects.toThrow(/did not answer within 0.3 s/);
    silent.closeAllConnections();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it('parses SSE events split anywhere', async () => {
    const enc = new TextEncoder();
    async function* chunks() {
      yield enc.encode('data: a\n');
      yield enc.encode('\ndata: b\r\n\r');
      yield enc.encode('\nevent: x\ndata: c\ndata: d\n\n');
    }
    expect(await collect(sseData(chunks()))).toEqual(['a', 'b', 'c\nd']);
    expect(chatCompletionsUrl('http://h/v1/')).toBe('http://h/v1/chat/completions');
  });

  it('drives a whole spoken turn through the engine', async () => {
    script = ['Nice', ' to', ' meet', ' you.', ' I', ' am', ' in', ' the', ' cloud.'];
    const h = await openHarness(openAiLm({ url: base, apiKey: 'sk-test', model: 'fake-model' }), {}, 'You are a pirate.');
    try {
      const q = toFrames(await speak('hello, how are you today?'));
      await run(h, 250, (i) => (i >= 3 ? q[i - 3] : undefined), {
        until: () => h.sink.eventsOf('turn').some((e) => e.state === 'listening' && e.turn === 1),
      });
      expect(h.sink.replyText()).toBe('Nice to meet you. I am in the cloud.');
      const req = seen[seen.length - 1];
      // The persona from the connection is the system prompt.
      expect(req.body.messages[0]).toEqual({ role: 'system', content: 'You are a pirate.' });
      expect(req.body.messages[req.body.messages.length - 1].content).toMatch(/hello/);
    } finally {
      await h.close();
    }
  });
});
