/**
 * The `cascade` engine: voice activity detection → streaming speech-to-text →
 * small language model → streaming text-to-speech, on CPU, full duplex with
 * barge-in. See docs/cascade.md.
 */
import type { Logger } from 'pino';
import { createLogger } from '../../util/logger.js';
import { MODELS, type ModelSpec } from '../../models/registry.js';
import { ENGINE_FRAME_SAMPLES, type Conversation, type ConversationOptions, type Engine, type EngineInfo, type EngineSink, type ProgressReport } from '../engine.js';
import { parseCascadeConfig, type CascadeConfig, type CascadeConfigInput } from './config.js';
import { CascadeConversation, type CascadeStages } from './conversation.js';
import { selectStages } from './stages.js';

export { CascadeConfigSchema, parseCascadeConfig, DEFAULT_PERSONA, type CascadeConfig, type CascadeConfigInput } from './config.js';
export { CascadeConversation, type CascadeStages } from './conversation.js';
export type { VadStage, VoiceActivityDetector } from './vad/types.js';
export type { SttStage, RecognizerSession } from './stt/types.js';
export type { LmStage, LmSession, ChatMessage } from './lm/types.js';
export type { TtsStage } from './tts/types.js';

export interface CascadeDeps {
  logger?: Logger;
  /** Model list (tests point it at a local server). */
  registry?: readonly ModelSpec[];
  /** Ready-made stages that replace the configured ones (tests, embedding). */
  stages?: Partial<CascadeStages>;
  fetchImpl?: typeof fetch;
}

export interface CascadeEngine extends Engine {
  readonly config: CascadeConfig;
  /** Why the engine cannot serve, once warm-up failed (sent to every client). */
  readonly problem: string | undefined;
  openConversation(options: ConversationOptions, sink: EngineSink): Promise<Conversation>;
}

/** Retry a failed stage selection at most this often (the user may have installed the fix meanwhile). */
const RETRY_AFTER_MS = 10_000;

export async function createCascadeEngine(raw: CascadeConfigInput | Record<string, unknown> = {}, deps: CascadeDeps = {}): Promise<CascadeEngine> {
  const config = parseCascadeConfig(raw);
  const log = deps.logger ?? createLogger('cascade');
  const registry = deps.registry ?? MODELS;
  const info: { name: string; stages: Record<string, string> } = {
    name: 'cascade',
    stages: { vad: config.vad, stt: config.stt, lm: config.lm, tts: config.tts },
  };
  let loading: Promise<CascadeStages> | undefined;
  let stages: CascadeStages | undefined;
  let problem: string | undefined;
  let failedAt = 0;
  const progressListeners = new Set<(p: ProgressReport) => void>();

  function load(): Promise<CascadeStages> {
    if (stages) return Promise.resolve(stages);
    if (loading) return loading;
    loading = selectStages(
      { config, log, registry, fetchImpl: deps.fetchImpl, onProgress: (p) => progressListeners.forEach((l) => l(p)) },
      deps.stages,
    )
      .then((s) => {
        stages = s;
        problem = undefined;
        info.stages = { vad: s.vad.name, stt: s.stt.name, lm: s.lm.name, tts: s.tts.name };
        log.info({ stages: info.stages }, 'cascade stages ready');
        return s;
      })
      .catch((err: unknown) => {
        problem = err instanceof Error ? err.message : String(err);
        failedAt = Date.now();
        log.error(problem);
        throw err;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  }

  const engine: CascadeEngine = {
    get info(): EngineInfo {
      return { name: info.name, stages: { ...info.stages } };
    },
    config,
    get problem() {
      return problem;
    },
    async warmUp(onProgress) {
      if (onProgress) progressListeners.add(onProgress);
      try {
        await load();
        onProgress?.({ stage: 'ready', message: `cascade ready: ${Object.entries(info.stages).map(([k, v]) => `${k}=${v}`).join(', ')}`, fraction: 1 });
      } catch {
        // Not fatal for the process: each client is told what to run (see openConversation).
        onProgress?.({ stage: 'error', message: problem ?? 'cascade engine unavailable' });
      } finally {
        if (onProgress) progressListeners.delete(onProgress);
      }
    },
    async openConversation(options, sink) {
      let ready: CascadeStages | undefined = stages;
      if (!ready && (problem === undefined || Date.now() - failedAt >= RETRY_AFTER_MS)) {
        ready = await load().catch(() => undefined);
      }
      if (!ready) return deadConversation(sink, problem ?? 'cascade engine unavailable');
      try {
        return await CascadeConversation.open(ready, config, options, sink, log);
      } catch (err) {
        return deadConversation(sink, `Could not start the conversation: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
    async dispose() {
      const s = stages;
      stages = undefined;
      if (!s) return;
      await Promise.allSettled([s.vad.dispose?.(), s.stt.dispose?.(), s.lm.dispose?.(), s.tts.dispose?.()]);
    },
  };
  return engine;
}

/** A conversation that only reports why it cannot run; the worker closes on the fatal error. */
function deadConversation(sink: EngineSink, message: string): Conversation {
  sink.error(message, true);
  return { pushFrame() {}, pullFrame: () => new Float32Array(ENGINE_FRAME_SAMPLES), close: async () => {} };
}
