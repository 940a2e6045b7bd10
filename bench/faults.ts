/**
 * Faults under load: N conversations (50) through `quillman serve` with
 * loopback workers, for a set time, while workers are killed at random
 * (SIGKILL) and clients vanish mid-frame. Measures what the reliability
 * issue asks:
 *
 * - every caller whose worker was killed gets a clear error (kind-5 frame,
 *   close 1011), and how soon after the kill;
 * - conversations nobody disturbed see no gap in their reply audio (the
 *   longest silence between reply pages of each live conversation);
 * - the pool recovers: once the clients leave, every worker is idle again;
 * - nothing leaks: worker processes, the gateway's file descriptors, and
 *   its memory (RSS and heap, sampled every 5 s, slope per minute by least
 *   squares over each minute's lowest sample, after the first minute).
 *
 *   npm run bench -- faults [--minutes 10] [--conversations 50] [--kill-every 20] [--vanish-every 20] [--source]
 *
 * Everything runs on this machine: the gateway and its workers in their own
 * processes, the clients in this one. A benchmark, not a test: it prints a
 * table and exits 1 only when a requirement was missed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { OggOpusEncoder } from '../src/audio/opus-stream.js';
import { encodeAudio } from '../src/protocol/frames.js';
import { CLI_ARGS, REPO } from '../test/helpers/gateway.js';
import { shellQuote } from '../src/util/shell-quote.js';
import { freePort } from '../test/helpers/net.js';
import { MARKER_VARIABLE, newMarker, processesWithMarker, stopProcessGroup } from '../test/helpers/processes.js';
import { machineLine, printTable } from './lib/report.js';

/** The built CLI, as deployed; `--source` runs the sources through tsx instead (no build needed, slower start). */
const FROM_SOURCE = process.argv.includes('--source');
const CLI_ARGV = FROM_SOURCE ? CLI_ARGS : [resolve(REPO, 'dist/cli/main.js')];

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

const MINUTES = flag('minutes', 10);
const CONVERSATIONS = Math.round(flag('conversations', 50));
const KILL_EVERY_S = flag('kill-every', 20);
const VANISH_EVERY_S = flag('vanish-every', 20);
/** A client told of its fault waits this long before it starts a new conversation. */
const RECONNECT_AFTER_MS = 1000;
const PAGE_MS = 80;
const SAMPLE_EVERY_MS = 5_000;
/** What counts as a gap in reply audio that arrives every 80 ms. */
const GAP_MS = 500;

