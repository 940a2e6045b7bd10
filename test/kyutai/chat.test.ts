/**
 * `quillman chat`, the terminal client, straight to Kyutai's real server.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWav } from '../../src/audio/wav.js';
import { CLI_ARGS } from '../helpers/gateway.js';
import { newMarker } from '../helpers/processes.js';
import { speakToFile, tempDir } from '../helpers/speech.js';
import { expectNoneLeft, requireTinyMoshi, startRealMoshi, type RealMoshi } from './real-moshi.js';

const run = promisify(execFile);
const marker = newMarker();
let server: RealMoshi;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  dir = await tempDir('quillman-kyutai-chat-');
  server = await startRealMoshi(requireTinyMoshi(), marker);
}, 200_000);

afterAll(async () => {
  await server?.stop();
  await dir?.cleanup();
  await expectNoneLeft(marker);
});

describe("quillman chat against Kyutai's moshi.server", () => {
  it('handshakes, streams a spoken question, and gets text pieces and audio that opusdec decodes', async () => {
    const question = await speakToFile('Hello Moshi, can you hear me?', join(dir.path, 'question.wav'));
    const ogg = join(dir.path, 'reply.ogg');
    const wav = join(dir.path, 'reply.wav');
    const { stdout } = await run(process.execPath, [...CLI_ARGS, 'chat', server.url, '-i', question, '-o', wav, '--save-ogg', ogg, '--linger', '1', '--json'], {
      timeout: 120_000,
    });
    const summary = JSON.parse(stdout.trim().split('\n').pop()!) as {
      timeToHandshakeMs?: number;
      timeToFirstAudioMs?: number;
      replySeconds: number;
      errors: string[];
      text: string;
      closeCode?: number;
    };
    expect(summary.errors).toEqual([]);
    expect(summary.timeToHandshakeMs).toBeGreaterThan(0);
    expect(summary.timeToFirstAudioMs).toBeGreaterThan(0);
    // The random model picks pieces of the tiny tokenizer's English corpus.
    expect(summary.text.trim().length).toBeGreaterThan(0);
    expect(summary.replySeconds).toBeGreaterThan(1);

    const decoded = join(dir.path, 'opusdec.wav');
    await run('opusdec', ['--rate', '24000', ogg, decoded]);
    const byOpusdec = (await readWav(decoded, 24_000)).samples.length / 24_000;
    const byUs = (await readWav(wav, 24_000)).samples.length / 24_000;
    // Same stream, two decoders: the same length within one 40 ms packet and the 80 ms pre-skip.
    expect(Math.abs(byOpusdec - byUs)).toBeLessThan(0.13);
    expect(byOpusdec).toBeGreaterThan(1);
  });
});
