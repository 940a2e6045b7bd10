/**
 * One HTTP health check of a worker.
 *
 * Our worker answers `GET /health` with `{ status: idle | busy }` (200) or
 * `{ status: warming, progress }` (503), or `{ status: failed, error }` (500)
 * when its warm-up failed. Kyutai's servers have no health
 * endpoint but load their model before they listen, so any HTTP answer from
 * them (a 404 included) means "ready"; such a worker cannot tell us when it
 * is free again, which the pool learns from `healthEndpoint: false`.
 */
import { networkErrorCode } from '../util/network-error.js';

export type Probe =
  | { kind: 'ready'; healthEndpoint: boolean }
  | { kind: 'busy' }
  | { kind: 'warming'; progress?: string }
  /** Answers, but says it will not become ready (our worker after a failed warm-up). */
  | { kind: 'failed'; reason: string }
  | { kind: 'down'; reason: string };

/** Health answers are a few hundred bytes; a worker sending more is cut off here. */
export const MAX_HEALTH_BODY_BYTES = 64 * 1024;
const MAX_PROGRESS_CHARS = 200;

export async function probeHealth(url: string, timeoutMs: number, signal?: AbortSignal): Promise<Probe> {
  const timeout = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, headers: { accept: 'application/json' } });
  } catch (err) {
    if (timeout.aborted) return { kind: 'down', reason: `no answer from ${url} within ${Math.round(timeoutMs / 100) / 10} s` };
    return { kind: 'down', reason: `${url}: ${networkReason(err)}` };
  }
  return healthFromAnswer(url, response.status, await readJsonObject(response));
}

/**
 * What a health answer means: its HTTP status and its JSON body (undefined
 * when it had none, or not an object). For probes made with another HTTP
 * client (a private CA, per-request credentials).
 */
export function healthFromAnswer(url: string, httpStatus: number, body: Record<string, unknown> | undefined): Probe {
  const status = typeof body?.status === 'string' ? body.status : undefined;
  if (httpStatus >= 200 && httpStatus < 300) {
    if (status === 'busy') return { kind: 'busy' };
    if (status === 'warming') return { kind: 'warming', progress: describeProgress(body?.progress) };
    return { kind: 'ready', healthEndpoint: status !== undefined };
  }
  if (httpStatus === 503) {
    if (status === 'busy') return { kind: 'busy' };
    return { kind: 'warming', progress: describeProgress(body?.progress) };
  }
  if (status === 'failed') {
    const error = typeof body?.error === 'string' ? body.error.slice(0, 2000) : `HTTP ${httpStatus}`;
    return { kind: 'failed', reason: `it reports that its start-up failed: ${error}` };
  }
  // Any other 4xx: the server is up but has no health endpoint we understand (Kyutai's servers answer 404).
  if (httpStatus >= 400 && httpStatus < 500) return { kind: 'ready', healthEndpoint: false };
  return { kind: 'down', reason: `${url} answered HTTP ${httpStatus}` };
}

/** A JSON object from a body, or undefined for anything else (not JSON, an array, a scalar). */
export function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A health answer's JSON object, read up to MAX_HEALTH_BODY_BYTES (a larger body reads as none). */
export async function readJsonObject(response: Response): Promise<Record<string, unknown> | undefined> {
  if (!response.body) return undefined;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size > MAX_HEALTH_BODY_BYTES) {
        await reader.cancel();
        return undefined;
      }
    }
    return parseJsonObject(Buffer.concat(chunks));
  } catch {
    return undefined;
  }
}

/** Renders our worker's start-up progress ({ stage, message, fraction }) as one short line. */
function describeProgress(progress: unknown): string | undefined {
  if (typeof progress === 'string') return progress.slice(0, MAX_PROGRESS_CHARS);
  if (!progress || typeof progress !== 'object') return undefined;
  const p = progress as Record<string, unknown>;
  const text = [p.message, p.stage].find((v): v is string => typeof v === 'string' && v !== '');
  const percent = typeof p.fraction === 'number' && Number.isFinite(p.fraction) ? ` (${Math.round(Math.min(1, Math.max(0, p.fraction)) * 100)}%)` : '';
  return text ? (text + percent).slice(0, MAX_PROGRESS_CHARS) : undefined;
}

function networkReason(err: unknown): string {
  const code = networkErrorCode(err);
  if (code === 'ECONNREFUSED') return 'connection refused (not listening yet, or not running)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  if (code === 'ECONNRESET') return 'connection reset';
  return (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
}
