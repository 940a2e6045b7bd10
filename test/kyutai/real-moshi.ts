/**
 * Kyutai's real `moshi.server` (PyPI moshi, pinned) on the tiny random
 * checkpoint, on a CPU. Not a stand-in: every line of server code and the
 * Ogg/Opus framing are Kyutai's; only the weights are random.
 *
 * When the environment is missing the suite fails once, saying how to make it,
 * instead of failing obscurely in every test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'vitest';
import { z } from 'zod';
import { BUILD_INFO_KEYS } from '../../src/protocol/server-info.js';
import { findTinyMoshi, HOW_TO_MAKE, tinyServerArgs, TINY_SERVER_ENV, type TinyMoshi } from '../../scripts/kyutai/tiny-moshi.js';
import { shellQuote } from '../../src/util/shell-quote.js';
import { eventually } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { MARKER_VARIABLE, processesWithMarker } from '../helpers/processes.js';

export function requireTinyMoshi(): TinyMoshi {
  const tiny = findTinyMoshi();
  if (!tiny) {
    throw new Error(
      `Kyutai's Moshi server for tests is not set up on this machine. Run \`${HOW_TO_MAKE}\` once ` +
        '(it installs moshi in a Python environment, about 4 GB, and writes a tiny model), then run the tests again. `.ci/run` does it for you.',
    );
  }
  return tiny;
}

/** The local provider's command template that starts Kyutai's server on the tiny model. */
export function tinyServerCommand(tiny: TinyMoshi): string {
  return [tiny.python, ...tinyServerArgs(tiny, '{port}', '{host}')].map((a) => (a.includes('{') ? a : shellQuote(a))).join(' ');
}

export const TINY_ENV = TINY_SERVER_ENV;

export interface RealMoshi {
  url: string;
  httpUrl: string;
  port: number;
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts one real server and waits until it answers HTTP (it listens only after loading and warming up). */
export async function startRealMoshi(tiny: TinyMoshi, marker: string): Promise<RealMoshi> {
  const port = await freePort();
  const child = spawn(tiny.python, tinyServerArgs(tiny, port), {
    env: { ...process.env, ...TINY_SERVER_ENV, [MARKER_VARIABLE]: marker },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const take = (d: Buffer) => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const httpUrl = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`moshi.server exited with ${child.exitCode}:\n${output.slice(-2000)}`);
      const r = await fetch(`${httpUrl}/`, { signal: AbortSignal.timeout(2000) });
      await r.body?.cancel();
      return true;
    },
    180_000,
    "Kyutai's moshi.server to listen",
    250,
  );
  return {
    url: `ws://127.0.0.1:${port}/api/chat`,
    httpUrl,
    port,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Every process a test file started with `marker` is gone. */
export async function expectNoneLeft(marker: string): Promise<void> {
  await eventually(() => processesWithMarker(marker).length === 0, 20_000, 'the Kyutai servers to exit');
  expect(processesWithMarker(marker)).toEqual([]);
}

/**
 * The server-info shape Kyutai's web client checks every kind-4 message
 * against (its Rust backend's), written from the facts in /work/shared: seven
 * numbers, two strings and ten build strings, all required.
 */
export const KyutaiClientServerInfo = z.object({
  text_temperature: z.number(),
  text_topk: z.number(),
  audio_temperature: z.number(),
  audio_topk: z.number(),
  pad_mult: z.number(),
  repetition_penalty_context: z.number(),
  repetition_penalty: z.number(),
  lm_model_file: z.string(),
  instance_name: z.string(),
  build_info: z.object(Object.fromEntries(BUILD_INFO_KEYS.map((k) => [k, z.string()])) as Record<(typeof BUILD_INFO_KEYS)[number], z.ZodString>),
});
