/**
 * A watchdog for the case close() cannot cover: the gateway killed outright
 * (SIGKILL, the kernel's OOM killer, a test runner tearing its workers down).
 * Worker processes run in process groups of their own, so nothing else would
 * stop them, and they would keep their ports and gigabytes of GPU memory.
 *
 * The reaper is one small Node process per pool, in its own session. The pool
 * tells it, over its stdin, which process groups are workers. When that pipe
 * closes without a goodbye, however the gateway died, the reaper sends the
 * groups SIGTERM, then SIGKILL after the grace period, and exits. On close()
 * the pool says goodbye first and the reaper just exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Logger } from 'pino';

/** Runs as `node -e`: plain JavaScript, no imports of ours, so it starts fast and needs no build. */
const REAPER_SOURCE = `
const graceMs = Number(process.argv[1]);
const groups = new Set();
let pending = '';
let goodbye = false;
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  pending += chunk;
  for (let end = pending.indexOf('\\n'); end >= 0; end = pending.indexOf('\\n')) {
    const [op, id] = pending.slice(0, end).split(' ');
    pending = pending.slice(end + 1);
    if (op === '+') groups.add(Number(id));
    else if (op === '-') groups.delete(Number(id));
    else if (op === 'bye') goodbye = true;
  }
});
process.stdin.on('end', () => {
  if (goodbye) process.exit(0);
  const signal = (name) => {
    for (const id of groups) {
      try { process.kill(-id, name); } catch { groups.delete(id); }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  setInterval(() => {
    signal(Date.now() >= deadline ? 'SIGKILL' : 0);
    if (groups.size === 0 || Date.now() >= deadline) process.exit(0);
  }, 100);
});
`;

/** How long close() waits for the reaper to exit before killing it. */
const EXIT_WAIT_MS = 2_000;

export class Reaper {
  readonly #child: ChildProcess;

  constructor(graceMs: number, log: Logger) {
    this.#child = spawn(process.execPath, ['-e', REAPER_SOURCE, String(graceMs)], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    this.#child.on('error', (err) => log.warn({ err }, 'the worker watchdog could not run: workers may outlive a gateway that is killed'));
    this.#child.stdin?.on('error', () => undefined);
  }

  watch(processGroup: number): void {
    this.#child.stdin?.write(`+ ${processGroup}\n`);
  }

  forget(processGroup: number): void {
    this.#child.stdin?.write(`- ${processGroup}\n`);
  }

  /** The pool closed properly: the reaper exits without touching anything. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = once(child, 'exit');
    child.stdin?.end('bye\n');
    const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WAIT_MS);
    await exited;
    clearTimeout(timer);
  }
}
