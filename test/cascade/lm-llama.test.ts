/**
 * node-llama-cpp for real, on a tiny llama-architecture GGUF the test writes
 * itself (random weights): loading, tokenising, streaming and aborting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLlamaLm } from '../../src/engines/cascade/lm/llama.js';
import type { LmStage } from '../../src/engines/cascade/lm/types.js';
import { writeTinyLlamaGguf } from './gguf-writer.js';

let dir: string;
let lm: LmStage;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quillman-gguf-'));
  const path = join(dir, 'tiny.gguf');
  writeTinyLlamaGguf(path);
  // One thread: on a busy 2-core machine llama.cpp's spinning thread pool is far slower with two.
  lm = await loadLlamaLm({ modelPath: path, contextSize: 512, threads: 1 });
}, 60_000);

afterAll(async () => {
  await lm?.dispose?.();
  rmSync(dir, { recursive: true, force: true });
});

describe('node-llama-cpp language model (tiny generated GGUF)', () => {
  it('loads the file and counts tokens with its tokenizer', () => {
    expect(lm.name).toBe('llama.cpp:quillman-test-tiny');
    // Letters are vocabulary entries: "hello" is a handful of tokens, not the 4-characters-per-token estimate.
    expect(lm.countTokens('hello')).toBeGreaterThanOrEqual(5);
    expect(lm.countTokens('hello')).toBeLessThanOrEqual(7);
    expect(lm.countTokens('hello hello hello')).toBeGreaterThan(lm.countTokens('hello'));
  });

  it('streams a reply up to the token limit', async () => {
    const session = await lm.createSession();
    const pieces: string[] = [];
    for await (const p of session.generate(
      [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello' },
      ],
      { signal: new AbortController().signal, maxTokens: 24, temperature: 0.8, seed: 7 },
    )) {
      pieces.push(p);
    }
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('').length).toBeGreaterThan(0);
    await session.dispose();
  });

  it('stops promptly when aborted, and the session stays usable', async () => {
    const session = await lm.createSession();
    const ac = new AbortController();
    let n = 0;
    for await (const _ of session.generate([{ role: 'user', content: 'tell me everything' }], { signal: ac.signal, maxTokens: 400, temperature: 0.8, seed: 1 })) {
      n++;
      if (n === 5) ac.abort();
    }
    expect(n).toBeGreaterThanOrEqual(5);
    expect(n).toBeLessThan(40);
    // The next turn on the same context works.
    const again: string[] = [];
    for await (const p of session.generate([{ role: 'user', content: 'again' }], { signal: new AbortController().signal, maxTokens: 8, seed: 2 })) again.push(p);
    expect(again.length).toBeGreaterThan(0);
    await session.dispose();
  });

  it('gives each conversation its own context', async () => {
    const a = await lm.createSession();
    const b = await lm.createSession();
    const run = async (s: typeof a) => {
      const out: string[] = [];
      for await (const p of s.generate([{ role: 'user', content: 'hi' }], { signal: new AbortController().signal, maxTokens: 6, temperature: 0, seed: 3 })) out.push(p);
      return out.join('');
    };
    const [ra, rb] = await Promise.all([run(a), run(b)]);
    // Greedy decoding of the same prompt in two independent contexts gives the same text.
    expect(ra).toBe(rb);
    await a.dispose();
    await b.dispose();
  });
});
