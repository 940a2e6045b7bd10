/**
 * Relay benchmark: what the gateway alone costs per relayed frame and how
 * much latency it adds, with a minimal Python relay (aiohttp, the way a
 * FastAPI server in front of a model forwards a websocket) beside it under
 * the same load.
 *
 * Every level runs the same conversations, 12.5 frames/s each way, three
 * ways against the same workers: straight to them, through the gateway and
 * through the Python relay; each `--runs` times, in a rotating order so that
 * a change in the machine's background load does not favour one path.
 *
 * Isolation, so that what is measured is the relay and not the machine:
 * - the relay under test (one at a time) is pinned to core 0, the workers and
 *   the load generator to the other cores (taskset);
 * - the relay's own CPU time (utime + stime from /proc) per relayed frame is
 *   the figure that other load on the machine does not move; latency is
 *   reported beside it, with how long the relay's event loop waited for its
 *   core (schedstat) and how busy every core was, because other load does
 *   move latency;
 * - workers return pages as they come (`--echo-pages`, no Opus work): with
 *   Opus, 500 loopback workers alone fill two cores, and the figure measured
 *   the machine, not the gateway. Echo workers and the load generator keep
 *   their core below saturation up to about 800 conversations.
 *
 *   npm run bench -- relay [levels=100,300,600] [seconds=10] [--runs 3] [--no-python] [--no-pin] [--workers echo|loopback] [--warmup 3]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO } from '../test/helpers/gateway.js';
import { machineLine, printTable } from './lib/report.js';
import { FRAME_MS, type ClientsResult, type ClientsSpec } from './relay-clients.js';
import { processRssBytes } from './relay-procfs.js';
import { PYTHON_RELAY_SCRIPT, pythonRelayEnv } from './relay-python.js';

const CLI = resolve(REPO, 'dist/cli/main.js');
const CLIENTS = resolve(import.meta.dirname, 'relay-clients.ts');
const SLOTS_PER_PROCESS = 125;
/** Frames through a relay per conversation per second: one 80 ms frame each way. */
const FRAMES_PER_CONVERSATION = (2 * 1000) / FRAME_MS;
/** Bounds: a level past this many conversations, or more levels, is refused rather than attempted. */
export const MAX_CONVERSATIONS = 2000;
const MAX_LEVELS = 8;

export interface RelayBenchOptions {
  levels: number[];
  seconds: number;
  runs: number;
  warmupSeconds: number;
  python: boolean;
  pin: boolean;
  workers: 'echo' | 'loopback';
}

export const RELAY_DEFAULTS: RelayBenchOptions = { levels: [100, 300, 600], seconds: 10, runs: 3, warmupSeconds: 3, python: true, pin: true, workers: 'echo' };

type PathName = 'direct' | 'gateway' | 'python';

interface Measurement {
  level: number;
  path: PathName;
  run: number;
  result: ClientsResult;
  /** The relay's RSS once ready, before any conversation. */
  idleRssBytes: number;
}

interface Placement {
  relay?: string;
  rest?: string;
  relayCore?: number;
  describe: string;
}

function say(line: string): void {
  process.stderr.write(`relay bench: ${line}\n`);
}

function placement(pin: boolean): Placement {
  const cores = availableParallelism();
  if (!pin) return { describe: 'not pinned (--no-pin): relay, workers and load generator share every core' };
  if (cores < 2) return { describe: 'not pinned: this machine has one core' };
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
  } catch {
    return { describe: 'not pinned: taskset is missing (Debian: apt-get install util-linux)' };
  }
  const rest = cores === 2 ? '1' : `1-${cores - 1}`;
  return { relay: '0', rest, relayCore: 0, describe: `relay under test pinned to core 0; workers and load generator to core${cores > 2 ? 's' : ''} ${rest}` };
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? process.platform;
  } catch {
    return process.platform;
  }
}

interface Child {
  proc: ChildProcess;
  name: string;
  exited: Promise<void>;
}

