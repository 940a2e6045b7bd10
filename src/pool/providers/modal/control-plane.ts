/**
 * Our one door to Modal's SDK (`modal` on npm, the 0.x line). It is loaded
 * lazily, so gateways with other providers never load it, and its errors
 * are turned into sentences that say what to do.
 *
 * A small gRPC middleware (the SDK's documented `grpcMiddleware` option)
 * watches two things the SDK does not hand out: the id of a sandbox while
 * `sandboxes.create()` still waits for a GPU (to end it when our own wait is
 * over), and the log lines of an image build (progress for callers).
 */
import type { App, Image, ModalClient, ModalClientParams, Sandbox, Volume } from 'modal';
import { TAG } from './sandbox-spec.js';

export type ModalSdk = typeof import('modal');
export type { App, Image, ModalClient, Sandbox, Volume };

type Middleware = NonNullable<ModalClientParams['grpcMiddleware']>[number];

/** The parts of a nice-grpc call our middleware reads. */
interface ObservedCall {
  method: { path: string };
  request: { tags?: { tagName: string; tagValue: string }[] };
  responseStream: boolean;
  next(request: unknown, options: unknown): AsyncGenerator<unknown, unknown, undefined>;
}

export class ControlPlaneWatch {
  /** Sandbox ids by their start tag, from SandboxCreate answers (which come before placement). */
  readonly #created = new Map<string, string>();
  /** Listeners for image build log lines. */
  readonly #buildListeners = new Set<(line: string) => void>();

  readonly middleware: Middleware = ((watch: ControlPlaneWatch) =>
    async function* observe(call: ObservedCall, options: unknown): AsyncGenerator<unknown, unknown, undefined> {
      const path = call.method.path;
      if (!call.responseStream) {
        const response = yield* call.next(call.request, options);
        if (path.endsWith('/SandboxCreate')) {
          const start = call.request.tags?.find((t) => t.tagName === TAG.start)?.tagValue;
          const id = (response as { sandboxId?: string }).sandboxId;
          if (start && id) watch.#created.set(start, id);
        }
        return response;
      }
      for await (const item of call.next(call.request, options)) {
        if (path.endsWith('/ImageJoinStreaming') && watch.#buildListeners.size) {
          for (const log of (item as { taskLogs?: { data?: string }[] }).taskLogs ?? []) watch.#buildLog(log.data ?? '');
        }
        yield item;
      }
      return undefined;
    })(this) as unknown as Middleware;

  /** The sandbox created with this start tag, once Modal has answered SandboxCreate. */
  createdWith(startTag: string): string | undefined {
    return this.#created.get(startTag);
  }

  forget(startTag: string): void {
    this.#created.delete(startTag);
  }

  onBuildLog(listener: (line: string) => void): () => void {
    this.#buildListeners.add(listener);
    return () => this.#buildListeners.delete(listener);
  }

  #buildLog(data: string): void {
    for (const line of data.split('\n')) {
      const text = line.trim();
      if (text) for (const listener of this.#buildListeners) listener(text);
    }
  }
}

export async function loadSdk(): Promise<ModalSdk> {
  try {
    return await import('modal');
  } catch (err) {
    throw new ModalSetupError(`Modal's SDK (the npm package "modal", 0.x) could not be loaded: ${(err as Error).message}. Run \`npm install\` in the QuiLLMan folder.`, { cause: err });
  }
}

/** A problem with the account or the settings that trying again will not fix. */
export class ModalSetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModalSetupError';
  }
}

const FIX_TOKEN =
  'Create a token with `modal token new` (or on https://modal.com/settings → API tokens), then set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the gateway\'s environment, or keep it in ~/.modal.toml (MODAL_PROFILE picks a profile).';

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

export function serverUrl(): string {
  return process.env.MODAL_SERVER_URL || 'https://api.modal.com:443 (or server_url in ~/.modal.toml)';
}

/**
 * Turns an SDK error on the way to a sandbox into one the user can act on:
 * a ModalSetupError for what trying again will not fix (credentials, an
 * unknown environment), else the error as it is.
 */
export function explainSetupError(err: unknown, what: string): unknown {
  const message = (err as Error)?.message ?? String(err);
  if (/missing credentials/i.test(message)) {
    // The SDK's own text adds nothing to ours.
    return new ModalSetupError(`Modal credentials are missing, so the gateway cannot ${what}. ${FIX_TOKEN}`);
  }
  const code = grpcCode(err);
  const details = (err as { details?: string }).details || message;
  if (code === 16) return new ModalSetupError(`Modal refused the token (${details}), so the gateway cannot ${what}. ${FIX_TOKEN}`, { cause: err });
  if (code === 7) return new ModalSetupError(`Modal's token has no permission to ${what} (${details}). Use a token of a workspace that may create sandboxes.`, { cause: err });
  if (code === 14) return new Error(`Modal cannot be reached at ${serverUrl()} to ${what}: ${details}. Check the network; the gateway keeps trying.`, { cause: err });
  const name = (err as Error)?.name;
  if (code === 3 || name === 'InvalidError') {
    return new ModalSetupError(`Modal refused the sandbox's settings (${details}). Check pool.modal: gpu, region, cpu, memoryMiB, sandboxTimeoutSeconds.`, { cause: err });
  }
  if (/secret/i.test(message) && (code === 5 || code === 9 || name === 'NotFoundError')) {
    return new ModalSetupError(`${details}. Create the secret in Modal (modal secret create …, or the dashboard) or fix pool.modal.secrets.`, { cause: err });
  }
  if (/environment/i.test(message) && (code === 5 || /not found/i.test(message))) {
    return new ModalSetupError(`Modal has no such environment (${details}). Fix pool.modal.environment (--modal-environment) or MODAL_ENVIRONMENT.`, { cause: err });
  }
  return err;
}

/** Modal found no GPU: the SDK's own 21-minute limit, or the server saying RESOURCE_EXHAUSTED. */
export function isNoCapacity(sdk: ModalSdk, err: unknown): boolean {
  return err instanceof sdk.ResourceExhaustedError || grpcCode(err) === 8;
}

export function isGone(sdk: ModalSdk, err: unknown): boolean {
  return err instanceof sdk.NotFoundError || err instanceof sdk.ConflictError || grpcCode(err) === 5 || grpcCode(err) === 9;
}
