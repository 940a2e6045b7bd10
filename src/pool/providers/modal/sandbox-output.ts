/**
 * A sandbox's stdout and stderr, read through the SDK while it lives: each
 * line goes to a callback (the gateway log, start-up progress), and the last
 * lines are kept to quote when a sandbox fails to start ("CUDA out of
 * memory" beats "it exited with code 1"). A progress bar redrawn with "\r"
 * (a weights download) counts as news, not as lines to keep.
 */
import { LineSplitter, readLogLine } from '../../../util/output-lines.js';
import type { Sandbox } from './control-plane.js';

const KEPT_LINES = 40;
/** A line longer than this is cut (and a run-on one is taken in pieces). */
const MAX_LINE_CHARS = 2000;

export type OutputLine = { text: string; stream: 'stdout' | 'stderr'; redrawn: boolean };

export class SandboxOutput {
  readonly #lines: string[] = [];
  readonly #readers: ReadableStreamDefaultReader<string>[] = [];
  readonly done: Promise<void>;

  constructor(sandbox: Sandbox, onLine: (line: OutputLine) => void) {
    const read = async (stream: ReadableStream<string>, name: 'stdout' | 'stderr') => {
      const reader = stream.getReader();
      this.#readers.push(reader);
      const take = ({ text: raw, redrawn }: { text: string; redrawn: boolean }) => {
        const text = readLogLine(raw).message.slice(0, MAX_LINE_CHARS);
        if (!text.trim()) return;
        if (!redrawn) {
          this.#lines.push(text);
          if (this.#lines.length > KEPT_LINES) this.#lines.shift();
        }
        onLine({ text, stream: name, redrawn });
      };
      const lines = new LineSplitter(MAX_LINE_CHARS);
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          lines.push(value).forEach(take);
        }
        lines.flush().forEach(take);
      } catch {
        // The sandbox is gone or the stream was cancelled: what was read is what there is.
      }
    };
    this.done = Promise.all([read(sandbox.stdout, 'stdout'), read(sandbox.stderr, 'stderr')]).then(() => undefined);
  }

  last(lines: number): string[] {
    return this.#lines.slice(-lines);
  }

  stop(): void {
    for (const reader of this.#readers) void reader.cancel().catch(() => undefined);
  }
}
