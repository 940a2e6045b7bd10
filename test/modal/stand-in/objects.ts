/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): the named and
 * ephemeral objects a sandbox refers to (environments, apps, secrets, volumes),
 * scoped by environment as in Modal. A volume is a directory on this machine.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { newId } from './ids.js';
import { RpcError } from './rpc-error.js';

/** Values of Modal's ObjectCreationType enum. */
export const ObjectCreation = { Lookup: 0, CreateIfMissing: 1, CreateFailIfExists: 2, CreateOverwriteIfExists: 3, AnonymousOwnedByApp: 4, Ephemeral: 5 } as const;

export interface EnvironmentRecord {
  environmentId: string;
  name: string;
}

export interface AppRecord {
  appId: string;
  name: string;
  environmentName: string;
  createdAt: number;
}

export interface SecretRecord {
  secretId: string;
  name?: string;
  environmentName: string;
  env: Record<string, string>;
  createdAt: number;
}

export interface VolumeRecord {
  volumeId: string;
  name?: string;
  environmentName: string;
  version: number;
  /** Where the volume's files live on this machine. */
  dir: string;
  createdAt: number;
}

export const DEFAULT_ENVIRONMENT = 'main';

const key = (environmentName: string, name: string) => `${environmentName}\u0000${name}`;

export class ObjectRegistry {
  readonly #environments = new Map<string, EnvironmentRecord>();
  readonly #apps = new Map<string, AppRecord>();
  readonly #appsByName = new Map<string, AppRecord>();
  readonly #secrets = new Map<string, SecretRecord>();
  readonly #secretsByName = new Map<string, SecretRecord>();
  readonly #volumes = new Map<string, VolumeRecord>();
  readonly #volumesByName = new Map<string, VolumeRecord>();

  constructor(
    private readonly volumesRoot: string,
    environmentNames: readonly string[],
  ) {
    for (const name of [DEFAULT_ENVIRONMENT, ...environmentNames]) this.#environments.set(name, { environmentId: newId('en'), name });
  }

  /** "" means the workspace's default environment, as in Modal. */
  environment(name: string): EnvironmentRecord {
    const resolved = name || DEFAULT_ENVIRONMENT;
    const env = this.#environments.get(resolved);
    if (!env) throw new RpcError(status.NOT_FOUND, `Environment '${resolved}' not found`);
    return env;
  }

  appGetOrCreate(name: string, environmentName: string, creation: number): AppRecord {
    if (!name) throw new RpcError(status.INVALID_ARGUMENT, 'App name is required');
    const env = this.environment(environmentName);
    const existing = this.#appsByName.get(key(env.name, name));
    if (existing) {
      if (creation === ObjectCreation.CreateFailIfExists) throw new RpcError(status.ALREADY_EXISTS, `App '${name}' already exists`);
      return existing;
    }
    if (creation === ObjectCreation.Lookup) throw new RpcError(status.NOT_FOUND, `App '${name}' not found in environment '${env.name}'`);
    const app: AppRecord = { appId: newId('ap'), name, environmentName: env.name, createdAt: Date.now() / 1000 };
    this.#apps.set(app.appId, app);
    this.#appsByName.set(key(env.name, name), app);
    return app;
  }

  app(appId: string): AppRecord {
    const app = this.#apps.get(appId);
    if (!app) throw new RpcError(status.NOT_FOUND, `App ${appId} not found`);
    return app;
  }

  appByName(name: string, environmentName: string): AppRecord | undefined {
    return this.#appsByName.get(key(this.environment(environmentName).name, name));
  }

  /** A named secret, as if made in Modal's dashboard (tests use it for e.g. a model hub token). */
  putSecret(name: string, env: Record<string, string>, environmentName = ''): SecretRecord {
    const envName = this.environment(environmentName).name;
    const secret: SecretRecord = { secretId: newId('st'), name, environmentName: envName, env: { ...env }, createdAt: Date.now() / 1000 };
    this.#secrets.set(secret.secretId, secret);
    this.#secretsByName.set(key(envName, name), secret);
    return secret;
  }

  secretGetOrCreate(req: { deploymentName: string; environmentName: string; objectCreationType: number; envDict: Record<string, string>; requiredKeys: string[] }): SecretRecord {
    const envName = this.environment(req.environmentName).name;
    if (req.objectCreationType === ObjectCreation.Ephemeral || (!req.deploymentName && req.objectCreationType === ObjectCreation.AnonymousOwnedByApp)) {
      const secret: SecretRecord = { secretId: newId('st'), environmentName: envName, env: { ...req.envDict }, createdAt: Date.now() / 1000 };
      this.#secrets.set(secret.secretId, secret);
      return secret;
    }
    if (!req.deploymentName) throw new RpcError(status.INVALID_ARGUMENT, 'Secret name is required');
    let secret = this.#secretsByName.get(key(envName, req.deploymentName));
    if (secret && req.objectCreationType === ObjectCreation.CreateFailIfExists) throw new RpcError(status.ALREADY_EXISTS, `Secret '${req.deploymentName}' already exists`);
    if (!secret || req.objectCreationType === ObjectCreation.CreateOverwriteIfExists) {
      if (req.objectCreationType === ObjectCreation.Lookup) throw new RpcError(status.NOT_FOUND, `Secret '${req.deploymentName}' not found in environment '${envName}'`);
      secret = this.putSecret(req.deploymentName, req.envDict, envName);
    }
    const missing = req.requiredKeys.filter((k) => !(k in secret.env));
    if (missing.length > 0) throw new RpcError(status.FAILED_PRECONDITION, `Secret is missing key(s): ${missing.join(', ')}`);
    return secret;
  }

  secret(secretId: string): SecretRecord {
    const secret = this.#secrets.get(secretId);
    if (!secret) throw new RpcError(status.NOT_FOUND, `Secret ${secretId} not found`);
    return secret;
  }

  volumeGetOrCreate(req: { deploymentName: string; environmentName: string; objectCreationType: number; version: number }): VolumeRecord {
    const envName = this.environment(req.environmentName).name;
    const make = (name?: string): VolumeRecord => {
      const volumeId = newId('vo');
      const dir = join(this.volumesRoot, volumeId);
      mkdirSync(dir, { recursive: true });
      const volume: VolumeRecord = { volumeId, name, environmentName: envName, version: req.version || 1, dir, createdAt: Date.now() / 1000 };
      this.#volumes.set(volumeId, volume);
      if (name) this.#volumesByName.set(key(envName, name), volume);
      return volume;
    };
    if (req.objectCreationType === ObjectCreation.Ephemeral) return make();
    if (!req.deploymentName) throw new RpcError(status.INVALID_ARGUMENT, 'Volume name is required');
    const existing = this.#volumesByName.get(key(envName, req.deploymentName));
    if (existing) {
      if (req.objectCreationType === ObjectCreation.CreateFailIfExists) throw new RpcError(status.ALREADY_EXISTS, `Volume '${req.deploymentName}' already exists`);
      return existing;
    }
    if (req.objectCreationType === ObjectCreation.Lookup) throw new RpcError(status.NOT_FOUND, `Volume '${req.deploymentName}' not found in environment '${envName}'`);
    return make(req.deploymentName);
  }

  volume(volumeId: string): VolumeRecord {
    const volume = this.#volumes.get(volumeId);
    if (!volume) throw new RpcError(status.NOT_FOUND, `Volume ${volumeId} not found`);
    return volume;
  }

  volumes(): VolumeRecord[] {
    return [...this.#volumes.values()];
  }
}