function launch(cores: string | undefined, cmd: string, args: string[], name: string): Child {
  const [file, argv] = cores ? ['taskset', ['-c', cores, cmd, ...args]] : [cmd, args];
  // taskset execs the command in place: the pid is the relay's own, which /proc is read for.
  const proc = spawn(file, argv, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, QUILLMAN_LOG_LEVEL: 'warn', QUILLMAN_LOG_FORMAT: 'json' } });
  let tail = '';
  proc.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-2000)));
  const exited = new Promise<void>((r) => proc.once('exit', (code, signal) => {
    if (code) process.stderr.write(`${name} exited ${code ?? signal}: ${tail}\n`);
    r();
  }));
  proc.once('error', (err) => process.stderr.write(`${name} could not start: ${err.message}\n`));
  return { proc, name, exited };
}

async function stop(children: Child[]): Promise<void> {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
  await Promise.race([Promise.all(children.map((c) => c.exited)), new Promise((r) => setTimeout(r, 5000))]);
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, alive?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (alive && alive.proc.exitCode !== null) throw new Error(`${alive.name} exited while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function workersIdle(healthUrls: string[]): Promise<boolean> {
  const states = await Promise.all(healthUrls.map((u) => fetch(u).then(async (r) => (r.ok ? ((await r.json()) as { status: string }).status : 'down'))));
  return states.every((s) => s === 'idle');
}

function runClients(spec: ClientsSpec, cores: string | undefined): Promise<ClientsResult> {
  return new Promise((done, fail) => {
    const [file, argv] = cores ? ['taskset', ['-c', cores, process.execPath]] : [process.execPath, []];
    const child = spawn(file, [...argv, '--import', 'tsx', CLIENTS, JSON.stringify(spec)], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    // The generator bounds itself (warm-up + seconds + drain); this only catches a wedged one.
    const timer = setTimeout(() => child.kill('SIGKILL'), (spec.warmupSeconds + spec.seconds + 60) * 1000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) done(JSON.parse(out) as ClientsResult);
      else fail(new Error(`load generator exited ${code}`));
    });
  });
}

async function level(n: number, opts: RelayBenchOptions, where: Placement, python: string | undefined, ports: { workers: number; gateway: number; python: number }, out: Measurement[]): Promise<void> {
  const workers: Child[] = [];
  const urls: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'quillman-relay-bench-'));
  try {
    for (let p = 0; p * SLOTS_PER_PROCESS < n; p++) {
      const slots = Math.min(SLOTS_PER_PROCESS, n - p * SLOTS_PER_PROCESS);
      const port = ports.workers + p * SLOTS_PER_PROCESS;
      const mode = opts.workers === 'echo' ? ['--echo-pages'] : ['--loopback-text-interval-ms', '0'];
      workers.push(launch(where.rest, process.execPath, [CLI, 'worker', '--engine', 'loopback', ...mode, '--packets-per-page', '4', '--port', String(port), '--slots', String(slots)], `workers@${port}`));
      for (let s = 0; s < slots; s++) urls.push(`ws://127.0.0.1:${port + s}/api/chat`);
    }
    const health = urls.map((u) => u.replace('ws:', 'http:').replace('/api/chat', '/health'));
    await waitFor(() => workersIdle(health), 60_000 + n * 100, `${n} workers`);

    const config = join(dir, 'gateway.json');
    // Every conversation comes from 127.0.0.1 here: no per-address limits (docs/security.md).
    const unlimited = { maxConnectionsPerAddress: 0, maxQueuedPerAddress: 0, maxNewConversationsPerMinute: 0 };
    await writeFile(config, JSON.stringify({ gateway: { host: '127.0.0.1', port: ports.gateway, ...unlimited }, pool: { provider: 'remote', maxWorkers: n, warm: 0, maxQueue: 0, remote: { urls, healthIntervalSeconds: 30 } } }));
    const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
    const pythonUrl = `http://127.0.0.1:${ports.python}`;

    const paths: PathName[] = python ? ['direct', 'gateway', 'python'] : ['direct', 'gateway'];
    const spec = { sessions: n, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds };
    for (let run = 0; run < opts.runs; run++) {
      const order = paths.map((_, i) => paths[(i + run) % paths.length]);
      for (const path of order) {
        say(`${n} conversation(s), run ${run + 1}/${opts.runs}: ${path}…`);
        await waitFor(() => workersIdle(health), 30_000, 'the workers to be free again');
        if (path === 'direct') {
          out.push({ level: n, path, run, idleRssBytes: NaN, result: await runClients({ ...spec, urls }, where.rest) });
          continue;
        }
        // One relay on its core at a time, started afresh for each run: each run's memory figure starts from an idle relay.
        const relay =
          path === 'gateway'
            ? launch(where.relay, process.execPath, [CLI, 'serve', '--config', config], 'gateway')
            : launch(where.relay, python!, [PYTHON_RELAY_SCRIPT, '--port', String(ports.python), ...urls.flatMap((u) => ['--upstream', u])], 'python relay');
        try {
          await waitFor(
            path === 'gateway'
              ? async () => ((await (await fetch(`${gatewayUrl}/health`)).json()) as { pool: { workers: { state: string }[] } }).pool.workers.filter((w) => w.state === 'idle').length === n
              : async () => ((await (await fetch(`${pythonUrl}/health`)).json()) as { free: number }).free === n,
            60_000,
            `the ${path} relay`,
            relay,
          );
          // Let start-up work (JIT of the first requests, the pool's first checks) settle before the idle reading.
          await new Promise((r) => setTimeout(r, 1000));
          const pid = relay.proc.pid!;
          const idleRssBytes = processRssBytes(pid);
          const relayUrl = path === 'gateway' ? `ws://127.0.0.1:${ports.gateway}/api/chat` : `ws://127.0.0.1:${ports.python}/api/chat`;
          out.push({ level: n, path, run, idleRssBytes, result: await runClients({ ...spec, urls: [relayUrl], relayPid: pid }, where.rest) });
        } finally {
          await stop([relay]);
        }
      }
    }
  } finally {
    await stop(workers);
    await rm(dir, { recursive: true, force: true });
  }
}


