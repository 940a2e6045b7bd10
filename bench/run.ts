/**
 * `npm run bench [-- name [args…]]`: runs the benchmarks and prints tables.
 * Names: relay (gateway overhead), plus those other modules register.
 */
import { benchRelay } from './gateway-relay.js';

type Bench = { describe: string; run: (args: string[]) => Promise<void> };

const list = (s: string | undefined, d: number[]) => (s ? s.split(',').map(Number) : d);

export const BENCHES: Record<string, Bench> = {
  relay: {
    describe: 'gateway relay latency, CPU and memory per conversation [levels] [seconds]',
    run: ([levels, seconds]) => benchRelay(list(levels, [1, 10, 100, 500]), Number(seconds ?? 20)),
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
