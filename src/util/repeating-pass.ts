/**
 * Runs a pass over shared state, and runs it again while something it called
 * back into asked for another. A nested call only flags, so passes never
 * interleave and none works from a state changed under its feet.
 */
export class RepeatingPass {
  #running = false;
  #again = false;

  /** Set when a nested call asked for another pass since this one began: a long pass may stop early. */
  get requested(): boolean {
    return this.#again;
  }

  /** Returns false when called from inside a pass: that call only asked for another. */
  run(pass: () => void): boolean {
    if (this.#running) {
      this.#again = true;
      return false;
    }
    this.#running = true;
    try {
      do {
        this.#again = false;
        pass();
      } while (this.#again);
    } finally {
      this.#running = false;
    }
    return true;
  }
}
