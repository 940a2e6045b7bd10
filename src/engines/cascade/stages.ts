/**
 * Picks and loads the implementation of each stage. 'auto' prefers the
 * neural stages (downloading their models on first use when allowed) and
 * falls back to the offline Debian ones; when nothing works the error names
 * the command that fixes it. The recogniser and the voice run on threads of
 * their own (threads/threaded-stages.ts).
 */
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Logger } from 'pino';
import type { ProgressReport } from '../engine.js';
import { modelCacheDir, modelDir } from '../../models/cache.js';
import { findModel, type ModelSpec } from '../../models/registry.js';
import { stderrProgressBars } from '../../models/progress-bar.js';
import { ensureModel, isInstalled } from '../../models/store.js';
import type { CascadeConfig } from './config.js';
import type { CascadeStages } from './stage-meter.js';
import { loadLlamaLm } from './lm/llama.js';
import { openAiLm } from './lm/openai.js';
import type { LmStage } from './lm/types.js';
import { POCKETSPHINX_INSTALL_HINT } from './stt/pocketsphinx.js';
import type { SttStage } from './stt/types.js';
import { threadedStt, threadedTts } from './threads/threaded-stages.js';
import { commandAvailable, TTS_INSTALL_HINT, type CommandVoice } from './tts/command.js';
import type { TtsStage } from './tts/types.js';
import { energyVad } from './vad/energy.js';
import { loadSileroVad } from './vad/silero.js';
import type { VadStage } from './vad/types.js';

export interface SelectContext {
  config: CascadeConfig;
  log: Logger;
  registry: readonly ModelSpec[];
  onProgress?: (p: ProgressReport) => void;
  fetchImpl?: typeof fetch;
}

export class StageUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StageUnavailableError';
  }
}

/** An error's text, without its closing full stop: it is composed into longer sentences. */
function msg(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/[.\s]+$/, '');
}

/** A registry model's folder: cached, or downloaded now when allowed. */
async function modelFolder(ctx: SelectContext, name: string): Promise<string> {
  const cacheDir = ctx.config.cacheDir ?? modelCacheDir();
  const spec = findModel(name, ctx.registry);
  if (!spec) throw new Error(`Unknown model ${name}; see \`quillman models list\``);
  if (await isInstalled(spec, cacheDir)) return modelDir(cacheDir, name);
  if (!ctx.config.autoDownload) throw new Error(`Model ${name} is not downloaded. Run \`quillman models pull ${name}\``);
  ctx.log.info({ model: name, cacheDir }, 'downloading model (first use)');
  return ensureModel(spec, {
    cacheDir,
    fetchImpl: ctx.fetchImpl,
    // People watching the server see a bar on stderr; clients get the same progress through warm-up reports.
    onFileProgress: stderrProgressBars(`${name}/`),
    onProgress: (p) => ctx.onProgress?.({ stage: `download:${name}`, message: p.message, fraction: p.fraction }),
  });
}

export async function selectVad(ctx: SelectContext): Promise<VadStage> {
  const choice = ctx.config.vad;
  if (choice === 'energy') return energyVad();
  try {
    return await loadSileroVad();
  } catch (err) {
    if (choice === 'silero') throw new StageUnavailableError(`Silero VAD could not load: ${msg(err)}`);
    ctx.log.warn({ err: msg(err) }, 'Silero VAD unavailable; using the energy detector');
    return energyVad();
  }
}

interface SherpaAttempt<T> {
  stage: 'stt' | 'tts';
  model: string;
  loading: string;
  /** Starts the error when Sherpa was asked for by name. */
  unavailable: string;
  /** Logged when 'auto' falls back. */
  fallingBack: string;
  load(modelDir: string): Promise<T>;
}

/**
 * The neural (Sherpa) implementation when the choice allows it, else why not:
 * the fallback's own error repeats that reason. Asked for by name, it must load.
 */
async function trySherpa<T>(ctx: SelectContext, choice: string, attempt: SherpaAttempt<T>): Promise<{ loaded: T } | { problem: string }> {
  if (choice !== 'sherpa' && choice !== 'auto') return { problem: '' };
  try {
    ctx.onProgress?.({ stage: attempt.stage, message: attempt.loading });
    const folder = await modelFolder(ctx, attempt.model);
    // A download may have reported progress meanwhile: say what comes next, so the wait is seen to move on.
    ctx.onProgress?.({ stage: attempt.stage, message: `${attempt.loading} into memory` });
    return { loaded: await attempt.load(folder) };
  } catch (err) {
    const problem = msg(err);
    if (choice === 'sherpa') throw new StageUnavailableError(`${attempt.unavailable}: ${problem}`);
    ctx.log.warn({ err: problem }, attempt.fallingBack);
    return { problem };
  }
}

