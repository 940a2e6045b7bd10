/**
 * Browser benchmark on the loopback path: glass-to-glass latency and missed
 * audio in headless Chromium, through a websocket proxy that delays every
 * message by a random 0–40 ms (order preserved) between the gateway and the
 * browser. Our playout policy runs live; the arrival trace it saw is then
 * replayed through both policies (ours and Kyutai's) for a like-for-like
 * comparison. `--live-kyutai` also runs a second live session with Kyutai's.
 *
 *   node --import tsx bench/web-latency.ts [--seconds 120] [--jitter-ms 40] [--live-kyutai] [--trace-out FILE]
 *
 * Glass-to-glass: the capture worklet stamps each mic frame with its
 * AudioContext frame, the playout worklet stamps what it outputs the same
 * way; cross-correlating the two (per 2 s window of speech) gives the frame
 * lag from a sound entering the capture worklet to it leaving the playout
 * worklet. Adding the context's outputLatency and subtracting the loopback's
 * configured delay leaves the app's and the transport's own latency.
 */
import { writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { createPolicy, type PolicyName } from '../web/src/playout/create-policy.js';
import { percentile, seededRandom, simulate, type Arrival } from '../web/src/playout/simulation.js';
import { int16ToFloat } from '../src/audio/pcm.js';
import { windowedCorrelations } from '../test/helpers/signal.js';
import { speakToFile, tempDir } from '../test/helpers/speech.js';
import { launchBrowser, startGateway } from '../test/e2e/harness.js';
import { freePort } from '../test/helpers/net.js';

const args = process.argv.slice(2);
const SECONDS = Number(args[args.indexOf('--seconds') + 1]) || 120;
const LIVE_KYUTAI = args.includes('--live-kyutai');
/** Saves the live session's arrival trace (JSON [[clock, samples], …]) for offline analysis. */
const TRACE_OUT = args.includes('--trace-out') ? args[args.indexOf('--trace-out') + 1] : undefined;
const LOOPBACK_DELAY_MS = 200;
const JITTER_MS = args.includes('--jitter-ms') ? Number(args[args.indexOf('--jitter-ms') + 1]) : 40;
const RATE = 24_000;

/** HTTP passes through; websocket messages are delayed 0–40 ms each way, in order. */
async function startJitterProxy(target: number, seed: number): Promise<{ port: number; close: () => Promise<void> }> {
  const random = seededRandom(seed);
  const server: Server = createServer((req, res) => {
    const upstream = request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (client, req) => {
    const upstream = new WebSocket(`ws://127.0.0.1:${target}${req.url}`);
    const relay = (to: WebSocket) => {
      // One queue and one timer per direction: a timer per message can fire out of order (Node starts
      // timers from the event loop's cached clock), and a websocket over TCP never reorders.
      const queue: { due: number; data: RawData; isBinary: boolean }[] = [];
      let timer: NodeJS.Timeout | undefined;
      const pump = () => {
        timer = undefined;
        // Timers may fire up to a millisecond early on performance.now()'s clock.
        while (queue.length > 0 && queue[0].due <= performance.now() + 1) {
          const { data, isBinary } = queue.shift()!;
          if (to.readyState === WebSocket.OPEN) to.send(data, { binary: isBinary });
        }
        if (queue.length > 0) timer = setTimeout(pump, queue[0].due - performance.now());
      };
      return (data: RawData, isBinary: boolean) => {
        const last = queue.length > 0 ? queue[queue.length - 1].due : 0;
        queue.push({ due: Math.max(last, performance.now() + random() * JITTER_MS), data, isBinary });
        timer ??= setTimeout(pump, queue[0].due - performance.now());
      };
    };
    const pending: [RawData, boolean][] = [];
    client.on('message', (d, b) => (upstream.readyState === WebSocket.OPEN ? toUpstream(d, b) : pending.push([d, b])));
    const toUpstream = relay(upstream);
    upstream.on('open', () => pending.splice(0).forEach(([d, b]) => toUpstream(d, b)));
    upstream.on('message', relay(client));
    upstream.on('close', (code, reason) => client.close(code, reason));
    client.on('close', () => upstream.close());
    upstream.on('error', () => client.terminate());
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    close: () =>
      new Promise((r) => {
        // Open sockets would hold close() up, and with it the gateway's shutdown.
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

interface LiveRun {
  policy: PolicyName;
  g2g: number[];
  stats: { played: number; missed: number; underruns: number; trimmed: number; held: number; delaySum: number };
  earlyUnderruns: number;
  arrivals: [number, number][];
  outputLatencyMs: number;
}

function decodeTrack(b64: string): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  return int16ToFloat(new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1));
}

async function liveSession(url: string, policy: PolicyName, wav: string): Promise<LiveRun> {
  const browser = await launchBrowser(wav);
  try {
    const page = await browser.context.newPage();
    // A run that plays nothing must say why.
    page.on('pageerror', (err) => console.error(`[page error] ${err.message}`));
    page.on('console', (msg) => msg.type() === 'error' && console.error(`[console] ${msg.text()}`));
    await page.goto(`${url}/?trace=1&policy=${policy}`);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('[data-phase="live"]').waitFor({ timeout: 20_000 });
    // Underruns in the first second of playback are allowed by the goal; count them apart.
    await page.waitForFunction(() => window.__quillman?.playout()?.started === true, undefined, { timeout: 20_000, polling: 100 }).catch(async (err: unknown) => {
      const state = await page.evaluate(() => JSON.stringify({ session: window.__quillman?.snapshot(), playout: window.__quillman?.playout() }));
      throw new Error(`no reply audio played within 20 s of going live: ${state}`, { cause: err });
    });
    await page.waitForTimeout(1000);
    const earlyUnderruns = await page.evaluate(() => window.__quillman!.playout()!.underruns);
    await page.waitForTimeout(SECONDS * 1000 - 1000);
    const result = await page.evaluate(() => {
      const hook = window.__quillman!;
      const mic = hook.mic()!;
      const played = hook.played()!;
      // As 16-bit base64: two minutes of float arrays are too heavy to return as JSON.
      const [micB64, playedB64] = [mic.pcm, played.pcm].map((pcm) => {
        const int16 = Int16Array.from(pcm, (v) => Math.max(-32768, Math.min(32767, Math.round(v * 32767))));
        const bytes = new Uint8Array(int16.buffer);
        let s = '';
        for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(s);
      });
      return {
        mic: { start: mic.start, b64: micB64 },
        played: { start: played.start, b64: playedB64 },
        stats: hook.playout()!,
        arrivals: hook.arrivals(),
        outputLatency: hook.outputLatency() ?? 0,
      };
    });
    await page.getByRole('button', { name: 'Disconnect' }).click();
    const mic = decodeTrack(result.mic.b64);
    const played = decodeTrack(result.played.b64);
    const outputLatencyMs = result.outputLatency * 1000;
    const windowSamples = 2 * RATE;
    const minLag = ((LOOPBACK_DELAY_MS - 80 - 20) * RATE) / 1000;
    const maxLag = ((LOOPBACK_DELAY_MS + 500) * RATE) / 1000;
    // Both tracks from the same AudioContext frame, a second into the session, on whole windows.
    let from = result.mic.start + RATE;
    while (from < result.played.start) from += windowSamples;
    const received = played.subarray(from - result.played.start);
    // Only windows whose every lag lies within what was played: a cut-off tail would bias the lag short.
    const sent = mic.subarray(from - result.mic.start, from - result.mic.start + Math.max(0, received.length - maxLag - 1));
    const g2g = windowedCorrelations(sent, received, minLag, maxLag, windowSamples)
      .filter((w) => w.correlation > 0.6)
      .map((w) => (w.lag * 1000) / RATE + outputLatencyMs - LOOPBACK_DELAY_MS);
    return { policy, g2g, stats: result.stats, earlyUnderruns, arrivals: result.arrivals, outputLatencyMs };
  } finally {
    await browser.close();
  }
}

function replay(policy: PolicyName, arrivals: [number, number][]) {
  const trace: Arrival[] = arrivals.map(([at, samples]) => ({ at: at - arrivals[0][0], samples }));
  // Up to the last arrival: the session stops sending while the bench reads it back, which is no underrun.
  const r = simulate(createPolicy(policy, RATE), trace, { sampleRate: RATE, durationS: trace[trace.length - 1].at / RATE });
  return {
    missedMs: (r.stats.missed * 1000) / RATE,
    underruns: r.stats.underruns,
    lateUnderruns: r.underrunsAt.filter((c) => c > RATE).length,
    meanDelayMs: (r.stats.delaySum / r.stats.played / RATE) * 1000,
    p95DelayMs: (percentile(r.quantumDelays, 95) * 1000) / RATE,
    trimmedMs: (r.stats.trimmed * 1000) / RATE,
    heldMs: (r.stats.held * 1000) / RATE,
  };
}

const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '—');

async function main(): Promise<void> {
  const dir = await tempDir('quillman-bench-');
  const wav = await speakToFile(
    'The quick brown fox jumps over the lazy dog. A voice chat must keep talking while it listens. ' +
      'We count every millisecond between the microphone and the speaker. Numbers, one two three four five six seven eight nine ten.',
    join(dir.path, 'speech.wav'),
  );
  const gateway = await startGateway({ loopbackDelayMs: LOOPBACK_DELAY_MS });
  const proxy = await startJitterProxy(gateway.port, 7);
  const url = `http://127.0.0.1:${proxy.port}`;
  try {
    const runs = [await liveSession(url, 'adaptive', wav)];
    if (TRACE_OUT) await writeFile(TRACE_OUT, JSON.stringify(runs[0].arrivals));
    if (LIVE_KYUTAI) runs.push(await liveSession(url, 'kyutai', wav));

    console.log(`\nGlass-to-glass latency, loopback path, minus the configured ${LOOPBACK_DELAY_MS} ms loopback delay (${JITTER_MS} ms jitter proxy, ${SECONDS} s)`);
    console.log('| live policy | windows | median ms | p90 ms | max ms | output latency ms |');
    console.log('|---|---|---|---|---|---|');
    for (const r of runs) {
      console.log(`| ${r.policy} | ${r.g2g.length} | ${f(percentile(r.g2g, 50))} | ${f(percentile(r.g2g, 90))} | ${f(Math.max(...r.g2g))} | ${f(r.outputLatencyMs)} |`);
    }

    console.log(`\nLive playout counters (${SECONDS} s session)`);
    console.log('| live policy | played s | missed ms | underruns | after 1 s | trimmed ms | held ms | mean playout delay ms |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of runs) {
      const s = r.stats;
      console.log(`| ${r.policy} | ${f(s.played / RATE)} | ${f((s.missed * 1000) / RATE)} | ${s.underruns} | ${s.underruns - r.earlyUnderruns} | ${f((s.trimmed * 1000) / RATE)} | ${f((s.held * 1000) / RATE)} | ${f(((s.delaySum / s.played) * 1000) / RATE)} |`);
    }

    console.log(`\nBoth policies replayed on the arrival trace of the live '${runs[0].policy}' session (${runs[0].arrivals.length} arrivals)`);
    console.log('| policy | missed ms | underruns | underruns after 1 s | mean delay ms | p95 delay ms | trimmed ms | held ms |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const policy of ['adaptive', 'kyutai'] as const) {
      const r = replay(policy, runs[0].arrivals);
      console.log(`| ${policy} | ${f(r.missedMs)} | ${r.underruns} | ${r.lateUnderruns} | ${f(r.meanDelayMs)} | ${f(r.p95DelayMs)} | ${f(r.trimmedMs)} | ${f(r.heldMs)} |`);
    }
  } finally {
    await gateway.stop();
    await proxy.close();
    await dir.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
