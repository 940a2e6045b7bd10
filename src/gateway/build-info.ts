/**
 * What this gateway was built from, in the ten strings of the Rust backend's
 * build_info (see src/protocol/server-info.ts): read once, from git when the
 * gateway runs from a checkout, else "unknown". Fields named after Rust's
 * toolchain carry Node's equivalents, so nothing in them is made up.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BuildInfo } from '../protocol/server-info.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let cached: BuildInfo | undefined;

async function git(args: string[]): Promise<string> {
  try {
    return (await promisify(execFile)('git', args, { cwd: REPO, timeout: 5000 })).stdout.trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

async function builtAt(): Promise<Date | undefined> {
  try {
    return (await stat(resolve(REPO, 'dist/.build-stamp'))).mtime;
  } catch {
    return undefined;
  }
}

/** The ten strings from what was read ("unknown" for what could not be). */
function toBuildInfo(parts: { built?: Date; commit: string; branch: string; hash: string; describe: string }): BuildInfo {
  const commitSeconds = Number(parts.commit);
  const committed = Number.isFinite(commitSeconds) ? new Date(commitSeconds * 1000) : undefined;
  const target = `${arch()}-${platform()}`;
  return {
    build_timestamp: parts.built ? String(Math.floor(parts.built.getTime() / 1000)) : 'unknown',
    build_date: parts.built ? parts.built.toISOString() : 'unknown',
    git_branch: parts.branch,
    git_timestamp: committed ? String(commitSeconds) : 'unknown',
    git_date: committed ? committed.toISOString() : 'unknown',
    git_hash: parts.hash,
    git_describe: parts.describe,
    rustc_host_triple: target,
    rustc_version: `node ${process.version}`,
    cargo_target_triple: target,
  };
}

/** Reads it, off the event loop: the gateway does so once as it starts, before any conversation needs it. */
export async function loadBuildInfo(): Promise<BuildInfo> {
  if (cached) return cached;
  const [built, commit, branch, hash, describe] = await Promise.all([
    builtAt(),
    git(['log', '-1', '--format=%ct']),
    git(['rev-parse', '--abbrev-ref', 'HEAD']),
    git(['rev-parse', 'HEAD']),
    git(['describe', '--always', '--dirty']),
  ]);
  cached = toBuildInfo({ built, commit, branch, hash, describe });
  return cached;
}

/** What loadBuildInfo() read; "unknown" everywhere if it has not finished. */
export function buildInfo(): BuildInfo {
  return cached ?? toBuildInfo({ commit: 'unknown', branch: 'unknown', hash: 'unknown', describe: 'unknown' });
}
