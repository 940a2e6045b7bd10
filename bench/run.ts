/**
 * `npm run bench [-- name [args…]]`: runs the benchmarks and prints tables.
 * Without a name, runs them all with their default arguments.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { benchRelay, RELAY_DEFAULTS } from './gateway-relay.js';

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
    describe: 'the gateway alone (pinned to a core): CPU per relayed frame, added latency, memory, beside a minimal Python relay [levels=100,300,600] [seconds=10] [--runs 3] [--no-python] [--no-pin] [--workers echo|loopback] [--warmup 3]',
    run: (args) => {
      const flag = (name: string) => {
        const i = args.indexOf(name);
        return i >= 0 ? args[i + 1] : undefined;
      };
      const valued = new Set(['--runs', '--workers', '--warmup']);
      const positional = args.filter((a, i) => !a.startsWith('--') && !valued.has(args[i - 1]));
      const workers = flag('--workers') ?? RELAY_DEFAULTS.workers;
      if (workers !== 'echo' && workers !== 'loopback') throw new Error(`--workers must be echo or loopback, got ${workers}`);
      return benchRelay({
        levels: list(positional[0], RELAY_DEFAULTS.levels),
        seconds: Number(positional[1] ?? RELAY_DEFAULTS.seconds),
        runs: Number(flag('--runs') ?? RELAY_DEFAULTS.runs),
        warmupSeconds: Number(flag('--warmup') ?? RELAY_DEFAULTS.warmupSeconds),
        python: !args.includes('--no-python'),
        pin: !args.includes('--no-pin'),
        workers,
      });
    },
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
  faults: {
    describe: 'workers SIGKILLed and clients vanishing under load: errors, gaps, recovery, leaks, memory slope [--minutes 10] [--conversations 50] [--kill-every 20] [--vanish-every 20]',
    run: script('faults.ts'),
  },
  clock: {
    describe: 'reply audio against a steady clock per engine, through the gateway: worst lag, p99/max gap [--engines loopback,cascade,cascade-llama] [--seconds 30] [--runs 2]',
    run: script('output-clock.ts'),
  },
  'web-engines': {
    describe: "the web app's missed audio and underruns in Chromium, cascade beside loopback [--seconds 60] [--engines cascade,loopback]",
    run: script('web-engines.ts'),
  },
  modal: {
    describe: 'Modal provider against the control-plane stand-in: connect → handshake warm and cold, sandbox death → client told, pool decisions with 100 sandboxes [--runs 10] [--sandboxes 100]',
    run: script('modal.ts'),
  },
  kubernetes: {
    describe: 'kubernetes provider on a real API server with simulated nodes: handshake with a free pod, claim time, a burst over two gateways, caller told of a deleted pod, reclaim after a gateway SIGKILL [--runs 20] [--workers 10] [--kills 3]',
    run: script('kubernetes.ts'),
  },
  kyutai: {
    describe: "Kyutai's real moshi.server (tiny model, CPU): handshake, first audio and step latency, straight vs through the gateway [--sessions 10] [--seconds 8]",
    run: script('kyutai.ts'),
  },
};

const [name, ...args] = process.argv.slice(2);
if (name === '--list' || name === '--help') {
  for (const [n, b] of Object.entries(BENCHES)) process.stdout.write(`${n.padEnd(12)} ${b.describe}\n`);
  process.exit(0);
}
const selected = name ? [name] : Object.keys(BENCHES);
for (const n of selected) {
  const bench = BENCHES[n];
  if (!bench) {
    process.stderr.write(`unknown benchmark "${n}"; choose from: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exit(2);
  }
  await bench.run(n === name ? args : []);
}