const log = (line: string) => process.stderr.write(`[faults] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Exponentially distributed waits: faults at random moments, `meanS` apart on average. */
const randomWait = (meanS: number) => -Math.log(1 - Math.random()) * meanS * 1000;

/** 10 s of a wavering tone as Ogg pages of 80 ms (four 20 ms packets each), looped by every client. */
function encodeSource(): { headers: Uint8Array[]; pages: Uint8Array[] } {
  const encoder = new OggOpusEncoder({ packetsPerPage: 4 });
  const pcm = new Float32Array(24_000 * 10).map((_, i) => 0.2 * Math.sin((2 * Math.PI * (220 + 60 * Math.sin(i / 24_000)) * i) / 24_000));
  const headers = encoder.headers();
  return { headers, pages: encoder.encode(pcm) };
}

interface Segment {
  /** One conversation of one client: from connect to close. */
  startedAt: number;
  liveAt?: number;
  worker?: string;
  lastAudioAt?: number;
  maxGapMs: number;
  gapsOver: number;
  errorAt?: number;
  errorText?: string;
  closedAt?: number;
  closeCode?: number;
  fault?: 'killed' | 'vanished';
  killedAt?: number;
}

class Caller {
  ws?: WebSocket;
  segment?: Segment;
  readonly segments: Segment[] = [];
  private next = 0;
  stopped = false;

  constructor(
    private readonly url: string,
    private readonly source: { headers: Uint8Array[]; pages: Uint8Array[] },
  ) {}

  connect(): void {
    if (this.stopped) return;
    const segment: Segment = { startedAt: performance.now(), maxGapMs: 0, gapsOver: 0 };
    this.segment = segment;
    this.segments.push(segment);
    this.next = 0;
    const ws = new WebSocket(this.url, { perMessageDeflate: false });
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      switch (data[0]) {
        case 0:
          segment.liveAt = now;
          for (const h of this.source.headers) ws.send(encodeAudio(h));
          break;
        case 1:
          if (segment.lastAudioAt !== undefined) {
            const gap = now - segment.lastAudioAt;
            segment.maxGapMs = Math.max(segment.maxGapMs, gap);
            if (gap > GAP_MS) segment.gapsOver++;
          }
          segment.lastAudioAt = now;
          break;
        case 4: {
          const event = JSON.parse(data.subarray(1).toString()) as { type?: string; worker?: string };
          if (event.type === 'session') segment.worker = event.worker;
          break;
        }
        case 5:
          segment.errorAt ??= now;
          segment.errorText ??= data.subarray(1).toString();
          break;
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      segment.closedAt = performance.now();
      segment.closeCode = code;
      if (this.ws === ws) this.ws = undefined;
      setTimeout(() => this.connect(), RECONNECT_AFTER_MS);
    });
  }

  /** Called every 80 ms: the next page of the microphone. */
  tick(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.segment?.liveAt === undefined) return;
    ws.send(encodeAudio(this.source.pages[this.next++ % this.source.pages.length]));
  }

  /** The client's network goes away in the middle of a frame: a header promising 1000 bytes, 10 of them, then nothing. */
  vanish(): void {
    const ws = this.ws;
    if (!ws || !this.segment) return;
    this.segment.fault = 'vanished';
    const socket = (ws as unknown as { _socket?: Socket })._socket;
    socket?.write(Buffer.from([0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    socket?.destroy();
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close(1000);
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 200);
  } catch {
    return '(gone)';
  }
}

/** A worker process (the marker is also on the pool's watchdog, and on tsx's esbuild service with --source). */
const isWorker = (pid: number) => / worker --engine /.test(commandLine(pid));

function gatewayStats(pid: number): { rssKiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN), fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

interface PoolWorker {
  id: string;
  state: string;
  pid?: number;
}

async function poolWorkers(url: string): Promise<PoolWorker[]> {
  const health = (await (await fetch(`${url}/health`)).json()) as { pool: { workers: PoolWorker[] } };
  return health.pool.workers;
}

/** The lowest RSS and heap sample of each whole minute, at that minute. */
function perMinuteLows(samples: { minute: number; rssKiB: number; heapKiB: number }[]): { minute: number; rssKiB: number; heapKiB: number }[] {
  const byMinute = new Map<number, { minute: number; rssKiB: number; heapKiB: number }>();
  for (const s of samples) {
    const m = Math.floor(s.minute);
    const low = byMinute.get(m);
    byMinute.set(m, { minute: m + 0.5, rssKiB: Math.min(low?.rssKiB ?? Infinity, s.rssKiB), heapKiB: Math.min(low?.heapKiB ?? Infinity, s.heapKiB) });
  }
  return [...byMinute.values()];
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? NaN : num / den;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

async function main(): Promise<void> {
  if (!FROM_SOURCE && !existsSync(CLI_ARGV[0])) throw new Error('dist/cli/main.js is missing: run this through `npm run bench -- faults`, which builds first, or add --source');
  const marker = newMarker();
  const port = await freePort();
  const basePort = 40_000 + (process.pid % 100) * 100;
  const warm = CONVERSATIONS + 2;
  const url = `http://127.0.0.1:${port}`;
  const workerCommand = `${[process.execPath, ...CLI_ARGV].map(shellQuote).join(' ')} worker --engine loopback --packets-per-page 4 --port {port}`;
  const gateway: ChildProcess = spawn(
    process.execPath,
    [...CLI_ARGV, 'serve', '--engine', 'loopback', '--host', '127.0.0.1', '--port', String(port), '--warm', String(warm), '--max-workers', String(CONVERSATIONS + 8), '--max-queue', String(CONVERSATIONS * 2),
      '--worker-base-port', String(basePort), '--worker-command', workerCommand,
      // Conversations that nothing disturbs last the whole run: not cut by the length cap.
      '--max-conversation', String((MINUTES + 10) * 60),
      // Every caller comes from 127.0.0.1 here: per-address limits would measure themselves, not faults.
      '--max-connections-per-address', '0', '--max-queued-per-address', '0', '--conversations-per-minute', '0'],
    { cwd: REPO, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, [MARKER_VARIABLE]: marker, QUILLMAN_LOG_LEVEL: 'warn', QUILLMAN_LOG_FORMAT: 'json' } },
  );
  let gatewayLog = '';
  gateway.stderr!.on('data', (d: Buffer) => (gatewayLog = (gatewayLog + d.toString()).slice(-20_000)));
  const callers: Caller[] = [];
  try {
    log(`starting the gateway and ${warm} loopback workers…`);
    await waitFor(`${warm} idle workers`, 300_000, async () => (await poolWorkers(url)).filter((w) => w.state === 'idle').length >= warm);
    const gatewayPid = gateway.pid!;
    const idle = gatewayStats(gatewayPid);
    const source = encodeSource();
    for (let i = 0; i < CONVERSATIONS; i++) callers.push(new Caller(`ws://127.0.0.1:${port}/api/chat`, source));
    callers.forEach((c) => c.connect());
    const mic = setInterval(() => callers.forEach((c) => c.tick()), PAGE_MS);
    await waitFor('every conversation live', 60_000, async () => callers.every((c) => c.segment?.lastAudioAt !== undefined));
    const loaded = gatewayStats(gatewayPid);
    log(`${CONVERSATIONS} conversations live; faults for ${MINUTES} min (a kill every ~${KILL_EVERY_S} s, a vanishing client every ~${VANISH_EVERY_S} s)`);

    const startedAt = performance.now();
    const endAt = startedAt + MINUTES * 60_000;
    // This process receives every reply: when it stalls, every conversation seems to. Count its own stalls, and the machine's load.
    let selfStalls = 0;
    let selfWorstMs = 0;
    let maxLoad = 0;
    let expectedTick = performance.now() + 100;
    const selfMonitor = setInterval(() => {
      const late = performance.now() - expectedTick;
      expectedTick = performance.now() + 100;
      if (late > 250) selfStalls++;
      selfWorstMs = Math.max(selfWorstMs, late);
      maxLoad = Math.max(maxLoad, loadavg()[0]);
    }, 100);
    const samples: { minute: number; rssKiB: number; heapKiB: number; fds: number }[] = [];
    let kills = 0;
    let vanishes = 0;
    let running = true;

    const killer = (async () => {
      while (running) {
        await sleep(randomWait(KILL_EVERY_S));
        if (!running) break;
        const candidates = callers.filter((c) => c.segment?.liveAt !== undefined && c.segment.worker && !c.segment.fault && c.segment.closedAt === undefined);
        const victim = candidates[Math.floor(Math.random() * candidates.length)];
        if (!victim) continue;
        const worker = (await poolWorkers(url)).find((w) => w.id === victim.segment!.worker);
        if (!worker?.pid || victim.segment!.fault || victim.segment!.closedAt !== undefined) continue;
        victim.segment!.fault = 'killed';
        victim.segment!.killedAt = performance.now();
        try {
          process.kill(worker.pid, 'SIGKILL');
          kills++;
        } catch {
          victim.segment!.fault = undefined;
        }
      }
    })();
    const vanisher = (async () => {
      while (running) {
        await sleep(randomWait(VANISH_EVERY_S));
        if (!running) break;
        const candidates = callers.filter((c) => c.segment?.liveAt !== undefined && !c.segment.fault && c.segment.closedAt === undefined);
        const victim = candidates[Math.floor(Math.random() * candidates.length)];
        if (!victim) continue;
        victim.vanish();
        vanishes++;
      }
    })();
    const sampler = setInterval(async () => {
      try {
        const stats = gatewayStats(gatewayPid);
        const metrics = await scrape(url);
        samples.push({ minute: (performance.now() - startedAt) / 60_000, rssKiB: stats.rssKiB, heapKiB: (metrics.get('quillman_gateway_nodejs_heap_size_used_bytes') ?? NaN) / 1024, fds: stats.fds });
        const elapsed = Math.round((performance.now() - startedAt) / 1000);
        if (elapsed % 60 < SAMPLE_EVERY_MS / 1000) log(`${Math.round(elapsed / 60)} min: ${kills} workers killed, ${vanishes} clients vanished, gateway RSS ${Math.round(stats.rssKiB / 1024)} MiB, ${stats.fds} fds`);
      } catch {
        // The gateway busy for a moment: the next sample will do.
      }
    }, SAMPLE_EVERY_MS);

    await sleep(endAt - performance.now());
    running = false;
    clearInterval(sampler);
    clearInterval(selfMonitor);
    await Promise.all([killer, vanisher]);
    // Let the last faults play out and the callers they hit come back.
    await sleep(5000 + RECONNECT_AFTER_MS);
    await waitFor('every caller live again', 120_000, async () => callers.every((c) => c.segment?.lastAudioAt !== undefined && c.segment.closedAt === undefined));
    const reloaded = gatewayStats(gatewayPid);
    const metricsAtEnd = await scrape(url);
    const stallsAtEnd = ((await (await fetch(`${url}/health`)).json()) as { eventLoop: { stalls: unknown[] } }).eventLoop.stalls;

    clearInterval(mic);
    const leftAt = performance.now();
    callers.forEach((c) => c.stop());
    const recoveredIn = await waitFor('every worker idle again', 120_000, async () => {
      const workers = await poolWorkers(url);
      return workers.length >= warm && workers.every((w) => w.state === 'idle') && (performance.now() - leftAt) / 1000;
    }).catch(() => NaN);
    const workers = await poolWorkers(url);
    const workerPids = new Set(workers.map((w) => w.pid));
    const running_ = processesWithMarker(marker).filter((pid) => pid !== gatewayPid);
    const strays = running_.filter((pid) => !workerPids.has(pid) && isWorker(pid));
    for (const pid of strays) log(`not in the pool: ${pid} ${commandLine(pid)}`);
    const strayWorkers = strays.length;
    await sleep(6000); // keep-alive connections of the last requests expire (5 s)
    const after = gatewayStats(gatewayPid);

    await stopProcessGroup(gateway, 15_000);
    await sleep(2000);
    const leftBehind = processesWithMarker(marker).length;

    // ---- results
    const segments = callers.flatMap((c) => c.segments);
    const killed = segments.filter((s) => s.fault === 'killed');
    const told = killed.filter((s) => s.errorAt !== undefined && s.killedAt !== undefined && s.closeCode === 1011);
    const latencies = told.map((s) => s.errorAt! - s.killedAt!);
    const within1s = latencies.filter((ms) => ms <= 1000).length;
    const undisturbed = segments.filter((s) => !s.fault && s.liveAt !== undefined && s.lastAudioAt !== undefined);
    const undisturbedEnded = undisturbed.filter((s) => s.closedAt !== undefined && s.closeCode !== 1000 && s.closeCode !== 1005 && s.closeCode !== 4000);
    const gaps = undisturbed.map((s) => s.maxGapMs);
    // The heap rises between collections and falls at each: each minute's lowest sample is close to what is live.
    const steady = perMinuteLows(samples.filter((s) => s.minute >= Math.min(1, MINUTES / 2)));
    const rssSlope = slope(steady.map((s) => [s.minute, s.rssKiB]));
    const heapSlope = slope(steady.map((s) => [s.minute, s.heapKiB]));
    const stalls = (cause: string) => metricsAtEnd.get(`quillman_gateway_event_loop_stalls_total{cause="${cause}"}`) ?? 0;

    const rows: [string, string, boolean][] = [
      ['duration, conversations', `${MINUTES} min, ${CONVERSATIONS} at once, ${segments.length} in all`, true],
      ['workers killed (SIGKILL)', String(kills), true],
      ['their callers told (kind-5 error, close 1011)', `${told.length} of ${killed.length}`, told.length === killed.length],
      ['time from kill to the error: p50 / p99 / max', `${percentile(latencies, 50).toFixed(0)} / ${percentile(latencies, 99).toFixed(0)} / ${Math.max(0, ...latencies).toFixed(0)} ms`, within1s === killed.length],
      ['clients vanished mid-frame', String(vanishes), true],
      ['undisturbed conversations: longest reply gap, p50 / p99 / max', `${percentile(gaps, 50).toFixed(0)} / ${percentile(gaps, 99).toFixed(0)} / ${Math.max(0, ...gaps).toFixed(0)} ms`, true],
      [`undisturbed conversations with a gap over ${GAP_MS} ms`, `${undisturbed.filter((s) => s.gapsOver > 0).length} of ${undisturbed.length}`, undisturbed.every((s) => s.gapsOver === 0)],
      ['undisturbed conversations ended by an error', String(undisturbedEnded.length), undisturbedEnded.length === 0],
      ['pool recovered: every worker idle after the callers left', Number.isNaN(recoveredIn) ? 'no' : `yes, ${recoveredIn.toFixed(1)} s`, !Number.isNaN(recoveredIn)],
      ['worker processes not in the pool', String(strayWorkers), strayWorkers === 0],
      [`gateway fds: idle → ${CONVERSATIONS} live → ${CONVERSATIONS} live at the end → idle again`, `${idle.fds} → ${loaded.fds} → ${reloaded.fds} → ${after.fds}`, after.fds <= idle.fds + 2],
      ['gateway RSS: idle → end; slope of the per-minute lows after minute 1', `${(idle.rssKiB / 1024).toFixed(0)} → ${(reloaded.rssKiB / 1024).toFixed(0)} MiB; ${rssSlope.toFixed(0)} KiB/min`, true],
      ['gateway heap used: slope of the per-minute lows after minute 1', `${heapSlope.toFixed(0)} KiB/min`, true],
      ['gateway event-loop stalls over 250 ms (own work / machine)', `${stalls('gateway')} / ${stalls('machine')}`, true],
      ['load generator (this process): stalls over 250 ms, worst', `${selfStalls}, ${selfWorstMs.toFixed(0)} ms`, true],
      [`machine: highest 1-minute load average (${cpus().length} cores)`, maxLoad.toFixed(1), true],
      ['processes left after the gateway stopped', String(leftBehind), leftBehind === 0],
    ];
    printTable(`Faults under load, ${machineLine()}`, ['what', 'measured', 'ok'], rows.map(([what, value, ok]) => [what, value, ok ? 'yes' : 'NO']));
    const slow = killed.filter((s) => s.errorAt === undefined || s.errorAt - s.killedAt! > 1000);
    for (const s of slow.slice(0, 5)) log(`slow or missing error: worker ${s.worker}, ${s.errorAt === undefined ? 'none' : `${(s.errorAt - s.killedAt!).toFixed(0)} ms`}, close ${s.closeCode}`);
    for (const s of undisturbed.filter((x) => x.gapsOver > 0).slice(0, 5)) log(`gap: worker ${s.worker}, longest ${s.maxGapMs.toFixed(0)} ms`);
    if (stallsAtEnd.length) log(`the gateway's last event-loop stalls: ${JSON.stringify(stallsAtEnd)}`);
    for (const s of undisturbedEnded.slice(0, 10)) log(`ended without a fault of ours: worker ${s.worker}, close ${s.closeCode}, ${s.errorText ?? 'no error frame'}`);
    process.exitCode = rows.every(([, , ok]) => ok) ? 0 : 1;
  } catch (err) {
    log(`failed: ${(err as Error).message}\n${gatewayLog.slice(-3000)}`);
    process.exitCode = 1;
  } finally {
    callers.forEach((c) => c.stop());
    await stopProcessGroup(gateway, 15_000).catch(() => undefined);
    for (const pid of processesWithMarker(marker)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

await main();
