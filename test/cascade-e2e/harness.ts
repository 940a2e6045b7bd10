/**
 * The whole system as a user runs it, minus the cloud: an in-process gateway
 * whose local pool starts real `quillman worker --engine cascade` processes
 * (Silero VAD, PocketSphinx, flite), configured through the very flags
 * `quillman worker` documents, with the language model played by the fake
 * cloud API of fake-cloud-lm.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cliCommand, eventually, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { MARKER_VARIABLE } from '../helpers/processes.js';
import { startFakeCloudLm, type FakeCloudLm, type FakeCloudLmOptions } from './fake-cloud-lm.js';
import { shellQuote } from '../../src/util/shell-quote.js';

export interface CascadeSystem {
  lm: FakeCloudLm;
  gateway: TestGateway;
  /** ws://…/api/chat of the gateway. */
  chatUrl: string;
  close(): Promise<void>;
}

export interface CascadeSystemOptions {
  lm: FakeCloudLmOptions;
  /** Engine settings handed down as `quillman serve` does (QUILLMAN_ENGINE_SETTINGS), e.g. { idlePromptAfterMs: 0 }. */
  cascade?: Record<string, unknown>;
  /** The voice (--tts); flite by default. */
  tts?: string;
  /** Extra `quillman worker` flags. */
  workerFlags?: string;
  /** Environment of the worker processes (on top of ours). */
  env?: Record<string, string>;
  readyTimeoutSeconds?: number;
  /** Put in every worker's environment, so leftovers can be found (see processesWithMarker). */
  marker: string;
}

export async function startCascadeSystem(options: CascadeSystemOptions): Promise<CascadeSystem> {
  const lm = await startFakeCloudLm(options.lm);
  const flags = `--lm-url ${shellQuote(lm.url)} --stt pocketsphinx --tts ${options.tts ?? 'flite'} ${options.workerFlags ?? ''}`.trim();
  let gateway: TestGateway;
  try {
    gateway = await startTestGateway({
      pool: {
        warm: 1,
        maxWorkers: 1,
        local: {
          command: cliCommand(`worker --engine cascade --port {port} ${flags}`),
          readyTimeoutSeconds: options.readyTimeoutSeconds ?? 60,
          stopGraceSeconds: 3,
          env: {
            QUILLMAN_ENGINE_SETTINGS: JSON.stringify({ name: 'cascade', cascade: { idlePromptAfterMs: 0, ...options.cascade } }),
            [MARKER_VARIABLE]: options.marker,
            ...options.env,
          },
        },
      },
    });
  } catch (err) {
    await lm.close();
    throw err;
  }
  return {
    lm,
    gateway,
    chatUrl: gateway.chatUrl,
    async close() {
      try {
        await gateway.close();
      } finally {
        await lm.close();
      }
    },
  };
}

/** Waits until the pool has a ready worker (so a test's stream clock does not include the worker's start). */
export async function untilReady(system: CascadeSystem, timeoutMs = 60_000): Promise<void> {
  const idle = () => system.gateway.pool.snapshot().workers.some((w) => w.state === 'idle');
  await eventually(idle, timeoutMs, 'a ready worker').catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(system.gateway.pool.snapshot().workers)}`);
  });
}


/** CPU seconds a process and its waited-for children have used, from /proc/<pid>/stat (utime, stime, cutime, cstime). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3, so utime (14) … cstime (17) sit at 11 … 14 here.
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / clockTicks();
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  // USER_HZ is 100 on every Linux we run on; getconf confirms it where available.
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}
