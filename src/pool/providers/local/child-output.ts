/**
 * A worker process's stdout and stderr, relayed into the gateway's log line by
 * line with the worker id in front, and the last lines of each kept so that a
 * worker that will not start can be explained to the user in its own words.
 * Bounded: long lines are cut, a flood is thinned to a rate, the tail is short.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { LineSplitter, readLogLine } from '../../../util/output-lines.js';

const MAX_LOG_LINE_CHARS = 2000;
const MAX_TAIL_LINE_CHARS = 300;
const TAIL_LINES = 20;
const MAX_LINES_PER_SECOND = 200;

type StreamName = 'stdout' | 'stderr';

export class ChildOutput {
  #tails: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  #windowStart = 0;
  #windowLines = 0;
  #dropped = 0;

  constructor(
    private readonly log: Logger,
    private readonly prefix: string,
  ) {}

  attach(stream: Readable, name: StreamName): void {
    stream.setEncoding('utf8');
    // Each redraw of a progress bar (tqdm) is a line here: the log shows the download moving.
    const lines = new LineSplitter(MAX_LOG_LINE_CHARS);
    stream.on('data', (chunk: string) => {
      for (const { text } of lines.push(chunk)) this.#line(name, text);
    });
    stream.on('end', () => {
      for (const { text } of lines.flush()) this.#line(name, text);
    });
  }

  /** The last lines the process wrote to stderr, or to stdout if it wrote nothing to stderr. */
  lastLines(count: number): string[] {
    const tail = this.#tails.stderr.length ? this.#tails.stderr : this.#tails.stdout;
    return tail.slice(-count);
  }

  /** Forgets the tail: called before each new process, so errors quote the latest attempt. */
  clear(): void {
    this.#tails = { stdout: [], stderr: [] };
  }

  #line(name: StreamName, raw: string): void {
    const text = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trimEnd();
    if (!text.trim()) return;
    const { level, message } = readLogLine(text);
    const tail = this.#tails[name];
    tail.push(cut(message, MAX_TAIL_LINE_CHARS));
    if (tail.length > TAIL_LINES) tail.shift();

    const now = Date.now();
    if (now - this.#windowStart >= 1000) {
      if (this.#dropped) this.log.warn(`[${this.prefix}] ${this.#dropped} lines of output not logged (more than ${MAX_LINES_PER_SECOND} a second)`);
      this.#windowStart = now;
      this.#windowLines = 0;
      this.#dropped = 0;
    }
    if (++this.#windowLines > MAX_LINES_PER_SECOND) {
      this.#dropped++;
      return;
    }
    this.log[level]({ stream: name }, `[${this.prefix}] ${cut(message, MAX_LOG_LINE_CHARS)}`);
  }
}

function cut(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) + '…' : text;
}
