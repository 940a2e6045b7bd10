/**
 * The server-info message of Kyutai's Rust backend, which Kyutai's web client
 * checks every kind-4 message against (a message of another shape is logged as
 * an error and its server-info panel stays empty). The gateway sends one such
 * message per session, so that client shows what the session runs with; our
 * own typed events go on as before, and carry `type` so our clients tell them
 * apart (Kyutai's client ignores keys it does not know).
 *
 * Browser-safe: no Node APIs.
 */
import { SAMPLING_PARAMS, type SamplingParams } from './sampling.js';

/** The ten strings of the Rust backend's build_info, all required by Kyutai's client. */
export const BUILD_INFO_KEYS = [
  'build_timestamp',
  'build_date',
  'git_branch',
  'git_timestamp',
  'git_date',
  'git_hash',
  'git_describe',
  'rustc_host_triple',
  'rustc_version',
  'cargo_target_triple',
] as const;

export type BuildInfo = Record<(typeof BUILD_INFO_KEYS)[number], string>;

export interface ServerInfo {
  type: 'server_info';
  text_temperature: number;
  text_topk: number;
  audio_temperature: number;
  audio_topk: number;
  pad_mult: number;
  repetition_penalty_context: number;
  repetition_penalty: number;
  lm_model_file: string;
  instance_name: string;
  build_info: BuildInfo;
}

const NUMERIC = ['text_temperature', 'text_topk', 'audio_temperature', 'audio_topk', 'pad_mult', 'repetition_penalty_context', 'repetition_penalty'] as const;

/**
 * The session's sampling values as asked for, each missing one at the default
 * Kyutai's own client would have sent (the values a Kyutai server runs with).
 */
export function serverInfo(params: SamplingParams, model: string, instance: string, build: BuildInfo): ServerInfo {
  const values = {} as Record<(typeof NUMERIC)[number], number>;
  for (const key of NUMERIC) values[key] = params[key] ?? SAMPLING_PARAMS[key].default;
  return { type: 'server_info', ...values, lm_model_file: model, instance_name: instance, build_info: build };
}
