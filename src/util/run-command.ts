/** Runs a program to completion, keeping only the start of its stderr for error messages. */
import { spawn } from 'node:child_process';

export interface RunCommandOptions {
  signal?: AbortSignal;
  /** Kills the program (SIGTERM) after this many ms. */
  timeout?: number;
  /** Stderr stops being collected once this many characters are in (a chatty program must not grow memory). */
  stderrLimit?: number;
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Resolves when the program exits, whatever its status, so each caller words
 * its own failure; rejects only when it could not run (not found, aborted).
 */
export function runCommand(bin: string, args: string[], opts: RunCommandOptions = {}): Promise<CommandResult> {
  const limit = opts.stderrLimit ?? 4000;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], signal: opts.signal, timeout: opts.timeout });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < limit) stderr += d.toString();
    });
    child.on('error', (err) => reject(err));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}
