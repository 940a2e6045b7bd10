/**
 * Kyutai's real server, straight and through the gateway, in one run: time to
 * the handshake, time to the first audio, and the latency of each model step
 * (input frame sent → the output message it releases arrives). Sessions
 * alternate between the two paths against the same server, so the server's
 * own (CPU, tiny model) time is in both and the difference is the gateway's.
 *
 *   npm run bench -- kyutai [--sessions 10] [--seconds 8]
 *
 * Needs the tiny Moshi (node --import tsx scripts/kyutai/tiny-moshi.ts).
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { findTinyMoshi, HOW_TO_MAKE } from '../scripts/kyutai/tiny-moshi.js';
import { OggOpusEncoder } from '../src/audio/opus-stream.js';
import { encodeAudio } from '../src/protocol/frames.js';
import { CLI_ARGS, REPO } from '../test/helpers/gateway.js';
import { freePort } from '../test/helpers/net.js';
import { newMarker } from '../test/helpers/processes.js';
import { startRealMoshi } from '../test/kyutai/real-moshi.js';
import { machineLine, printTable } from './lib/report.js';

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '10' }, seconds: { type: 'string', default: '8' } } });
const SESSIONS = Number(values.sessions);
const SECONDS = Number(values.seconds);

interface Session {
  handshakeMs: number;
  firstAudioMs: number;
  /** Per output message: arrival − send time of the input frame with the same index (a constant offset included). */
  stepMs: number[];
}

/** One session like Kyutai's client: 20 ms Opus frames, two per page, a page every 40 ms, for `seconds`. */
async function session(url: string, seconds: number): Promise<Session> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const opened = performance.now();
  let handshakeAt = 0;
  const sentAt: number[] = [];
  const arrivals: number[] = [];
  const encoder = new OggOpusEncoder({ frameMs: 20, packetsPerPage: 2 });
  const tone = new Float32Array(1920).map((_, i) => 0.05 * Math.sin((2 * Math.PI * 220 * i) / 24_000));
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('close', () => resolve());
    ws.on('message', (data: Buffer) => {
      const kind = data[0];
      if (kind === 0 && !handshakeAt) {
        handshakeAt = performance.now();
        for (const page of encoder.headers()) ws.send(encodeAudio(page));
        const start = performance.now();
        let n = 0;
        const tick = () => {
          if (ws.readyState !== WebSocket.OPEN) return;
          // One model step (80 ms) of audio per tick, on a drift-free schedule.
          sentAt.push(performance.now());
          for (const page of encoder.encode(tone)) ws.send(encodeAudio(page));
          n++;
          if (n * 80 >= seconds * 1000) return void setTimeout(() => ws.close(1000, 'done'), 500);
          setTimeout(tick, Math.max(0, start + n * 80 - performance.now()));
        };
        tick();
      } else if (kind === 1 && handshakeAt) {
        arrivals.push(performance.now());
      }
    });
  });
  if (!handshakeAt || arrivals.length < 10) throw new Error(`session to ${url} got ${arrivals.length} audio messages`);
  // Skip the start-up steps (the model's delays, the skipped first frame) where the pairing is not yet steady.
  const steps = arrivals.slice(5).map((at, j) => at - sentAt[j + 5]).filter((v) => Number.isFinite(v));
  return { handshakeMs: handshakeAt - opened, firstAudioMs: arrivals[0] - sentAt[0], stepMs: steps };
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const f = (v: number) => v.toFixed(1);

async function main(): Promise<void> {
  const tiny = findTinyMoshi();
  if (!tiny) throw new Error(`Kyutai's tiny Moshi is not set up: run \`${HOW_TO_MAKE}\` first`);
  const marker = newMarker();
  const server = await startRealMoshi(tiny, marker);
  const port = await freePort();
  const gateway = spawn(
    process.execPath,
    [...CLI_ARGS, 'serve', '--host', '127.0.0.1', '--port', String(port), '--provider', 'remote', '--worker-urls', server.url],
    { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, QUILLMAN_LOG_LEVEL: 'warn' } },
  );
  let gatewayLog = '';
  gateway.stderr!.on('data', (d: Buffer) => (gatewayLog = (gatewayLog + d.toString()).slice(-4000)));
  try {
    const viaGateway = `ws://127.0.0.1:${port}/api/chat`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (i > 300) throw new Error(`the gateway did not become ready:\n${gatewayLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const direct: Session[] = [];
    const relayed: Session[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      // Alternate, so drift in the machine's load hits both paths alike.
      direct.push(await session(server.url, SECONDS));
      relayed.push(await session(viaGateway, SECONDS));
      process.stderr.write(`session pair ${i + 1}/${SESSIONS}\n`);
    }
    const row = (name: string, s: Session[]) => {
      const steps = s.flatMap((x) => x.stepMs);
      return [name, f(pct(s.map((x) => x.handshakeMs), 50)), f(pct(s.map((x) => x.firstAudioMs), 50)), f(pct(steps, 50)), f(pct(steps, 99)), String(steps.length)];
    };
    const d = row('direct', direct);
    const g = row('through the gateway', relayed);
    const added = ['added by the gateway', ...[1, 2, 3, 4].map((i) => f(Number(g[i]) - Number(d[i]))), ''];
    const ratio = ['ratio gateway / direct', ...[1, 2, 3, 4].map((i) => (Number(g[i]) / Number(d[i])).toFixed(3)), ''];
    printTable(
      `Kyutai's moshi.server (tiny random checkpoint, CPU), ${SESSIONS} sessions of ${SECONDS} s each way; ${machineLine()}`,
      ['path', 'handshake p50 ms', 'first audio p50 ms', 'step latency p50 ms', 'step latency p99 ms', 'steps'],
      [d, g, added, ratio],
    );
  } finally {
    gateway.kill('SIGTERM');
    await server.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
