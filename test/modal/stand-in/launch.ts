/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): what runs for a
 * "sandbox". The command the SDK asked for is meant for a GPU image and is not
 * run; a launcher maps it to a local command listening on a free loopback
 * port. The default launcher runs this repository's loopback worker.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface LaunchContext {
  sandboxId: string;
  taskId: string;
  /** The entrypoint the SDK sent (`command` of sandboxes.create), not run. */
  requestedCommand: readonly string[];
  /** The container port the sandbox's server listens on, which tunnels and connect tokens reach. */
  containerPort: number;
  /** The loopback port the local command must listen on in its place. */
  port: number;
  /** Environment for the process: the stand-in's base, plus every secret (and `env`) the SDK passed, in order. */
  env: Record<string, string>;
  /** Mount path in the sandbox → directory on this machine holding that volume's files. */
  volumes: Record<string, string>;
  /** Requested GPU type (upper case, e.g. "L40S"), "" for none; `gpuCount` of them. */
  gpu: string;
  gpuCount: number;
  workdir?: string;
}

export interface LocalCommand {
  command: string;
  args: string[];
  /** Added to (and overriding) LaunchContext.env. */
  env?: Record<string, string>;
  cwd?: string;
}

export type Launcher = (ctx: LaunchContext) => LocalCommand;

/** This repository's worker, run from source with the loopback engine: the real worker, without models. */
export const loopbackWorkerLauncher: Launcher = (ctx) => ({
  command: process.execPath,
  args: ['--import', 'tsx', resolve(REPO_ROOT, 'src/cli/main.ts'), 'worker', '--engine', 'loopback', '--host', '127.0.0.1', '--port', String(ctx.port)],
  cwd: REPO_ROOT,
});

/**
 * The container port a sandbox's server uses: `--port N` (or `--port=N`) in
 * the requested command, also inside a `bash -c` string (Kyutai's moshi.server
 * takes it; its default is 8998), else the first exposed port, else the
 * readiness probe's, else 8080 (connect tokens' default).
 */
export function containerPortOf(command: readonly string[], openPorts: readonly number[], probePort: number | undefined): number {
  const flag = /(?:^|\s)--port(?:=|\s+)(\d+)(?:\s|$)/.exec(command.join(' '));
  if (flag) return Number(flag[1]);
  return openPorts[0] ?? probePort ?? 8080;
}
