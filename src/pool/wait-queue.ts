/**
 * The line of conversations waiting for a worker: first come, first served,
 * except callers marked `front` (retrying after a refusal: they already had
 * their turn), who go ahead of everyone not so marked. Every waiter hears its
 * 1-based place whenever its place or the length of the line changes.
 */
import { RepeatingPass } from '../util/repeating-pass.js';

export interface QueueEntry {
  readonly front: boolean;
  /** Last place and length told to this waiter, so nobody hears the same thing twice. */
  told?: { position: number; queued: number };
}

export class WaitQueue<E extends QueueEntry> {
  readonly #entries: E[] = [];

  constructor(private readonly tell: (entry: E, position: number, queued: number) => void) {}

  get length(): number {
    return this.#entries.length;
  }

  /** Entries in order, first served first. */
  get entries(): readonly E[] {
    return this.#entries;
  }

  add(entry: E): void {
    const at = entry.front ? this.#entries.findIndex((e) => !e.front) : -1;
    if (at < 0) this.#entries.push(entry);
    else this.#entries.splice(at, 0, entry);
    this.#tellAll();
  }

  /** Returns false when the entry was not waiting (already served or removed). */
  remove(entry: E): boolean {
    const at = this.#entries.indexOf(entry);
    if (at < 0) return false;
    this.#entries.splice(at, 1);
    this.#tellAll();
    return true;
  }

  shift(): E | undefined {
    const entry = this.#entries.shift();
    if (entry) this.#tellAll();
    return entry;
  }

  /** Empties the line without telling anyone (they are about to be rejected). */
  drain(): E[] {
    return this.#entries.splice(0);
  }

  readonly #telling = new RepeatingPass();

  #tellAll(): void {
    // A waiter may leave (abort) from inside its callback: start over on the new line rather than tell stale places.
    this.#telling.run(() => {
      const queued = this.#entries.length;
      for (let i = 0; i < this.#entries.length && !this.#telling.requested; i++) {
        const entry = this.#entries[i];
        const position = i + 1;
        if (entry.told?.position === position && entry.told.queued === queued) continue;
        entry.told = { position, queued };
        this.tell(entry, position, queued);
      }
    });
  }
}
