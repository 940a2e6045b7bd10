/**
 * What the relay benchmark reads from Linux's /proc. A process's own CPU time
 * (utime + stime, all its threads) is what a relay costs, whatever else the
 * machine runs: waiting for a core adds wall time, not CPU time. Reading it
 * from outside costs the relay nothing, unlike scraping its /metrics.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc's CPU times; 100 on every Linux build we know of, asked anyway. */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Seconds of CPU `pid` has used, in user space and in the kernel; NaN once it is gone. */
export function processCpuTimes(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name in parentheses may hold spaces: count fields from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / TICKS_PER_SECOND, system: Number(fields[12]) / TICKS_PER_SECOND };
  } catch {
    return { user: NaN, system: NaN };
  }
}

export function processRssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface CoreTimes {
  busy: number;
  total: number;
}

/** Per core, cumulative ticks busy (anything but idle and iowait) and in all. Empty where /proc/stat is missing. */
export function coreTimes(): CoreTimes[] {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'latin1');
  } catch {
    return [];
  }
  const cores: CoreTimes[] = [];
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal; guest time is already inside user.
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    cores[Number(m[1])] = { busy: total - v[3] - v[4], total };
  }
  return cores;
}

/** Busy fraction of each core between two coreTimes() readings. */
export function coreBusy(before: CoreTimes[], after: CoreTimes[]): number[] {
  return after.map((a, i) => {
    const b = before[i];
    const dt = b ? a.total - b.total : 0;
    return dt > 0 ? (a.busy - b.busy) / dt : NaN;
  });
}

export interface ThreadTimes {
  /** CPU time of the main thread, which runs the relay's event loop (ns). */
  mainRunNs: number;
  /** Time the main thread was ready to run but waited for a core (ns): what other load costs the relay in latency. */
  mainWaitNs: number;
  /** CPU time of every other thread (ns): garbage collection, JIT, I/O helpers. */
  helpersRunNs: number;
}

/** From /proc/<pid>/task/<tid>/schedstat (run ns, run-queue wait ns, time slices); NaN where schedstats are off. */
export function threadTimes(pid: number): ThreadTimes {
  const read = (tid: string) => readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').trim().split(' ').map(Number);
  try {
    const [mainRunNs, mainWaitNs] = read(String(pid));
    let helpersRunNs = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      if (tid === String(pid)) continue;
      try {
        helpersRunNs += read(tid)[0];
      } catch {
        // A helper thread that ended meanwhile.
      }
    }
    return { mainRunNs, mainWaitNs, helpersRunNs };
  } catch {
    return { mainRunNs: NaN, mainWaitNs: NaN, helpersRunNs: NaN };
  }
}
