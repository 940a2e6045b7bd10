/**
 * Relay benchmark: how much latency, CPU and memory the gateway adds per
 * conversation, at 1, 10, 100 and 500 concurrent conversations, each
 * streaming 12.5 frames/s both ways through loopback workers.
 *
 * For each level the same load runs twice against the same workers: straight
 * to them, then through the gateway. The gateway's added latency is the
 * difference of the round-trip percentiles. Its CPU and memory are read from
 * its own /metrics (process counters), so the load generator and the workers,
 * which run in their own processes, are not counted.
 *
 *   npm run bench -- relay [levels=1,10,100,500] [seconds=20]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LoadResult, LoadSpec } from './lib/relay-load.js';
import { machineLine, printTable } from './lib/report.js';
import { REPO } from '../test/helpers/gateway.js';

const CLI = resolve(REPO, 'dist/cli/main.js');
const SLOTS_PER_PROCESS = 125;

function start(args: string[], name: string): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, QUILLMAN_LOG_LEVEL: 'warn', QUILLMAN_LOG_FORMAT: 'json' } });
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-2000)));
  child.on('exit', (code, signal) => {
    if (code && code !== 0) process.stderr.write(`${name} exited ${code ?? signal}: ${tail}\n`);
  });
  return child;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.split(' ').pop()) : NaN;
}

function runLoadProcess(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(REPO, 'bench/lib/relay-load.ts'), JSON.stringify(spec)], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolvePromise(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited ${code}`))));
  });
}

interface Row {
  sessions: number;
  echo: boolean;
  direct: LoadResult;
  viaGateway: LoadResult;
  cpuPerSession: number;
  memPerSessionKiB: number;
}

async function level(sessions: number, seconds: number, basePort: number, gatewayPort: number, echo: boolean): Promise<Row> {
  const procs: ChildProcess[] = [];
  const urls: string[] = [];
  try {
    for (let p = 0; p * SLOTS_PER_PROCESS < sessions; p++) {
      const slots = Math.min(SLOTS_PER_PROCESS, sessions - p * SLOTS_PER_PROCESS);
      const port = basePort + p * SLOTS_PER_PROCESS;
      const mode = echo ? ['--echo-pages'] : [];
      procs.push(start([CLI, 'worker', '--engine', 'loopback', '--loopback-text-interval-ms', '0', '--packets-per-page', '4', ...mode, '--port', String(port), '--slots', String(slots)], `workers@${port}`));
      for (let s = 0; s < slots; s++) urls.push(`ws://127.0.0.1:${port + s}/api/chat`);
    }
    await waitFor(async () => (await Promise.all(urls.map((u) => fetch(u.replace('ws:', 'http:').replace('/api/chat', '/health')).then((r) => r.ok)))).every(Boolean), 60_000, 'workers');

    const warmupSeconds = 3;
    const direct = await runLoadProcess({ urls, sessions, seconds, warmupSeconds });

    const dir = await mkdtemp(join(tmpdir(), 'quillman-bench-'));
    const config = join(dir, 'gateway.json');
    await writeFile(config, JSON.stringify({ gateway: { host: '127.0.0.1', port: gatewayPort }, pool: { provider: 'remote', maxWorkers: sessions, warm: 0, maxQueue: 0, remote: { urls, healthIntervalSeconds: 30 } } }));
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    procs.push(start([CLI, 'serve', '--config', config], 'gateway'));
    await waitFor(async () => {
      const health = await (await fetch(`${gatewayUrl}/health`)).json();
      return health.pool.workers.filter((w: { state: string }) => w.state === 'idle').length === sessions;
    }, 60_000, 'gateway pool');
    await new Promise((r) => setTimeout(r, 1000));
    const rssBefore = await metric(gatewayUrl, 'quillman_gateway_process_resident_memory_bytes');
    const load = runLoadProcess({ urls: [`ws://127.0.0.1:${gatewayPort}/api/chat`], sessions, seconds, warmupSeconds });
    // Measure CPU over the steady part only: from the end of warm-up to just before the end.
    await new Promise((r) => setTimeout(r, (warmupSeconds + 1) * 1000));
    const cpu0 = await metric(gatewayUrl, 'quillman_gateway_process_cpu_seconds_total');
    const t0 = performance.now();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => void metric(gatewayUrl, 'quillman_gateway_process_resident_memory_bytes').then((v) => (rssPeak = Math.max(rssPeak, v))), 1000);
    await new Promise((r) => setTimeout(r, (seconds - 2) * 1000));
    const cpu1 = await metric(gatewayUrl, 'quillman_gateway_process_cpu_seconds_total');
    const elapsed = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const viaGateway = await load;
    return {
      sessions,
      echo,
      direct,
      viaGateway,
      cpuPerSession: (cpu1 - cpu0) / elapsed / sessions,
      memPerSessionKiB: Math.max(0, rssPeak - rssBefore) / 1024 / sessions,
    };
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  }
}

/**
 * Loopback workers decode and encode Opus; past ~200 conversations that work
 * alone saturates a 2-core machine and swamps what is being measured. Levels
 * at or above `echoFrom` are run a second time with echo workers (pages
 * returned untouched), which isolate the gateway.
 */
export async function benchRelay(levels: number[], seconds: number, echoFrom = 200): Promise<void> {
  const rows: Row[] = [];
  const runs = levels.flatMap((n) => (n >= echoFrom ? [{ n, echo: false }, { n, echo: true }] : [{ n, echo: false }]));
  // Below Linux's ephemeral range (32768+), where the previous level's client sockets may still sit.
  let basePort = 21_000;
  for (const { n, echo } of runs) {
    process.stderr.write(`relay bench: ${n} conversation(s)${echo ? ' (echo workers)' : ''}, ${seconds} s each way…\n`);
    rows.push(await level(n, seconds, basePort, 20_500, echo));
    basePort += 1000;
  }
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
  printTable(
    `Gateway relay (loopback workers, 12.5 frames/s each way) — ${machineLine()}`,
    ['conversations', 'workers', 'frames', 'direct p50', 'direct p99', 'gateway p50', 'gateway p99', 'added p50 ms', 'added p99 ms', 'CPU/conv (% core)', 'RSS/conv (KiB)'],
    rows.map((r) => [
      String(r.sessions),
      r.echo ? 'echo' : 'loopback',
      String(r.viaGateway.frames),
      ms(r.direct.p50),
      ms(r.direct.p99),
      ms(r.viaGateway.p50),
      ms(r.viaGateway.p99),
      ms(r.viaGateway.p50 - r.direct.p50),
      ms(r.viaGateway.p99 - r.direct.p99),
      (r.cpuPerSession * 100).toFixed(3),
      r.memPerSessionKiB.toFixed(0),
    ]),
  );
  for (const r of rows) {
    const errs = [...r.direct.errors, ...r.viaGateway.errors];
    if (r.direct.connected < r.sessions || r.viaGateway.connected < r.sessions || errs.length) {
      process.stdout.write(`note: ${r.sessions} conversations: connected direct ${r.direct.connected}, via gateway ${r.viaGateway.connected}; errors: ${errs.slice(0, 3).join('; ')}\n`);
    }
  }
}