export async function selectStt(ctx: SelectContext): Promise<SttStage> {
  const choice = ctx.config.stt;
  const name = ctx.config.sherpaStt.model;
  const sherpa = await trySherpa(ctx, choice, {
    stage: 'stt',
    model: name,
    loading: `Loading speech recogniser ${name}`,
    unavailable: 'Speech recogniser unavailable',
    fallingBack: 'neural speech recogniser unavailable; trying PocketSphinx',
    load: (modelDir) => threadedStt({ kind: 'sherpa', modelDir, threads: ctx.config.sherpaStt.threads }),
  });
  if ('loaded' in sherpa) return sherpa.loaded;
  try {
    ctx.onProgress?.({ stage: 'stt', message: 'Loading speech recogniser pocketsphinx' });
    return await threadedStt({ kind: 'pocketsphinx' });
  } catch (err) {
    throw new StageUnavailableError(
      choice === 'pocketsphinx'
        ? msg(err)
        : `No speech recogniser: run \`quillman models pull ${name}\` (${sherpa.problem}) or \`${POCKETSPHINX_INSTALL_HINT}\` (${msg(err)})`,
    );
  }
}

function ggufPath(model: string): string | undefined {
  return model.endsWith('.gguf') || isAbsolute(model) || model.includes('/') ? model : undefined;
}

export async function selectLm(ctx: SelectContext): Promise<LmStage> {
  const { config } = ctx;
  const choice = config.lm;
  if (choice === 'openai' || (choice === 'auto' && config.openai.url)) {
    if (!config.openai.url) throw new StageUnavailableError('The openai language model needs a URL: set --lm-url (or QUILLMAN_LM_URL), e.g. https://api.openai.com/v1, with the key in QUILLMAN_LM_KEY');
    // Node loads its fetch implementation on first use (~50 ms of the event loop): now, rather than in the first reply.
    await fetch('data:,').catch(() => undefined);
    return openAiLm({ url: config.openai.url, apiKey: config.openai.apiKey, model: config.openai.model, timeoutMs: config.openai.timeoutMs });
  }
  const model = config.llama.model;
  try {
    const path = ggufPath(model);
    if (path && !existsSync(path)) throw new Error(`GGUF file ${path} not found`);
    const modelPath = path ?? `${await modelFolder(ctx, model)}/model.gguf`;
    ctx.onProgress?.({ stage: 'lm', message: `Loading language model ${model}` });
    return await loadLlamaLm({ modelPath, contextSize: config.llama.contextSize, threads: config.llama.threads, gpu: config.llama.gpu });
  } catch (err) {
    const fix = ggufPath(model)
      ? `check the GGUF path given to --gguf (${model})`
      : `run \`quillman models pull ${model}\`, give a .gguf file with --gguf`;
    throw new StageUnavailableError(`No language model: ${msg(err)}. To fix, ${fix}, or use an OpenAI-compatible endpoint (--lm-url).`);
  }
}

const COMMAND_ORDER: CommandVoice[] = ['flite', 'espeak-ng', 'festival'];

export async function selectTts(ctx: SelectContext): Promise<TtsStage> {
  const { config } = ctx;
  const choice = config.tts;
  const name = config.sherpaTts.model;
  const sherpa = await trySherpa(ctx, choice, {
    stage: 'tts',
    model: name,
    loading: `Loading voice ${name}`,
    unavailable: 'Neural voice unavailable',
    fallingBack: 'neural voice unavailable; trying the offline voices',
    load: (modelDir) => threadedTts({ kind: 'sherpa', modelDir, speaker: config.sherpaTts.speaker, speed: config.sherpaTts.speed, threads: config.sherpaTts.threads }),
  });
  if ('loaded' in sherpa) return sherpa.loaded;
  // A 'sherpa' choice has loaded or thrown by now.
  const candidates: CommandVoice[] = choice === 'auto' ? COMMAND_ORDER : [choice as CommandVoice];
  for (const kind of candidates) {
    if (!commandAvailable(kind)) continue;
    ctx.onProgress?.({ stage: 'tts', message: `Loading voice ${kind}` });
    return threadedTts({ kind: 'command', voice: kind, voiceName: config.commandVoice });
  }
  throw new StageUnavailableError(
    choice === 'auto'
      ? `No voice: run \`quillman models pull ${name}\` (${sherpa.problem}) or \`${TTS_INSTALL_HINT}\``
      : `${choice} is not installed: apt install ${choice === 'festival' ? 'festival festvox-us-slt-hts' : choice}`,
  );
}

export async function selectStages(ctx: SelectContext, given: Partial<CascadeStages> = {}): Promise<CascadeStages> {
  // Cheap, local stages first so a missing package is reported before a long download.
  const vad = given.vad ?? (await selectVad(ctx));
  const stt = given.stt ?? (await selectStt(ctx));
  const tts = given.tts ?? (await selectTts(ctx));
  const lm = given.lm ?? (await selectLm(ctx));
  return { vad, stt, lm, tts };
}
