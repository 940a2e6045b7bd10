/**
 * Engines that answer in lockstep (Moshi, the loopback) send reply position
 * p while hearing position p; the time since we sent p is the reply lag.
 */
import { isBosPage, pageGranule } from '../audio/ogg-page-writer.js';

/** Enough send times for minutes of 20 ms pages; older ones cannot match a live reply. */
const KEEP = 4000;

export class ReplyLag {
  private sent: { granule: number; at: number }[] = [];
  private receivedBos = false;
  /** Exponentially smoothed, in ms; undefined until a reply matched. */
  value: number | undefined;

  /** One of our pages, ending at `granule` (48 kHz samples), left at `at` ms. */
  onSent(granule: number, at: number): void {
    if (granule < 0) return;
    this.sent.push({ granule, at });
    if (this.sent.length > KEEP) this.sent.splice(0, KEEP / 2);
  }

  /** A page of the server's stream arrived at `at` ms. */
  onReceived(page: Uint8Array, at: number): void {
    // Granules only line up within the stream that began with the handshake.
    if (isBosPage(page)) this.receivedBos = true;
    const granule = pageGranule(page);
    if (!this.receivedBos || granule <= 0) return;
    const match = this.sent.find((s) => s.granule >= granule);
    if (!match) return;
    const lag = at - match.at;
    this.value = this.value === undefined ? lag : this.value * 0.9 + lag * 0.1;
  }
}
