/**
 * A FAKE of a cloud language-model API, for tests and benchmarks: a server on
 * 127.0.0.1 speaking OpenAI's streamed chat-completions protocol (server-sent
 * events), answering with text the test chose, one word per event at a fixed
 * rate. It records what it was asked and whether the client hung up before
 * the answer was complete (an aborted request). Nothing leaves the machine.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeMessage {
  role: string;
  content: string;
}

export interface FakeRequest {
  model: string;
  messages: FakeMessage[];
  auth?: string;
  /** performance.now() when it ended. */
  endedAt?: number;
  /** Words sent before the end. */
  wordsSent: number;
  /** The client closed the connection before the answer was complete. */
  abortedByClient: boolean;
}

export interface FakeCloudLmOptions {
  /** The answer to a request; the last user message is the common input. */
  reply: (messages: FakeMessage[]) => string;
  /** Delay before each word, the first one included (a cloud model's token rate). */
  wordDelayMs?: number;
}

export interface FakeCloudLm {
  /** Base URL to give as --lm-url, e.g. http://127.0.0.1:1234/v1 */
  url: string;
  readonly requests: FakeRequest[];
  close(): Promise<void>;
}

/** Words with their following space, so that joining the pieces gives the text back. */
function wordPieces(text: string): string[] {
  return text.split(/(?<= )/).filter((p) => p !== '');
}

export async function startFakeCloudLm(options: FakeCloudLmOptions): Promise<FakeCloudLm> {
  const requests: FakeRequest[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"no such route"}}');
      return;
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    const parsed = JSON.parse(body) as { model: string; messages: FakeMessage[] };
    const entry: FakeRequest = { model: parsed.model, messages: parsed.messages, auth: req.headers.authorization, wordsSent: 0, abortedByClient: false };
    requests.push(entry);
    res.on('close', () => {
      if (!res.writableEnded) entry.abortedByClient = true;
      entry.endedAt ??= performance.now();
    });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { role: 'assistant' } }] })}\n\n`);
    const { reply, wordDelayMs = 30 } = options;
    const pieces = wordPieces(reply(parsed.messages));
    for (const piece of pieces) {
      await sleep(wordDelayMs);
      if (res.destroyed) return;
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
      entry.wordsSent++;
    }
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
    res.end('data: [DONE]\n\n');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
