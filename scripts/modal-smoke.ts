/**
 * One real conversation on YOUR Modal account, end to end: a gateway in this
 * process with the modal provider, a cold sandbox (image build on the first
 * run, a GPU, Kyutai's server loading its weights onto the volume), a
 * conversation through it, then a second one on the warm sandbox. Prints
 * what it measured: time to the handshake and to the first reply audio,
 * cold and warm, the start-up stages with their times, and the estimated
 * cost. Everything it started is terminated at the end.
 *
 *   MODAL_TOKEN_ID=ak-… MODAL_TOKEN_SECRET=as-… node --import tsx scripts/modal-smoke.ts [--gpu L40S] [--app quillman-smoke] [--hf-repo …] [--input speech.wav]
 *   node --import tsx scripts/modal-smoke.ts --stop-all [--app quillman]    terminate every sandbox a QuiLLMan gateway left in the app
 *
 * It costs money (a few minutes of one GPU: about $0.10–$0.30 on an L40S,
 * more on the first run, which builds the image and downloads ~15 GB of
 * weights). Never run in CI: without MODAL_TOKEN_ID (or ~/.modal.toml) it
 * says so and exits.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readWav } from '../src/audio/wav.js';
import { runChat, type ChatResult } from '../src/client/chat.js';
import { GatewaySettingsSchema } from '../src/gateway/config.js';
import { startGateway } from '../src/gateway/server.js';
import { createPool } from '../src/pool/index.js';
import { TAG } from '../src/pool/providers/modal/sandbox-spec.js';
import { createLogger } from '../src/util/logger.js';

const { values } = parseArgs({
  options: {
    app: { type: 'string', default: 'quillman-smoke' },
    gpu: { type: 'string', default: 'L40S' },
    'hf-repo': { type: 'string' },
    region: { type: 'string' },
    environment: { type: 'string' },
    volume: { type: 'string' },
    input: { type: 'string' },
    'ready-timeout': { type: 'string', default: '1800' },
    'stop-all': { type: 'boolean', default: false },
  },
});

const say = (line: string) => process.stdout.write(`${line}\n`);

function hasCredentials(): boolean {
  if (process.env.MODAL_TOKEN_ID) return true;
  const file = process.env.MODAL_CONFIG_PATH || join(homedir(), '.modal.toml');
  return existsSync(file);
}

if (!hasCredentials()) {
  say('modal-smoke: skipped. It runs a real conversation on a real Modal account and needs its token:');
  say('  set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (modal token new), or keep them in ~/.modal.toml. See docs/modal.md.');
  process.exit(0);
}

async function stopAll(): Promise<void> {
  const { ModalClient } = await import('modal');
  const modal = new ModalClient(values.environment ? { environment: values.environment } : {});
  const app = await modal.apps.fromName(values.app!, { createIfMissing: false, ...(values.environment && { environment: values.environment }) });
  let n = 0;
  for await (const sb of modal.sandboxes.list({ appId: app.appId })) {
    const tags = await sb.getTags();
    if (!tags[TAG.gateway]) continue;
    say(`terminating ${sb.sandboxId} (gateway tag ${tags[TAG.gateway]}, ${tags[TAG.gpu] ?? 'GPU unknown'})`);
    await sb.terminate();
    n++;
  }
  say(`${n} sandbox(es) terminated in app "${values.app}".`);
  modal.close();
}

async function speech(): Promise<Float32Array> {
  if (values.input) return (await readWav(values.input, 24_000)).samples;
  try {
    const { speak } = await import('../test/helpers/speech.js');
    return await speak('Hello! I am testing a voice chat on a serverless GPU. Can you hear me? Tell me something nice.');
  } catch {
    // No synthesiser here: a voice-like warble (the model answers whatever it hears).
    return Float32Array.from({ length: 24_000 * 5 }, (_, i) => 0.1 * Math.sin((2 * Math.PI * (180 + 40 * Math.sin(i / 3000)) * i) / 24_000) * (0.5 + 0.5 * Math.sin(i / 4000)));
  }
}

interface Measured {
  result: ChatResult;
  stages: { atMs: number; message: string }[];
}

async function converse(url: string, input: Float32Array): Promise<Measured> {
  const started = performance.now();
  const stages: Measured['stages'] = [];
  const result = await runChat({
    url,
    input,
    lingerMs: 3000,
    handshakeTimeoutMs: Number(values['ready-timeout']) * 1000,
    onEvent: (event) => {
      const e = event as { type?: string; message?: string };
      if (e.type === 'warming_up' && e.message) stages.push({ atMs: performance.now() - started, message: e.message });
    },
  });
  return { result, stages };
}

async function smoke(): Promise<void> {
  const log = createLogger('modal-smoke', process.env.QUILLMAN_LOG_LEVEL ?? 'warn');
  const gatewayTag = `smoke-${Date.now().toString(36)}`;
  const pool = createPool(
    {
      provider: 'modal',
      warm: 0,
      maxWorkers: 1,
      idleTimeoutSeconds: 120,
      modal: {
        app: values.app!,
        gpu: values.gpu!,
        gatewayTag,
        readyTimeoutSeconds: Number(values['ready-timeout']),
        ...(values['hf-repo'] && { hfRepo: values['hf-repo'] }),
        ...(values.region && { region: values.region }),
        ...(values.environment && { environment: values.environment }),
        ...(values.volume && { volume: values.volume }),
      },
    },
    log,
  );
  await pool.start();
  const gateway = await startGateway({ settings: GatewaySettingsSchema.parse({ host: '127.0.0.1', port: 0 }), pool, log });
  const url = `ws://127.0.0.1:${gateway.port}/api/chat`;
  const input = await speech();
  try {
    say(`modal-smoke: app "${values.app}", GPU ${values.gpu}, tag ${gatewayTag}. A cold start can take minutes (first run: image build and weights download).`);
    const cold = await converse(url, input);
    for (const s of cold.stages) say(`  ${(s.atMs / 1000).toFixed(1).padStart(7)} s  ${s.message}`);
    const warm = await converse(url, input);
    const row = (name: string, m: Measured) =>
      `| ${name} | ${fmt(m.result.timeToHandshakeMs)} | ${fmt(m.result.timeToFirstAudioMs)} | ${fmt(m.result.timeToFirstSoundMs)} | ${(m.result.audio.length / 24_000).toFixed(1)} | ${m.result.errors.join('; ') || '—'} |`;
    say('\n| sandbox | connect → handshake ms | first reply audio ms (after our first audio) | first non-silent reply ms | reply audio s | errors |');
    say('|---|---:|---:|---:|---:|---|');
    say(row('cold', cold));
    say(row('warm', warm));
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    say('\nWhat it cost (estimate from pool.modal.prices; GPU only):');
    for (const line of metrics.split('\n')) if (/^quillman_modal_(sandbox_seconds_total|estimated_cost_dollars_total)\{/.test(line)) say(`  ${line}`);
    const details = pool.snapshot().workers[0]?.details;
    if (details) say(`\nSandbox: ${JSON.stringify(details)}`);
    if (cold.result.errors.length || warm.result.errors.length || !cold.result.audio.length) process.exitCode = 1;
  } finally {
    await gateway.close();
    await pool.close();
    say('\nEverything this run started is terminated.');
  }
}

function fmt(v: number | undefined): string {
  return v === undefined ? '—' : v.toFixed(0);
}

await (values['stop-all'] ? stopAll() : smoke()).catch((err: Error) => {
  say(`modal-smoke failed: ${err.message}`);
  process.exitCode = 1;
});
