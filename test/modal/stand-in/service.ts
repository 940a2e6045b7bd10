/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): the gRPC
 * handlers of `modal.client.ModalClient`, in the order the SDK's GPU sandbox
 * path calls them. Each checks credentials first, is counted, and answers the
 * status codes the SDK maps to its errors (NOT_FOUND → NotFoundError,
 * ALREADY_EXISTS → AlreadyExistsError, UNAUTHENTICATED is not retried).
 */
import { status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { AuthGate } from './auth.js';
import type { Fleet } from './fleet.js';
import { GenericStatus, type GenericResult, type ImageBuilder } from './images.js';
import { containerPortOf } from './launch.js';
import type { ObjectRegistry } from './objects.js';
import type { ConnectProxy } from './connect-proxy.js';
import { RpcError } from './rpc-error.js';
import type { SandboxDefinition, SandboxRuntime, StandInSandbox } from './sandbox.js';

/** GPU types Modal accepts (its docs; "!" pins an exact H100), upper case as the SDK sends them. */
export const GPU_TYPES = new Set(['T4', 'L4', 'A10', 'A10G', 'L40S', 'A100', 'A100-40GB', 'A100-80GB', 'H100', 'H100!', 'H200', 'B200', 'ANY']);
const MAX_TIMEOUT_SECS = 24 * 3600;
const MAX_LONG_POLL_S = 55;
const LIST_PAGE = 50;

export interface ServiceDeps {
  auth: AuthGate;
  objects: ObjectRegistry;
  images: ImageBuilder;
  fleet: Fleet;
  proxy: ConnectProxy;
  count(method: string): void;
  runtimeFor(definition: SandboxDefinition): SandboxRuntime;
  log(line: string): void;
}

interface Tag {
  tagName: string;
  tagValue: string;
}

interface SandboxRequestDefinition {
  entrypointArgs: string[];
  imageId: string;
  secretIds: string[];
  resources?: { gpuConfig?: { gpuType: string; count: number } };
  timeoutSecs: number;
  workdir?: string;
  volumeMounts: { volumeId: string; mountPath: string; readOnly: boolean; subPath?: string }[];
  schedulerPlacement?: { regions: string[] };
  openPorts?: { ports: { port: number; unencrypted: boolean; tunnelType?: number }[] };
  name?: string;
  idleTimeoutSecs?: number;
  readinessProbe?: { tcpPort?: number; execCommand?: { argv: string[] }; intervalMs?: number };
  inboundCidrAllowlist: string[];
}

function tagsToRecord(tags: Tag[]): Record<string, string> {
  return Object.fromEntries(tags.map((t) => [t.tagName, t.tagValue]));
}

function recordToTags(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([tagName, tagValue]) => ({ tagName, tagValue }));
}

const seconds = (timeout: number | undefined, fallback: number) => Math.max(0, Math.min(timeout ?? fallback, MAX_LONG_POLL_S)) * 1000;

function abortOnCancel(call: { on(event: 'cancelled', fn: () => void): unknown }): AbortSignal {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return controller.signal;
}

