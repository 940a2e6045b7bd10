/**
 * What a stage thread loads: plain data, so it can cross into the thread.
 * One place maps each description to its loader, imported only when used
 * (a thread compiles and loads no more than its own stage).
 */
import type { SttStage } from '../stt/types.js';
import type { CommandVoice } from '../tts/command.js';
import type { TtsStage } from '../tts/types.js';

export type SttSpec = { kind: 'pocketsphinx' } | { kind: 'sherpa'; modelDir: string; threads: number };
export type TtsSpec = { kind: 'command'; voice: CommandVoice; voiceName?: string } | { kind: 'sherpa'; modelDir: string; speaker: number; speed: number; threads: number };
export type StageSpec = { stage: 'stt'; spec: SttSpec } | { stage: 'tts'; spec: TtsSpec };

export async function loadStt(spec: SttSpec): Promise<SttStage> {
  if (spec.kind === 'pocketsphinx') return (await import('../stt/pocketsphinx.js')).loadPocketsphinx();
  return (await import('../stt/sherpa.js')).loadSherpaStt({ modelDir: spec.modelDir, threads: spec.threads });
}

export async function loadTts(spec: TtsSpec): Promise<TtsStage> {
  if (spec.kind === 'command') return (await import('../tts/command.js')).commandTts({ kind: spec.voice, voice: spec.voiceName });
  return (await import('../tts/sherpa.js')).loadSherpaTts({ modelDir: spec.modelDir, speaker: spec.speaker, speed: spec.speed, threads: spec.threads });
}
