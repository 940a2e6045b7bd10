import type { Command } from 'commander';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { OPUS_RATE } from '../audio/opus-stream.js';
import { readWav, writeWav } from '../audio/wav.js';
import { runChat } from '../client/chat.js';
import { describeParamIssues, parseSamplingParams } from '../protocol/sampling.js';
import { numberOption } from './options.js';

/** Raw s16le mono 24 kHz from a stream, as Float32 chunks. */
async function* pcmFromStream(stream: NodeJS.ReadableStream): AsyncIterable<Float32Array> {
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const bytes: Buffer = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const usable = bytes.length - (bytes.length % 2);
    const out = new Float32Array(usable / 2);
    for (let i = 0; i < out.length; i++) out[i] = bytes.readInt16LE(i * 2) / 32768;
    carry = bytes.subarray(usable);
    if (out.length) yield out;
  }
}

export function registerChatCommand(program: Command): void {
  program
    .command('chat')
    .description('talk to a Moshi-protocol server (ours or Kyutai\'s) from a WAV file or raw PCM on stdin')
    .argument('[url]', 'websocket URL of /api/chat', 'ws://127.0.0.1:8000/api/chat')
    .requiredOption('-i, --input <file>', 'WAV file to speak, or "-" for raw s16le 24 kHz mono PCM on stdin')
    .option('-o, --output <file>', 'write the reply audio to this WAV file')
    .option('--save-ogg <file>', 'write the reply\'s Ogg Opus stream exactly as the server sent it (for opusinfo/opusdec)')
    .option('--linger <s>', 'seconds of silence streamed after the input, to hear the end of the reply', numberOption, 3)
    .option('--param <key=value...>', 'sampling parameter, e.g. --param text_temperature=0.6', [])
    .option('--persona <text>', 'persona / system prompt (QuiLLMan engines)')
    .option('--json', 'print a JSON summary on stdout instead of the text')
    .action(async (url: string, opts: { input: string; output?: string; saveOgg?: string; linger: number; param: string[]; persona?: string; json?: boolean }) => {
      const query = new URLSearchParams(opts.param.map((p) => p.split('=', 2) as [string, string]));
      if (opts.persona) query.set('persona', opts.persona);
      const parsed = parseSamplingParams(query);
      if (!parsed.ok) throw new Error(describeParamIssues(parsed.issues));
      const input = opts.input === '-' ? pcmFromStream(process.stdin) : (await readWav(opts.input, OPUS_RATE)).samples;
      const log = (line: string) => process.stderr.write(line + '\n');
      const ogg = opts.saveOgg ? createWriteStream(opts.saveOgg) : undefined;
      const result = await runChat({
        url,
        params: parsed.params,
        input,
        lingerMs: opts.linger * 1000,
        onText: opts.json ? undefined : (piece) => process.stdout.write(piece),
        onEvent: (event) => log(`[event] ${JSON.stringify(event)}`),
        onError: (message) => log(`[error] ${message}`),
        onOggBytes: ogg ? (bytes) => ogg.write(bytes) : undefined,
      });
      if (ogg) {
        ogg.end();
        await once(ogg, 'close');
      }
      if (opts.output) await writeWav(opts.output, result.audio, OPUS_RATE);
      const summary = {
        timeToHandshakeMs: round(result.timeToHandshakeMs),
        timeToFirstAudioMs: round(result.timeToFirstAudioMs),
        timeToFirstSoundMs: round(result.timeToFirstSoundMs),
        replySeconds: +(result.audio.length / OPUS_RATE).toFixed(2),
        pagesSent: result.pagesSent,
        pagesReceived: result.pagesReceived,
        closeCode: result.closeCode,
        closeReason: result.closeReason,
        errors: result.errors,
      };
      if (opts.json) process.stdout.write(JSON.stringify({ ...summary, text: result.text, events: result.events }) + '\n');
      else {
        process.stdout.write('\n');
        log(`time to handshake: ${fmt(summary.timeToHandshakeMs)}   time to first audio: ${fmt(summary.timeToFirstAudioMs)}   first sound: ${fmt(summary.timeToFirstSoundMs)}`);
        log(`reply: ${summary.replySeconds} s of audio${opts.output ? ` written to ${opts.output}` : ''}; closed ${summary.closeCode} ${summary.closeReason ?? ''}`);
      }
      if (result.timeToHandshakeMs === undefined || result.errors.length > 0) process.exitCode = 1;
    });
}

const round = (v?: number) => (v === undefined ? undefined : Math.round(v * 10) / 10);
const fmt = (v?: number) => (v === undefined ? 'n/a' : `${v} ms`);