export function createService(deps: ServiceDeps): UntypedServiceImplementation {
  const { auth, objects, images, fleet, proxy } = deps;

  function unary<Req, Res>(method: string, fn: (req: Req, signal: AbortSignal) => Res | Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      deps.count(method);
      const signal = abortOnCancel(call);
      void (async () => {
        try {
          auth.check(call.metadata, method);
          callback(null, await fn(call.request, signal));
        } catch (err) {
          if (err instanceof RpcError) return callback({ code: err.code, details: err.message });
          deps.log(`Modal stand-in: ${method} failed: ${err instanceof Error ? err.stack : String(err)}`);
          callback({ code: status.INTERNAL, details: `stand-in error in ${method}: ${String(err)}` });
        }
      })();
    };
  }

  function sandbox(sandboxId: string): StandInSandbox {
    const sb = fleet.get(sandboxId);
    if (!sb) throw new RpcError(status.NOT_FOUND, `Sandbox ${sandboxId} not found`);
    return sb;
  }

  const handleMetadata = (sb: StandInSandbox) => ({ appId: sb.definition.appId, result: sb.result });

  function tunnelData(sb: StandInSandbox) {
    return sb.tunnels().map((t) => (t.encrypted ? { host: t.host, port: t.port, containerPort: t.containerPort } : { host: t.host, port: t.port, unencryptedHost: t.host, unencryptedPort: t.port, containerPort: t.containerPort }));
  }

  function sandboxInfo(sb: StandInSandbox) {
    const def = sb.definition;
    return {
      id: sb.sandboxId,
      createdAt: sb.createdAt,
      taskInfo: sb.taskId
        ? { id: sb.taskId, startedAt: sb.startedAt ?? 0, finishedAt: sb.finishedAt ?? 0, result: sb.result, enqueuedAt: sb.createdAt, gpuType: def.gpu, sandboxId: sb.sandboxId, gpuConfig: def.gpu ? { gpuType: def.gpu, count: def.gpuCount } : undefined }
        : undefined,
      appId: def.appId,
      tags: recordToTags(sb.tags),
      name: def.name ?? '',
      imageId: def.imageId,
      regions: def.regions,
      timeoutSecs: def.timeoutSecs,
      idleTimeoutSecs: def.idleTimeoutSecs,
      readyAt: sb.readyAt,
      tunnels: tunnelData(sb),
      metadata: handleMetadata(sb),
    };
  }

  function definitionFrom(appId: string, environmentName: string, tags: Tag[], d: SandboxRequestDefinition): SandboxDefinition {
    if (!images.ready(d.imageId)) throw new RpcError(status.FAILED_PRECONDITION, `Image ${d.imageId || '(none)'} is not built`);
    for (const id of d.secretIds) objects.secret(id);
    const gpu = (d.resources?.gpuConfig?.gpuType ?? '').toUpperCase();
    const gpuCount = gpu ? Math.max(1, d.resources?.gpuConfig?.count ?? 1) : 0;
    if (gpu && !GPU_TYPES.has(gpu)) throw new RpcError(status.INVALID_ARGUMENT, `Unknown GPU type '${gpu}'; choose one of ${[...GPU_TYPES].join(', ')}`);
    if (d.timeoutSecs > MAX_TIMEOUT_SECS) throw new RpcError(status.INVALID_ARGUMENT, `Sandbox timeout ${d.timeoutSecs}s exceeds the 24 h maximum`);
    const volumes: Record<string, string> = {};
    for (const mount of d.volumeMounts) {
      const volume = objects.volume(mount.volumeId);
      volumes[mount.mountPath] = mount.subPath ? `${volume.dir}/${mount.subPath.replace(/^\/+/, '')}` : volume.dir;
    }
    const openPorts = (d.openPorts?.ports ?? []).map((p) => ({ port: p.port, unencrypted: p.unencrypted }));
    const probe = d.readinessProbe;
    if (probe?.execCommand) deps.log(`Modal stand-in: exec readiness probes are not run; sandbox will never report ready (${probe.execCommand.argv.join(' ')})`);
    return {
      appId,
      environmentName,
      name: d.name || undefined,
      tags: tagsToRecord(tags),
      imageId: d.imageId,
      requestedCommand: [...d.entrypointArgs],
      secretIds: [...d.secretIds],
      gpu,
      gpuCount,
      timeoutSecs: d.timeoutSecs,
      idleTimeoutSecs: d.idleTimeoutSecs || undefined,
      openPorts,
      containerPort: containerPortOf(d.entrypointArgs, openPorts.map((p) => p.port), probe?.tcpPort),
      volumes,
      readinessProbe: probe?.tcpPort !== undefined ? { tcpPort: probe.tcpPort, intervalMs: probe.intervalMs || 100 } : undefined,
      inboundCidrAllowlist: [...d.inboundCidrAllowlist],
      regions: [...(d.schedulerPlacement?.regions ?? [])],
      workdir: d.workdir,
    };
  }

  function list(req: { appId: string; beforeTimestamp: number; environmentName: string; includeFinished: boolean; tags: Tag[] }) {
    const env = objects.environment(req.environmentName).name;
    if (req.appId) objects.app(req.appId);
    const wanted = tagsToRecord(req.tags);
    const found = fleet
      .find({ appId: req.appId || undefined, tags: wanted, state: req.includeFinished ? undefined : 'live' })
      .filter((sb) => req.appId || objects.app(sb.definition.appId).environmentName === env)
      .filter((sb) => !req.beforeTimestamp || sb.createdAt < req.beforeTimestamp)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, LIST_PAGE);
    return { sandboxes: found.map(sandboxInfo) };
  }

  function fromName(req: { sandboxName: string; environmentName: string; appName: string; includeTerminated: boolean }) {
    const app = objects.appByName(req.appName, req.environmentName);
    const notFound = new RpcError(status.NOT_FOUND, `Sandbox with name '${req.sandboxName}' not found in App '${req.appName}'`);
    if (!app) throw notFound;
    const named = fleet.find({ appId: app.appId, name: req.sandboxName }).sort((a, b) => b.createdAt - a.createdAt);
    const sb = named.find((s) => s.isLive) ?? (req.includeTerminated ? named[0] : undefined);
    if (!sb) throw notFound;
    return { sandboxId: sb.sandboxId, metadata: handleMetadata(sb) };
  }

  return {
    AuthTokenGet: unary('AuthTokenGet', () => ({ token: auth.mintJwt() })),

    AppGetOrCreate: unary('AppGetOrCreate', (req: { appName: string; environmentName: string; objectCreationType: number }) => {
      return { appId: objects.appGetOrCreate(req.appName, req.environmentName, req.objectCreationType).appId };
    }),

    EnvironmentGetOrCreate: unary('EnvironmentGetOrCreate', (req: { deploymentName: string }) => {
      const env = objects.environment(req.deploymentName);
      return { environmentId: env.environmentId, metadata: { name: env.name, settings: { imageBuilderVersion: '2025.06', webhookSuffix: 'modal.run' } } };
    }),

    ImageGetOrCreate: unary(
      'ImageGetOrCreate',
      (req: { appId: string; forceBuild: boolean; builderVersion: string; image?: { dockerfileCommands: string[]; baseImages: { imageId: string; dockerTag: string }[]; secretIds: string[]; gpuConfig?: { gpuType: string } } }) => {
        objects.app(req.appId);
        const image = req.image ?? { dockerfileCommands: [], baseImages: [], secretIds: [] };
        for (const id of image.secretIds) objects.secret(id);
        const built = images.getOrCreate({ dockerfileCommands: image.dockerfileCommands, baseImages: image.baseImages, builderVersion: req.builderVersion, gpuType: image.gpuConfig?.gpuType ?? '', forceBuild: req.forceBuild });
        return { imageId: built.imageId, result: built.result, metadata: built.result ? { imageBuilderVersion: req.builderVersion } : undefined };
      },
    ),

    ImageJoinStreaming: (call: ServerWritableStream<{ imageId: string; timeout: number; lastEntryId: string }, unknown>) => {
      deps.count('ImageJoinStreaming');
      const signal = abortOnCancel(call);
      void (async () => {
        try {
          auth.check(call.metadata, 'ImageJoinStreaming');
          await images.join(call.request.imageId, call.request.lastEntryId, call.request.timeout, (item) => call.write(item), signal);
          call.end();
        } catch (err) {
          const code = err instanceof RpcError ? err.code : status.INTERNAL;
          call.emit('error', { code, details: err instanceof Error ? err.message : String(err) });
        }
      })();
    },

    SecretGetOrCreate: unary('SecretGetOrCreate', (req: { deploymentName: string; environmentName: string; objectCreationType: number; envDict: Record<string, string>; requiredKeys: string[] }) => {
      const secret = objects.secretGetOrCreate(req);
      return { secretId: secret.secretId, metadata: { name: secret.name ?? '', keys: Object.keys(secret.env), environmentName: secret.environmentName, creationInfo: { createdAt: secret.createdAt, createdBy: 'stand-in' } } };
    }),

    VolumeGetOrCreate: unary('VolumeGetOrCreate', (req: { deploymentName: string; environmentName: string; objectCreationType: number; version: number }) => {
      const volume = objects.volumeGetOrCreate(req);
      return { volumeId: volume.volumeId, version: volume.version, metadata: { version: volume.version, name: volume.name ?? '', creationInfo: { createdAt: volume.createdAt, createdBy: 'stand-in' } } };
    }),

    SandboxCreate: unary('SandboxCreate', (req: { appId: string; definition?: SandboxRequestDefinition; environmentName: string; tags: Tag[] }) => {
      const app = objects.app(req.appId);
      if (!req.definition) throw new RpcError(status.INVALID_ARGUMENT, 'Sandbox definition is required');
      const definition = definitionFrom(app.appId, app.environmentName, req.tags, req.definition);
      if (definition.name && fleet.find({ appId: app.appId, name: definition.name, state: 'live' }).length > 0) {
        throw new RpcError(status.ALREADY_EXISTS, `Sandbox with name '${definition.name}' already exists in App '${app.name}'`);
      }
      const sb = fleet.create(definition, deps.runtimeFor(definition));
      return { sandboxId: sb.sandboxId, metadata: handleMetadata(sb) };
    }),

    SandboxGetTaskId: unary('SandboxGetTaskId', async (req: { sandboxId: string; timeout?: number; waitUntilReady: boolean }, signal) => {
      const sb = sandbox(req.sandboxId);
      const settled = () => !sb.isLive || (sb.taskId !== undefined && (!req.waitUntilReady || sb.readyAt !== undefined));
      if (req.timeout !== undefined) await sb.waitFor(settled, seconds(req.timeout, 0), signal);
      if (sb.capacityError) throw new RpcError(status.RESOURCE_EXHAUSTED, sb.capacityError);
      if (sb.taskId !== undefined && sb.state !== 'finished') return { taskId: sb.taskId };
      if (sb.result) return { taskResult: sb.result };
      return {};
    }),

    SandboxGetTunnels: unary('SandboxGetTunnels', async (req: { sandboxId: string; timeout: number }, signal) => {
      const sb = sandbox(req.sandboxId);
      const ready = await sb.waitFor(() => sb.tunnelsReady || !sb.isLive, seconds(req.timeout, 50), signal);
      if (!ready) return { result: { status: GenericStatus.Timeout, exception: 'Tunnels not ready in time', exitcode: 0 } satisfies GenericResult, tunnels: [] };
      return { tunnels: sb.state === 'running' ? tunnelData(sb) : [] };
    }),

    SandboxWait: unary('SandboxWait', async (req: { sandboxId: string; timeout: number }, signal) => {
      const sb = sandbox(req.sandboxId);
      await sb.waitFor(() => !sb.isLive, seconds(req.timeout, 0), signal);
      return { result: sb.result, metadata: handleMetadata(sb) };
    }),

    SandboxTerminate: unary('SandboxTerminate', (req: { sandboxId: string }) => {
      const sb = sandbox(req.sandboxId);
      const existing = sb.result;
      sb.stop({ status: GenericStatus.Terminated, exception: 'Sandbox terminated', exitcode: 137 });
      return { existingResult: existing };
    }),

    SandboxList: unary('SandboxList', list),
    SandboxListV2: unary('SandboxListV2', list),

    SandboxGetFromName: unary('SandboxGetFromName', fromName),
    // Only V1 sandboxes exist here; the SDK falls back to SandboxGetFromName on NOT_FOUND.
    SandboxGetFromNameV2: unary('SandboxGetFromNameV2', (req: { sandboxName: string; appName: string }) => {
      throw new RpcError(status.NOT_FOUND, `Sandbox with name '${req.sandboxName}' not found in App '${req.appName}'`);
    }),

    SandboxCreateConnectToken: unary('SandboxCreateConnectToken', (req: { sandboxId: string; userMetadata: string; port?: number }) => {
      const sb = sandbox(req.sandboxId);
      if (!sb.isLive) throw new RpcError(status.FAILED_PRECONDITION, `Sandbox ${sb.sandboxId} has already finished`);
      const port = req.port ?? 8080;
      return { url: proxy.url, token: proxy.issue(sb.sandboxId, port, req.userMetadata) };
    }),

    // sb.stdout / sb.stderr: the process's output, resumable by entry id; eof once the sandbox has finished.
    SandboxGetLogs: (call: ServerWritableStream<{ sandboxId: string; fileDescriptor: number; timeout: number; lastEntryId: string }, unknown>) => {
      deps.count('SandboxGetLogs');
      const signal = abortOnCancel(call);
      void (async () => {
        try {
          auth.check(call.metadata, 'SandboxGetLogs');
          const sb = sandbox(call.request.sandboxId);
          const fd = call.request.fileDescriptor === 2 ? 2 : 1;
          let after = Number((call.request.lastEntryId || '0').split('-')[0]) || 0;
          const deadline = Date.now() + seconds(call.request.timeout, MAX_LONG_POLL_S);
          for (;;) {
            const chunks = sb.logsAfter(after, fd);
            if (chunks.length > 0) {
              after = chunks[chunks.length - 1]!.seq;
              call.write({ taskId: sb.taskId ?? '', sandboxId: sb.sandboxId, entryId: `${after}-0`, items: chunks.map((c) => ({ data: c.data, fileDescriptor: fd, timestamp: Date.now() / 1000 })) });
            }
            if (!sb.isLive && sb.logsAfter(after, fd).length === 0) {
              call.write({ sandboxId: sb.sandboxId, entryId: `${after}-0`, items: [], eof: true });
              break;
            }
            const remaining = deadline - Date.now();
            if (remaining <= 0 || signal.aborted) break;
            await sb.waitFor(() => !sb.isLive || sb.logsAfter(after, fd).length > 0, remaining, signal);
          }
          call.end();
        } catch (err) {
          const code = err instanceof RpcError ? err.code : status.INTERNAL;
          call.emit('error', { code, details: err instanceof Error ? err.message : String(err) });
        }
      })();
    },

    SandboxTagsGet: unary('SandboxTagsGet', (req: { sandboxId: string }) => ({ tags: recordToTags(sandbox(req.sandboxId).tags) })),

    SandboxTagsSet: unary('SandboxTagsSet', (req: { sandboxId: string; tags: Tag[] }) => {
      sandbox(req.sandboxId).tags = tagsToRecord(req.tags);
      return {};
    }),
  };
}

