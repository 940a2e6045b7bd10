/**
 * Our playout policy against Kyutai's on identical simulated links: a
 * real-time sender emitting 80 ms frames as four 20 ms messages (as our
 * worker does), each delayed by uniform random jitter with order preserved
 * (a websocket over TCP). Averages over 10 seeded two-minute traces. The
 * "each way" link is what the browser benchmark's proxy does to a lockstep
 * engine (the loopback, Moshi): the uplink's jitter delays the replies too.
 *
 *   node --import tsx bench/web-playout-sim.ts
 */
import { createPolicy, POLICY_NAMES } from '../web/src/playout/create-policy.js';
import { percentile, senderTrace, simulate } from '../web/src/playout/simulation.js';

const RATE = 24_000;
const SECONDS = 120;
const SEEDS = 10;
const ms = (samples: number) => (samples * 1000) / RATE;

console.log('| jitter | policy | missed ms | underruns | after 1 s | mean delay ms | p95 delay ms | trimmed ms | held ms |');
console.log('|---|---|---|---|---|---|---|---|---|');
const LINKS: { label: string; jitterMs: [number, number]; uplinkJitterMs?: [number, number] }[] = [
  { label: '0–0 ms', jitterMs: [0, 0] },
  { label: '0–40 ms', jitterMs: [0, 40] },
  { label: '0–40 ms each way', jitterMs: [0, 40], uplinkJitterMs: [0, 40] },
  { label: '0–100 ms', jitterMs: [0, 100] },
];

for (const { label, ...link } of LINKS) {
  for (const name of POLICY_NAMES) {
    const sum = { missed: 0, underruns: 0, late: 0, delay: 0, p95: 0, trimmed: 0, held: 0 };
    for (let seed = 1; seed <= SEEDS; seed++) {
      const arrivals = senderTrace({ sampleRate: RATE, durationS: SECONDS, ...link, seed });
      const r = simulate(createPolicy(name, RATE), arrivals, { sampleRate: RATE, durationS: SECONDS });
      sum.missed += ms(r.stats.missed);
      sum.underruns += r.stats.underruns;
      sum.late += r.underrunsAt.filter((c) => c > RATE + arrivals[0].at).length;
      sum.delay += ms(r.stats.delaySum / r.stats.played);
      sum.p95 += ms(percentile(r.quantumDelays, 95));
      sum.trimmed += ms(r.stats.trimmed);
      sum.held += ms(r.stats.held);
    }
    const avg = (v: number) => (v / SEEDS).toFixed(1);
    console.log(`| ${label} | ${name} | ${avg(sum.missed)} | ${avg(sum.underruns)} | ${avg(sum.late)} | ${avg(sum.delay)} | ${avg(sum.p95)} | ${avg(sum.trimmed)} | ${avg(sum.held)} |`);
  }
}
