/**
 * Finding the processes a test started, however deep: each test file puts a
 * marker in its workers' environment and looks for it in /proc at the end.
 * No vitest import, so benchmarks can use it too.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

export const MARKER_VARIABLE = 'QUILLMAN_POOL_TEST_MARKER';

export function newMarker(): string {
  return randomUUID();
}

/** Pids of live processes whose environment carries `marker`: children, grandchildren, orphans alike. */
export function processesWithMarker(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
      if (!environ.includes(`${MARKER_VARIABLE}=${marker}`)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      // A zombie has exited; its parent just has not collected it yet.
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      found.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

/** Stops a detached child and everything it started (its workers), killing what is still there after `graceMs`. */
export async function stopProcessGroup(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(-pid, 'SIGTERM');
  const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(-pid, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
