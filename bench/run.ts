/**
 * `npm run bench [-- name [args…]]`: runs the benchmarks and prints tables.
 * Without a name, runs them all with their default arguments.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { benchRelay } from './gateway-relay.js';

/** Benchmarks written as scripts run in a process of their own, as `node --import tsx script args…`. */
function script(file: string) {
  return async (args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, file), ...args], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${file} exited with ${r.status}`);
  };
}

type Bench = { describe: string; run: (args: string[]) => Promise<void> };

const list = (s: string | undefined, d: number[]) => (s ? s.split(',').map(Number) : d);

export const BENCHES: Record<string, Bench> = {
  relay: {
    describe: 'gateway relay latency, CPU and memory per conversation [levels] [seconds]',
    run: ([levels, seconds]) => benchRelay(list(levels, [1, 10, 100, 500]), Number(seconds ?? 20)),
  },
  playout: {
    describe: 'our playout policy vs Kyutai\'s on simulated jittery links (no browser)',
    run: script('web-playout-sim.ts'),
  },
  browser: {
    describe: 'glass-to-glass latency and missed audio in headless Chromium [--seconds 120] [--jitter-ms 40]',
    run: script('web-latency.ts'),
  },
  cascade: {
    describe: 'cascade engine: voice-to-voice latency through the gateway, stage times, real-time factors, CPU [--turns 20] [--word-ms 30] [--no-llama] [--threads-probe]',
    run: script('cascade-latency.ts'),
  },
};

const [name, ...args] = process.argv.slice(2);
const selected = name ? [name] : Object.keys(BENCHES);
for (const n of selected) {
  const bench = BENCHES[n];
  if (!bench) {
    process.stderr.write(`unknown benchmark "${n}"; choose from: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exit(2);
  }
  await bench.run(n === name ? args : []);
}
