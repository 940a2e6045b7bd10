/**
 * Offline fallback voices: Debian's flite (CMU "slt"), espeak-ng and festival
 * (HTS "slt"), run as child processes. Text goes in through a file, never as
 * an argument, so a reply starting with "-" cannot turn into a flag (and
 * flite cannot read /dev/stdin when Node's stdin is a socket).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENGINE_SAMPLE_RATE } from '../../engine.js';
import { StreamResampler } from '../audio/resample.js';
import { decodeWav, type DecodedWav } from '../../../audio/wav.js';
import { runCommand } from '../../../util/run-command.js';
import type { TtsStage } from './types.js';

export type CommandVoice = 'flite' | 'espeak-ng' | 'festival';

export const TTS_INSTALL_HINT = 'apt install flite';

const RESAMPLE_BLOCK_S = 0.25;
/** Per-sentence limit. */
const RENDER_TIMEOUT_MS = 20_000;
const FLUSH_SAMPLES = 64;

interface CommandSpec {
  bin: string;
  args(text: string, out: string, voice: string): string[];
  defaultVoice: string;
}

const COMMANDS: Record<CommandVoice, CommandSpec> = {
  flite: { bin: 'flite', args: (text, out, voice) => ['-voice', voice, '-f', text, '-o', out], defaultVoice: 'slt' },
  'espeak-ng': { bin: 'espeak-ng', args: (text, out, voice) => ['-v', voice, '-f', text, '-w', out], defaultVoice: 'en-us' },
  festival: {
    bin: 'text2wave',
    args: (text, out, voice) => ['-eval', `(voice_${voice.replace(/[^a-z0-9_]/gi, '')})`, '-o', out, text],
    defaultVoice: 'cmu_us_slt_arctic_hts',
  },
};

/** True when the program runs here (checked once at stage selection). */
export function commandAvailable(kind: CommandVoice): boolean {
  const probe = spawnSync(COMMANDS[kind].bin, ['--help'], { stdio: 'ignore', timeout: 5000 });
  return !probe.error;
}

export interface CommandTtsOptions {
  kind: CommandVoice;
  voice?: string;
}

export function commandTts(opts: CommandTtsOptions): TtsStage {
  const spec = COMMANDS[opts.kind];
  const voice = opts.voice ?? spec.defaultVoice;
  const dir = mkdtempSync(join(tmpdir(), 'quillman-tts-'));
  let counter = 0;

  async function render(text: string, signal: AbortSignal): Promise<DecodedWav> {
    const id = counter++;
    const out = join(dir, `${id}.wav`);
    const input = join(dir, `${id}.txt`);
    try {
      await writeFile(input, `${text}\n`);
      const { code, signal: sig, stderr } = await runCommand(spec.bin, spec.args(input, out, voice), { signal, timeout: RENDER_TIMEOUT_MS, stderrLimit: 2000 });
      if (code !== 0) throw new Error(`${spec.bin} failed (${sig ?? `exit ${code}`}): ${stderr.trim().slice(0, 300)}`);
      return decodeWav(await readFile(out));
    } finally {
      await unlink(out).catch(() => undefined);
      await unlink(input).catch(() => undefined);
    }
  }

  return {
    name: `${opts.kind}-${voice}`,
    async *synthesize(text, signal) {
      if (!text.trim() || signal.aborted) return;
      const wav = await render(text, signal);
      if (signal.aborted || wav.samples.length === 0) return;
      if (wav.sampleRate === ENGINE_SAMPLE_RATE) return yield wav.samples;
      // Resampled in blocks, so the first audio is ready after one block rather than the whole sentence.
      const resampler = await StreamResampler.create(wav.sampleRate, ENGINE_SAMPLE_RATE);
      try {
        const block = Math.round(wav.sampleRate * RESAMPLE_BLOCK_S);
        for (let at = 0; at < wav.samples.length && !signal.aborted; at += block) {
          const pcm = resampler.process(wav.samples.subarray(at, at + block));
          if (pcm.length > 0) yield pcm;
        }
        // Push the filter's last few samples out with a little silence.
        if (!signal.aborted) yield resampler.process(new Float32Array(FLUSH_SAMPLES));
      } finally {
        resampler.release();
      }
    },
    async dispose() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
