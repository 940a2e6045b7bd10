/**
 * `quillman serve` in a process group of its own, with one worker, for the
 * benchmarks that measure through the gateway as deployed.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_ARGS, REPO } from '../../test/helpers/gateway.js';
import { freePort } from '../../test/helpers/net.js';
import { stopProcessGroup } from '../../test/helpers/processes.js';

export interface Served {
  chatUrl: string;
  /** The ready worker's process id (for its CPU time). */
  workerPid: number;
  /** The worker's own /health URL (its event-loop delay, among others). */
  workerHealthUrl?: string;
  stop(): Promise<void>;
}

/** Starts the gateway with `engine` (settings in a config file under `dir`); resolves once a worker is ready. */
export async function serve(engine: 'cascade' | 'loopback', flags: string[], engineSettings: Record<string, unknown>, dir: string): Promise<Served> {
  const port = await freePort();
  const configFile = join(dir, `config-${port}.json`);
  writeFileSync(configFile, JSON.stringify({ engine: engineSettings }));
  const args = [...CLI_ARGS, 'serve', '--config', configFile, '--port', String(port), '--host', '127.0.0.1', '--engine', engine];
  args.push('--warm', '1', '--max-workers', '1', '--worker-base-port', String(port + 1), ...flags);
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, QUILLMAN_LOG_FORMAT: 'json' } });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const stop = () => stopProcessGroup(child, 10_000);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { pool?: { workers?: { state: string; pid?: number; url?: string }[] } };
      const worker = health.pool?.workers?.find((w) => w.state === 'idle' && w.pid !== undefined);
      if (worker) {
        const workerHealthUrl = worker.url?.replace(/^ws/, 'http').replace(/\/api\/chat$/, '/health');
        return { chatUrl: `ws://127.0.0.1:${port}/api/chat`, workerPid: worker.pid!, workerHealthUrl, stop };
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`quillman serve did not get a ready worker within 60 s:\n${output}`);
}