const median = (v: number[]) => {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** "median (min–max)" over the runs: the spread is what tells a real difference from the machine's mood. */
function spread(v: number[], digits: number): string {
  const f = v.filter(Number.isFinite);
  if (!f.length) return 'n/a';
  const m = median(f).toFixed(digits);
  if (f.length === 1) return m;
  return `${m} (${Math.min(...f).toFixed(digits)}–${Math.max(...f).toFixed(digits)})`;
}

interface RunFigures {
  run: number;
  addedP50: number;
  addedP99: number;
  p50: number;
  p99: number;
  /** CPU microseconds per relayed frame, fixed costs included. */
  cpuUsPerFrame: number;
  /** Share of one core the relay used. */
  cpuCore: number;
  /** Part of the relay's CPU spent in the kernel. */
  kernelShare: number;
  /** Part of the relay's CPU spent by threads other than the event loop's (GC, JIT). */
  helperShare: number;
  /** Share of the window the event loop's thread was ready to run but waited for a core. */
  waitedForCore: number;
  framesPerSecond: number;
  rssPerConvKiB: number;
  relayCoreBusy: number;
  otherCoresBusy: number;
}

function figures(all: Measurement[], n: number, path: PathName, relayCore: number | undefined): RunFigures[] {
  return all
    .filter((m) => m.level === n && m.path === path)
    .map((m) => {
      const direct = all.find((d) => d.level === n && d.path === 'direct' && d.run === m.run)?.result;
      const r = m.result;
      const busy = r.coreBusy;
      const others = busy.filter((_, i) => i !== (relayCore ?? -1));
      return {
        run: m.run,
        p50: r.p50,
        p99: r.p99,
        addedP50: direct ? r.p50 - direct.p50 : NaN,
        addedP99: direct ? r.p99 - direct.p99 : NaN,
        cpuUsPerFrame: (r.relayCpuSeconds / r.relayed) * 1e6,
        cpuCore: r.relayCpuSeconds / r.windowSeconds,
        kernelShare: r.relaySystemSeconds / r.relayCpuSeconds,
        helperShare: r.relayThreads.helpersRunNs / (r.relayThreads.helpersRunNs + r.relayThreads.mainRunNs),
        waitedForCore: r.relayThreads.mainWaitNs / 1e9 / r.windowSeconds,
        framesPerSecond: r.relayed / r.windowSeconds,
        rssPerConvKiB: Math.max(0, r.relayPeakRssBytes - m.idleRssBytes) / 1024 / n,
        relayCoreBusy: relayCore === undefined ? NaN : busy[relayCore],
        otherCoresBusy: others.length ? others.reduce((a, b) => a + b, 0) / others.length : NaN,
      };
    });
}

/**
 * Where a relay reaches one core: its CPU share against conversations, a
 * straight line through every level of one run (fixed cost + cost per
 * conversation), solved for 100 %. One estimate per run gives the spread.
 * With one level only, that level's CPU per frame stands for the slope.
 */
function conversationsPerCore(all: Measurement[], levels: number[], path: PathName, relayCore: number | undefined, runs: number): { perRun: number[]; fixedCore: number[]; marginalUs: number[] } {
  const perRun: number[] = [];
  const fixedCore: number[] = [];
  const marginalUs: number[] = [];
  for (let run = 0; run < runs; run++) {
    const pts = levels.flatMap((n) => figures(all, n, path, relayCore).filter((f) => f.run === run && Number.isFinite(f.cpuCore)).map((f) => ({ x: n, y: f.cpuCore })));
    if (pts.length === 0) continue;
    if (pts.length === 1) {
      const slope = pts[0].y / pts[0].x;
      perRun.push(1 / slope);
      fixedCore.push(0);
      marginalUs.push((slope / FRAMES_PER_CONVERSATION) * 1e6);
      continue;
    }
    const mx = pts.reduce((a, p) => a + p.x, 0) / pts.length;
    const my = pts.reduce((a, p) => a + p.y, 0) / pts.length;
    const slope = pts.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / pts.reduce((a, p) => a + (p.x - mx) ** 2, 0);
    const intercept = my - slope * mx;
    perRun.push((1 - intercept) / slope);
    fixedCore.push(intercept);
    marginalUs.push((slope / FRAMES_PER_CONVERSATION) * 1e6);
  }
  return { perRun, fixedCore, marginalUs };
}

export async function benchRelay(options: Partial<RelayBenchOptions> = {}): Promise<void> {
  const opts: RelayBenchOptions = { ...RELAY_DEFAULTS, ...options };
  const levels = [...new Set(opts.levels)].sort((a, b) => a - b);
  if (!levels.length || levels.length > MAX_LEVELS || levels.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_CONVERSATIONS)) {
    throw new Error(`levels must be 1 to ${MAX_LEVELS} whole numbers from 1 to ${MAX_CONVERSATIONS}, e.g. 10,100,300; got ${opts.levels.join(',')}`);
  }
  if (!(opts.seconds >= 2 && opts.seconds <= 600)) throw new Error(`seconds must be 2 to 600, got ${opts.seconds}`);
  if (!(Number.isInteger(opts.runs) && opts.runs >= 1 && opts.runs <= 10)) throw new Error(`--runs must be 1 to 10, got ${opts.runs}`);
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm run bench does it for you)`);

  const started = Date.now();
  const load0 = loadavg();
  const where = placement(opts.pin);

  let python: string | undefined;
  let pythonNote = '';
  if (opts.python) {
    const env = await pythonRelayEnv();
    if (env.ok) python = env.python;
    else {
      pythonNote = `Python relay skipped: ${env.why}`;
      say(pythonNote);
    }
  } else pythonNote = 'Python relay not run (--no-python)';

  const paths = python ? 3 : 2;
  const estimate = levels.reduce((t, n) => t + 5 + n * 0.02 + opts.runs * paths * (opts.warmupSeconds + opts.seconds + 4 + (n > 200 ? 2 : 0)), 0);
  say(`${levels.join(', ')} conversations × ${opts.runs} run(s) × ${paths} paths, ${opts.seconds} s each after ${opts.warmupSeconds} s of warm-up: about ${Math.ceil(estimate / 60)} min`);
  say(`load average at start: ${load0.map((v) => v.toFixed(2)).join(' ')}; ${where.describe}`);

  const measured: Measurement[] = [];
  // Below Linux's ephemeral range (32768+), where the previous level's client sockets may still sit.
  let basePort = 21_000;
  for (const [i, n] of levels.entries()) {
    if (basePort + n > 32_000) throw new Error('levels too large for the port range below 32000: use fewer or smaller levels');
    await level(n, opts, where, python, { workers: basePort, gateway: 20_500 + i, python: 20_600 + i }, measured);
    basePort += n + 100;
  }
  const load1 = loadavg();
  const minutes = (Date.now() - started) / 60_000;

  const relays: PathName[] = python ? ['gateway', 'python'] : ['gateway'];
  const label = { direct: 'direct', gateway: 'gateway', python: 'python relay' } as const;
  const rows: string[][] = [];
  for (const n of levels) {
    const direct = measured.filter((m) => m.level === n && m.path === 'direct').map((m) => m.result);
    const dBusy = (i: number) => direct.map((d) => d.coreBusy[i] ?? NaN);
    const restBusy = direct.map((d) => {
      const others = d.coreBusy.filter((_, i) => i !== (where.relayCore ?? -1));
      return others.reduce((a, b) => a + b, 0) / others.length;
    });
    rows.push([
      String(n),
      'direct',
      spread(direct.map((d) => d.relayed / d.windowSeconds), 0),
      spread(direct.map((d) => d.p50), 2),
      spread(direct.map((d) => d.p99), 2),
      '—',
      '—',
      '—',
      '—',
      '—',
      '—',
      '—',
      '—',
      where.relayCore === undefined ? 'n/a' : spread(dBusy(where.relayCore).map((v) => v * 100), 0),
      spread(restBusy.map((v) => v * 100), 0),
    ]);
    for (const path of relays) {
      const f = figures(measured, n, path, where.relayCore);
      rows.push([
        String(n),
        label[path],
        spread(f.map((x) => x.framesPerSecond), 0),
        spread(f.map((x) => x.p50), 2),
        spread(f.map((x) => x.p99), 2),
        spread(f.map((x) => x.addedP50), 2),
        spread(f.map((x) => x.addedP99), 2),
        spread(f.map((x) => x.cpuUsPerFrame), 1),
        spread(f.map((x) => x.kernelShare * 100), 0),
        spread(f.map((x) => x.cpuCore * 100), 1),
        spread(f.map((x) => x.helperShare * 100), 0),
        spread(f.map((x) => x.rssPerConvKiB), 0),
        spread(f.map((x) => x.waitedForCore * 100), 1),
        spread(f.map((x) => x.relayCoreBusy * 100), 0),
        spread(f.map((x) => x.otherCoresBusy * 100), 0),
      ]);
    }
  }
  const workersWord = opts.workers === 'echo' ? 'echo workers (pages returned as received)' : 'loopback workers (Opus decode + encode)';
  process.stdout.write(
    `\nRelay benchmark — ${machineLine()}, ${osName()}\n` +
      `${opts.seconds} s measured per run after ${opts.warmupSeconds} s of warm-up, ${opts.runs} run(s) per figure: median (min–max); ${workersWord}; 12.5 frames/s each way per conversation\n` +
      `${where.describe}\n` +
      `load average (1/5/15 min): ${load0.map((v) => v.toFixed(2)).join(' ')} at start, ${load1.map((v) => v.toFixed(2)).join(' ')} at end; took ${minutes.toFixed(1)} min\n` +
      (pythonNote ? `${pythonNote}\n` : ''),
  );
  printTable(
    'Round trips (ms), the relay\'s own CPU and memory, and how busy the cores were (% of each, whoever used them)',
    ['conversations', 'path', 'frames/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'CPU µs/frame', 'in kernel %', 'CPU % core', 'other threads %', 'RSS/conv KiB', 'loop waited for core %', 'relay core busy %', 'other core busy %'],
    rows,
  );

  const fits = Object.fromEntries(relays.map((p) => [p, conversationsPerCore(measured, levels, p, where.relayCore, opts.runs)])) as Record<PathName, ReturnType<typeof conversationsPerCore>>;
  const top = levels.at(-1)!;
  for (const path of relays) {
    const fit = fits[path];
    const below = levels.filter((n) => n < median(fit.perRun)).at(-1);
    const f = below === undefined ? [] : figures(measured, below, path, where.relayCore);
    // CPU per frame falls as load grows (more frames per wake-up, fixed costs spread thinner): the top level's
    // figure, fixed costs included, extrapolated flat, is a second and usually lower estimate.
    const flat = figures(measured, top, path, where.relayCore).map((x) => 1e6 / x.cpuUsPerFrame / FRAMES_PER_CONVERSATION);
    process.stdout.write(
      `${label[path]}: one core at ${spread(fit.perRun, 0)} conversations by a straight line through the levels ` +
        `(${spread(fit.fixedCore.map((v) => v * 100), 1)} % of a core fixed + ${spread(fit.marginalUs, 1)} µs per frame × ${FRAMES_PER_CONVERSATION} frames/s per conversation), ` +
        `${spread(flat, 0)} from the CPU per frame at ${top}` +
        (below === undefined ? '\n' : `; below that, at ${below} conversations, it adds p50 ${spread(f.map((x) => x.addedP50), 2)} ms, p99 ${spread(f.map((x) => x.addedP99), 2)} ms\n`),
    );
  }

  if (python) {
    const side: string[][] = levels.map((n) => {
      const g = figures(measured, n, 'gateway', where.relayCore);
      const p = figures(measured, n, 'python', where.relayCore);
      const ratio = g.map((x) => {
        const y = p.find((q) => q.run === x.run);
        return y ? y.cpuUsPerFrame / x.cpuUsPerFrame : NaN;
      });
      return [
        String(n),
        spread(g.map((x) => x.addedP99), 2),
        spread(p.map((x) => x.addedP99), 2),
        spread(g.map((x) => x.cpuUsPerFrame), 1),
        spread(p.map((x) => x.cpuUsPerFrame), 1),
        spread(ratio, 2),
      ];
    });
    printTable(
      'Side by side, same load, same workers, same core: gateway vs a minimal Python relay (aiohttp)',
      ['conversations', 'gateway added p99 ms', 'python added p99 ms', 'gateway CPU µs/frame', 'python CPU µs/frame', 'python/gateway CPU per frame'],
      side,
    );
    const g = fits.gateway.perRun;
    const p = fits.python.perRun;
    const ratio = g.map((x, i) => x / p[i]);
    process.stdout.write(`conversations per core (where each relay alone reaches one core): gateway ${spread(g, 0)}, python relay ${spread(p, 0)}; gateway/python ${spread(ratio, 2)}\n`);
  }

  for (const m of measured) {
    const r = m.result;
    const expected = m.level * FRAMES_PER_CONVERSATION;
    if (r.relayed / r.windowSeconds < 0.98 * expected) {
      process.stdout.write(`note: ${m.level} conversations, ${m.path}, run ${m.run + 1}: ${(r.relayed / r.windowSeconds).toFixed(0)} frames/s of ${expected}: the load generator or the relay fell behind, so its latency counts that too\n`);
    }
    const others = r.coreBusy.filter((_, i) => i !== (where.relayCore ?? -1));
    if (m.path === 'direct' && others.length && Math.min(...others) > 0.9) {
      process.stdout.write(`note: ${m.level} conversations, run ${m.run + 1}: the load generator's and workers' core${others.length > 1 ? 's were' : ' was'} over 90 % busy: latency at this level measures ${others.length > 1 ? 'them' : 'it'}, not the relay\n`);
    }
    if (r.connected < r.sessions || r.errors.length) {
      process.stdout.write(`note: ${m.level} conversations, ${m.path}, run ${m.run + 1}: ${r.connected}/${r.sessions} connected; ${r.errors.slice(0, 3).join('; ')}\n`);
    }
  }
  process.stdout.write('\n');
}
