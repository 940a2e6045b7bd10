/**
 * Resumable, checksummed file download.
 *
 * Bytes go to `<dest>.partial`; a later attempt asks for the rest with an HTTP
 * Range request, so an interrupted 400 MB model download does not restart
 * from zero. The file only takes its real name once its SHA-256 matched.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, truncate, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { once } from 'node:events';
import { networkErrorCode } from '../util/network-error.js';

export interface DownloadProgress {
  url: string;
  received: number;
  /** Total size when known (from Content-Length / Content-Range or the registry). */
  total?: number;
  bytesPerSecond?: number;
  /** Bytes that were already on disk from an earlier, interrupted attempt. */
  resumedFrom: number;
  done?: boolean;
}

export interface DownloadOptions {
  url: string;
  dest: string;
  /** Expected lower-case hex SHA-256; null/undefined skips the check (the hash is still returned). */
  sha256?: string | null;
  /** Size hint for progress when the server sends no length. */
  expectedSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Abort when no byte arrives for this long. */
  idleTimeoutMs?: number;
  /** Injected for tests; defaults to global fetch. */
  fetchImpl?: typeof fetch;
}

export interface DownloadResult {
  path: string;
  sha256: string;
  bytes: number;
  resumedFrom: number;
}

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly code: 'network' | 'http' | 'checksum' | 'aborted' | 'timeout' | 'io',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DownloadError';
  }
}

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  ENOTFOUND: 'the host name could not be resolved',
  EAI_AGAIN: 'the host name could not be resolved (no DNS)',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
  ENETUNREACH: 'the network is unreachable',
  EHOSTUNREACH: 'the host is unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_SOCKET: 'the connection broke',
};

function describeNetworkError(url: string, err: unknown): DownloadError {
  const code = networkErrorCode(err);
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  })();
  const why = (code && NETWORK_CODES[code]) ?? (err instanceof Error ? err.message : String(err));
  return new DownloadError(
    `Cannot download ${url}: ${why}${code ? ` (${code})` : ''}. Check that this machine can reach ${host}, run \`quillman models pull\` where it can and copy the cache folder, or point QUILLMAN_MODEL_MIRROR at a mirror.`,
    'network',
    { cause: err },
  );
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, { signal });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Parses "bytes 100-199/1000" → 1000. */
function totalFromContentRange(header: string | null): number | undefined {
  const m = header?.match(/\/(\d+)\s*$/);
  return m ? Number(m[1]) : undefined;
}

export async function downloadFile(opts: DownloadOptions): Promise<DownloadResult> {
  const { url, dest, onProgress } = opts;
  const fetchImpl = opts.fetchImpl ?? fetch;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
  const partial = `${dest}.partial`;
  await mkdir(dirname(dest), { recursive: true });

  let offset = await sizeOf(partial);
  const resumedFrom = offset;
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(opts.signal?.reason);
  if (opts.signal?.aborted) throw new DownloadError(`Download of ${url} was cancelled`, 'aborted');
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let timedOut = false;
  // One timer for the whole download, pushed back on every chunk.
  const idleTimer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error('idle timeout'));
  }, idleTimeoutMs);

  try {
    let response: Response;
    try {
      response = await fetchImpl(url, {
        headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
        signal: controller.signal,
        redirect: 'follow',
      });
    } catch (err) {
      if (opts.signal?.aborted) throw new DownloadError(`Download of ${url} was cancelled`, 'aborted', { cause: err });
      if (timedOut) throw new DownloadError(`Download of ${url} stalled for ${idleTimeoutMs / 1000} s`, 'timeout', { cause: err });
      throw describeNetworkError(url, err);
    }

    let total: number | undefined;
    if (response.status === 416 && offset > 0) {
      // We already hold every byte; the checksum below decides whether they are right.
      await response.body?.cancel();
      total = offset;
    } else if (response.status === 206 && offset > 0) {
      total = totalFromContentRange(response.headers.get('content-range'));
    } else if (response.ok) {
      if (offset > 0) {
        // The server ignored the Range header: start over rather than append a second copy.
        await truncate(partial, 0);
        offset = 0;
      }
      const len = Number(response.headers.get('content-length'));
      total = Number.isFinite(len) && len > 0 ? len : undefined;
    } else {
      await response.body?.cancel();
      throw new DownloadError(`Cannot download ${url}: the server answered HTTP ${response.status} ${response.statusText}`.trim(), 'http');
    }
    total ??= opts.expectedSize;

    if (response.status !== 416 && response.body) {
      const out = createWriteStream(partial, { flags: offset > 0 ? 'a' : 'w' });
      const started = Date.now();
      let received = offset;
      let sinceStart = 0;
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          idleTimer.refresh();
          received += chunk.byteLength;
          sinceStart += chunk.byteLength;
          if (!out.write(chunk)) await once(out, 'drain');
          const secs = (Date.now() - started) / 1000;
          onProgress?.({ url, received, total, resumedFrom, bytesPerSecond: secs > 0.2 ? sinceStart / secs : undefined });
        }
      } catch (err) {
        if (opts.signal?.aborted) throw new DownloadError(`Download of ${url} was cancelled; run again to resume`, 'aborted', { cause: err });
        if (timedOut) throw new DownloadError(`Download of ${url} stalled for ${idleTimeoutMs / 1000} s; run again to resume`, 'timeout', { cause: err });
        throw new DownloadError(`Download of ${url} broke off after ${received} bytes; run again to resume`, 'network', { cause: err });
      } finally {
        out.end();
        await once(out, 'close').catch(() => undefined);
      }
    }
    clearTimeout(idleTimer);

    const bytes = await sizeOf(partial);
    if (total !== undefined && response.status !== 416 && bytes < total && opts.expectedSize !== total) {
      throw new DownloadError(`Download of ${url} ended early (${bytes} of ${total} bytes); run again to resume`, 'network');
    }
    const digest = await sha256File(partial, opts.signal);
    if (opts.sha256 && digest !== opts.sha256.toLowerCase()) {
      await unlink(partial).catch(() => undefined);
      throw new DownloadError(
        `Checksum mismatch for ${url}: expected sha256 ${opts.sha256}, got ${digest}. The damaged file was deleted; run again to download it afresh.`,
        'checksum',
      );
    }
    await rename(partial, dest);
    onProgress?.({ url, received: bytes, total: bytes, resumedFrom, done: true });
    return { path: dest, sha256: digest, bytes, resumedFrom };
  } finally {
    clearTimeout(idleTimer);
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}
