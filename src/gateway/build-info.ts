/**
 * What this gateway was built from, in the ten strings of the Rust backend's
 * build_info (see src/protocol/server-info.ts): read once, from git when the
 * gateway runs from a checkout, else "unknown". Fields named after Rust's
 * toolchain carry Node's equivalents, so nothing in them is made up.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildInfo } from '../protocol/server-info.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let cached: BuildInfo | undefined;

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).toString().trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

function builtAt(): Date | undefined {
  try {
    return statSync(resolve(REPO, 'dist/.build-stamp')).mtime;
  } catch {
    return undefined;
  }
}

export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const built = builtAt();
  const commitSeconds = Number(git(['log', '-1', '--format=%ct']));
  const committed = Number.isFinite(commitSeconds) ? new Date(commitSeconds * 1000) : undefined;
  const target = `${arch()}-${platform()}`;
  cached = {
    build_timestamp: built ? String(Math.floor(built.getTime() / 1000)) : 'unknown',
    build_date: built ? built.toISOString() : 'unknown',
    git_branch: git(['rev-parse', '--abbrev-ref', 'HEAD']),
    git_timestamp: committed ? String(commitSeconds) : 'unknown',
    git_date: committed ? committed.toISOString() : 'unknown',
    git_hash: git(['rev-parse', 'HEAD']),
    git_describe: git(['describe', '--always', '--dirty']),
    rustc_host_triple: target,
    rustc_version: `node ${process.version}`,
    cargo_target_triple: target,
  };
  return cached;
}
