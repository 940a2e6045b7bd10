/** Speech for tests, made on the spot by Debian's synthesisers. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readWav } from '../../src/audio/wav.js';

const run = promisify(execFile);

export type Synth = 'flite' | 'espeak-ng';

/** Writes `text` spoken by `synth` to a WAV file and returns its path. */
export async function speakToFile(text: string, path: string, synth: Synth = 'flite'): Promise<string> {
  if (synth === 'flite') await run('flite', ['-voice', 'slt', '-t', text, '-o', path]);
  else await run('espeak-ng', ['-v', 'en-us', '-w', path, '--', text]); // US English matches pocketsphinx's en-us model
  return path;
}

/** `text` spoken, as mono Float32 at `rate` (24 kHz by default). */
export async function speak(text: string, synth: Synth = 'flite', rate = 24_000): Promise<Float32Array> {
  const dir = await mkdtemp(join(tmpdir(), 'quillman-speech-'));
  try {
    const file = await speakToFile(text, join(dir, 'speech.wav'), synth);
    return (await readWav(file, rate)).samples;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function tempDir(prefix = 'quillman-test-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
