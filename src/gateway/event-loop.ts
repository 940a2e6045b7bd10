/**
 * How late the gateway's event loop runs, as a Prometheus histogram, and
 * whether each stall was the gateway's own work or the machine: a timer that
 * should fire every 100 ms measures how late it fired, and the process's CPU
 * time over the same interval says who held it up. A stall during which this
 * process itself burnt a stall's worth of CPU (synchronous work, GC) is ours,
 * however much a busy machine stretched it; one during which it hardly ran
 * was spent waiting for a core (other processes, a loaded machine, a paused
 * VM).
 */
import type { Counter, Histogram } from 'prom-client';

const INTERVAL_MS = 100;
/** Later than this counts as a stall. */
export const STALL_MS = 250;

export interface StallRecord {
  at: number;
  delayMs: number;
  /** CPU time this process used meanwhile. */
  cpuMs: number;
  cause: 'gateway' | 'machine';
}

export interface EventLoopMonitor {
  /** The longest delay seen, and the last stalls (newest last). */
  summary(): { maxDelayMs: number; stalls: StallRecord[] };
  stop(): void;
}

export function monitorEventLoop(delay: Histogram, stalls: Counter<'cause'>): EventLoopMonitor {
  let expected = performance.now() + INTERVAL_MS;
  let cpu = process.cpuUsage();
  let maxDelayMs = 0;
  const recent: StallRecord[] = [];
  const timer = setInterval(() => {
    const now = performance.now();
    const lateMs = Math.max(0, now - expected);
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    expected = now + INTERVAL_MS;
    delay.observe(lateMs / 1000);
    maxDelayMs = Math.max(maxDelayMs, lateMs);
    if (lateMs >= STALL_MS) {
      const cpuMs = (used.user + used.system) / 1000;
      const cause = cpuMs >= STALL_MS ? 'gateway' : 'machine';
      stalls.labels(cause).inc();
      recent.push({ at: Date.now(), delayMs: Math.round(lateMs), cpuMs: Math.round(cpuMs), cause });
      if (recent.length > 10) recent.shift();
    }
  }, INTERVAL_MS);
  timer.unref();
  return {
    summary: () => ({ maxDelayMs: Math.round(maxDelayMs), stalls: [...recent] }),
    stop: () => clearInterval(timer),
  };
}
