/**
 * Engines that answer in lockstep (Moshi, the loopback) send reply position
 * p while hearing position p; the time since we sent p is the reply lag.
 */
import { isBosPage, pageGranule } from '../../../src/protocol/index.js';

/** Enough send times for minutes of 20 ms pages; older ones cannot match a live reply. */
const KEEP = 4000;

export class ReplyLag {
  private sent: { granule: number; at: number }[] = [];
  /**
   * Every entry before `head` has a granule below `headBound`. Replies come
   * in granule order, so the search resumes at `head` instead of rescanning
   * thousands of entries per page; a reply that goes backwards starts over.
   */
  private head = 0;
  private headBound = 0;
  private receivedBos = false;
  /** Exponentially smoothed, in ms; undefined until a reply matched. */
  value: number | undefined;

  /** One of our pages, ending at `granule` (48 kHz samples), left at `at` ms. */
  onSent(granule: number, at: number): void {
    if (granule < 0) return;
    this.sent.push({ granule, at });
    if (this.sent.length > KEEP) {
      this.sent.splice(0, KEEP / 2);
      this.head = Math.max(0, this.head - KEEP / 2);
    }
  }

  /** A page of the server's stream arrived at `at` ms. */
  onReceived(page: Uint8Array, at: number): void {
    // Granules only line up within the stream that began with the handshake.
    if (isBosPage(page)) this.receivedBos = true;
    const granule = pageGranule(page);
    if (!this.receivedBos || granule <= 0) return;
    if (granule < this.headBound) this.head = 0;
    let i = this.head;
    while (i < this.sent.length && this.sent[i].granule < granule) i++;
    this.head = i;
    this.headBound = granule;
    if (i === this.sent.length) return;
    const match = this.sent[i];
    const lag = at - match.at;
    this.value = this.value === undefined ? lag : this.value * 0.9 + lag * 0.1;
  }
}
