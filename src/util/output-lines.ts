/**
 * Reading a process's output as lines, for logs and error messages: chunks
 * cut into lines (a progress bar's "\r" redraw flagged as such, a run-on
 * line taken in pieces), and our own workers' pino JSON lines read back as
 * their message and level.
 */

export interface OutputLine {
  text: string;
  /** Ended by a lone "\r": a progress bar (tqdm) redrawing itself, news rather than a line to keep. */
  redrawn: boolean;
}

export class LineSplitter {
  #partial = '';

  /** `maxChars`: a line without an end longer than this is taken as it is, so memory stays bounded. */
  constructor(private readonly maxChars: number) {}

  push(chunk: string): OutputLine[] {
    const out: OutputLine[] = [];
    this.#partial += chunk;
    for (let end = this.#partial.search(/[\r\n]/); end >= 0; end = this.#partial.search(/[\r\n]/)) {
      const p = this.#partial;
      const crlf = p[end] === '\r' && p[end + 1] === '\n';
      out.push({ text: p.slice(0, end), redrawn: p[end] === '\r' && !crlf });
      this.#partial = p.slice(end + (crlf ? 2 : 1));
    }
    if (this.#partial.length > this.maxChars) {
      out.push({ text: this.#partial, redrawn: false });
      this.#partial = '';
    }
    return out;
  }

  /** What is left at the end of the stream. */
  flush(): OutputLine[] {
    const rest = this.#partial;
    this.#partial = '';
    return rest ? [{ text: rest, redrawn: false }] : [];
  }
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const PINO_LEVELS: Record<number, LogLevel> = { 10: 'debug', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'error' };

/** A pino JSON line reads as its message (and its error's) at its level, instead of a JSON blob inside a JSON log. */
export function readLogLine(text: string): { level: LogLevel; message: string } {
  if (text.startsWith('{')) {
    try {
      const record = JSON.parse(text) as { level?: unknown; msg?: unknown; err?: { message?: unknown } };
      if (typeof record.msg === 'string') {
        const level = (typeof record.level === 'number' && PINO_LEVELS[record.level]) || 'info';
        const error = typeof record.err?.message === 'string' ? `: ${record.err.message}` : '';
        return { level, message: record.msg + error };
      }
    } catch {
      // Not JSON after all: as it is.
    }
  }
  return { level: 'info', message: text };
}
