import type { DownloadProgress } from './download.js';

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/**
 * A progress bar on stderr. On a terminal it redraws one line; in logs (CI,
 * systemd) it prints a line per 10% so the log stays readable.
 */
export function stderrProgressBar(label: string, stream: NodeJS.WriteStream = process.stderr): (p: DownloadProgress) => void {
  const tty = Boolean(stream.isTTY);
  let lastDecile = -1;
  let lastDraw = 0;
  return (p) => {
    const fraction = p.total ? Math.min(1, p.received / p.total) : undefined;
    const done = p.done === true;
    const now = Date.now();
    const rate = p.bytesPerSecond ? ` ${mb(p.bytesPerSecond)} MB/s` : '';
    const amount = p.total ? `${mb(p.received)}/${mb(p.total)} MB` : `${mb(p.received)} MB`;
    if (tty) {
      if (!done && now - lastDraw < 100) return;
      lastDraw = now;
      const width = 24;
      const filled = fraction === undefined ? 0 : Math.round(fraction * width);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      const pct = fraction === undefined ? '  ?%' : `${Math.floor(fraction * 100)}%`.padStart(4);
      stream.write(`\r${label} [${bar}] ${pct} ${amount}${rate}   ${done ? '\n' : ''}`);
      return;
    }
    const decile = fraction === undefined ? -1 : Math.floor(fraction * 10);
    if (done || decile > lastDecile) {
      lastDecile = decile;
      const pct = fraction === undefined ? '' : ` ${Math.floor(fraction * 100)}%`;
      stream.write(`${label}${pct} ${amount}${rate}${done ? ' done' : ''}\n`);
    }
  };
}

/** One bar per file of a download of several, each labelled `${prefix}${file}`. */
export function stderrProgressBars(prefix: string, stream: NodeJS.WriteStream = process.stderr): (file: string, p: DownloadProgress) => void {
  const bars = new Map<string, (p: DownloadProgress) => void>();
  return (file, p) => {
    let bar = bars.get(file);
    if (!bar) bars.set(file, (bar = stderrProgressBar(`${prefix}${file}`, stream)));
    bar(p);
  };
}
