/**
 * The long fuzz run: a million inputs (or --runs N) for each target in
 * test/fuzz/targets.ts, each target in a process of its own, watched:
 *
 *   node --import tsx test/fuzz/long-run.ts [--runs 1000000] [--only "Ogg demuxer"]
 *
 * Prints progress, then a table: inputs, failures, time, inputs per second,
 * the slowest single input (in CPU time, which a busy machine does not
 * inflate), and the heap after a full GC at the start and at the end
 * (bounded memory: no growth with the number of inputs). A target that makes
 * no progress for a minute is reported as hung and stopped. The figures go
 * in docs/security.md.
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import fc from 'fast-check';
import { TARGETS } from './targets.js';
import { arg } from '../../bench/lib/args.js';

const CHUNK = 10_000;
const HANG_MS = 60_000;

interface Progress {
  done: number;
  slowestMs: number;
  heapMB: number;
  rssMB: number;
  failure?: string;
}

async function child(name: string, runs: number): Promise<void> {
  const target = TARGETS.find((t) => t.name === name);
  if (!target) throw new Error(`no target "${name}"`);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapAtStart = process.memoryUsage().heapUsed / 2 ** 20;
  let slowestMs = 0;
  let done = 0;
  const report = (extra: Partial<Progress> = {}) => {
    const mem = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ done, slowestMs, heapMB: mem.heapUsed / 2 ** 20, rssMB: mem.rss / 2 ** 20, heapAtStart, ...extra })}\n`);
  };
  let seed = Number(arg('--seed') ?? Date.now() % 2 ** 31);
  while (done < runs) {
    const numRuns = Math.min(CHUNK, runs - done);
    const details = fc.check(
      fc.property(target.arbitrary, (input) => {
        const cpu = process.cpuUsage();
        target.check(input as never);
        const used = process.cpuUsage(cpu);
        slowestMs = Math.max(slowestMs, (used.user + used.system) / 1000);
      }),
      { numRuns, seed },
    );
    if (details.failed) {
      report({ failure: `seed ${details.seed}: ${fc.defaultReportMessage(details) ?? 'failed'}`.slice(0, 4000) });
      process.exit(1);
    }
    done += numRuns;
    seed = (seed + 1) % 2 ** 31;
    if (done === runs) gc?.();
    report();
  }
}

interface Row {
  target: string;
  inputs: number;
  failures: number;
  seconds: number;
  perSecond: number;
  slowestMs: number;
  heapStartMB: number;
  heapEndMB: number;
  peakRssMB: number;
  note: string;
}

function runTarget(name: string, runs: number): Promise<Row> {
  return new Promise((resolve) => {
    const started = performance.now();
    const proc = spawn(process.execPath, ['--no-warnings', '--expose-gc', '--import', 'tsx', import.meta.filename, '--child', name, '--runs', String(runs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let last: (Progress & { heapAtStart: number }) | undefined;
    let peakRss = 0;
    let lastProgressAt = performance.now();
    let buffered = '';
    let note = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          last = JSON.parse(line);
        } catch {
          continue;
        }
        peakRss = Math.max(peakRss, last!.rssMB);
        lastProgressAt = performance.now();
        if (last!.failure) note = last!.failure;
        if (last!.done % 100_000 === 0 || last!.done === runs) process.stderr.write(`  ${name}: ${last!.done.toLocaleString('en')} inputs\n`);
      }
    });
    const watchdog = setInterval(() => {
      if (performance.now() - lastProgressAt > HANG_MS) {
        note = `no progress for ${HANG_MS / 1000} s after ${last?.done ?? 0} inputs: hung`;
        proc.kill('SIGKILL');
      }
    }, 1000);
    proc.on('exit', (code) => {
      clearInterval(watchdog);
      const seconds = (performance.now() - started) / 1000;
      const inputs = last?.done ?? 0;
      resolve({
        target: name,
        inputs,
        failures: code === 0 ? 0 : 1,
        seconds,
        perSecond: inputs / seconds,
        slowestMs: last?.slowestMs ?? NaN,
        heapStartMB: last?.heapAtStart ?? NaN,
        heapEndMB: last?.heapMB ?? NaN,
        peakRssMB: peakRss,
        note: note || (code === 0 ? '' : `exited ${code}`),
      });
    });
  });
}

async function main(): Promise<void> {
  const only = arg('--child');
  const runs = Number(arg('--runs') ?? 1_000_000);
  if (only) return child(only, runs);
  const selected = arg('--only');
  const targets = TARGETS.filter((t) => !selected || t.name === selected);
  process.stderr.write(`fuzzing ${targets.length} targets, ${runs.toLocaleString('en')} inputs each, on ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}\n`);
  const rows: Row[] = [];
  for (const t of targets) rows.push(await runTarget(t.name, runs));
  const header = '| target | inputs | failures | time (s) | inputs/s | slowest input (CPU ms) | heap after GC, start → end (MiB) | peak RSS (MiB) |';
  const lines = rows.map(
    (r) =>
      `| ${r.target} | ${r.inputs.toLocaleString('en')} | ${r.failures}${r.note ? ` (${r.note.split('\n')[0]})` : ''} | ${r.seconds.toFixed(0)} | ${Math.round(r.perSecond).toLocaleString('en')} | ${r.slowestMs.toFixed(1)} | ${r.heapStartMB.toFixed(1)} → ${r.heapEndMB.toFixed(1)} | ${r.peakRssMB.toFixed(0)} |`,
  );
  process.stdout.write([header, '|---|--:|--:|--:|--:|--:|--:|--:|', ...lines].join('\n') + '\n');
  for (const r of rows) if (r.note) process.stdout.write(`\n${r.target}: ${r.note}\n`);
  process.exitCode = rows.some((r) => r.failures) ? 1 : 0;
}

await main();
