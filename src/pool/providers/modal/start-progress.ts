/**
 * Start-up progress of one sandbox for waiting callers and /health: the
 * stage ("building the image", "waiting for an L40S GPU", "loading the
 * model") with the time since the start, re-told every second. The stage is
 * the progress step, so a ticking clock does not count as movement for the
 * ready timeout; a new stage or a new line from the server does.
 */
const TICK_MS = 1000;

export class StartProgress {
  readonly #report: (message: string, step: string) => void;
  readonly #started = performance.now();
  #text?: string;
  #timer?: NodeJS.Timeout;
  #done = false;

  constructor(report: (message: string, step: string) => void) {
    this.#report = report;
  }

  /** A new stage, or news within one (the server's latest log line). */
  stage(text: string): void {
    if (this.#done || text === this.#text) return;
    this.#text = text;
    this.#tell();
    this.#timer ??= setInterval(() => this.#tell(), TICK_MS).unref();
  }

  elapsedSeconds(): number {
    return Math.round((performance.now() - this.#started) / 1000);
  }

  /** Ready, or given up: no more reports. */
  finish(): void {
    this.#done = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tell(): void {
    if (this.#done || this.#text === undefined) return;
    this.#report(`${this.#text} (${this.elapsedSeconds()} s)`, this.#text);
  }
}

/** "an L40S", "a T4": GPU names read letter by letter. */
export function article(word: string): string {
  return /^[AEFHILMNORSX]/i.test(word) ? 'an' : 'a';
}
