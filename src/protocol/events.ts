/**
 * Metadata (kind-4) events the gateway and our workers send. Each carries a
 * `type`, which is how a client tells them from the free-form JSON that
 * Kyutai's Rust server sends at the start of a session.
 */

import type { ServerInfo } from './server-info.js';

export type ServerEvent =
  /** Once per session, in the shape Kyutai's web client expects of its server (src/protocol/server-info.ts). */
  | ServerInfo
  /** Waiting for a worker; `position` is 1 for the next in line. */
  | { type: 'queue'; position: number; queued: number }
  /** A worker was assigned and is starting or resetting. */
  | { type: 'warming_up'; message?: string; fraction?: number }
  /** Sent once live: what the session is allowed. */
  | { type: 'session'; id: string; maxSeconds: number; worker?: string }
  | { type: 'ending_soon'; secondsLeft: number }
  | { type: 'ended'; reason: string }
  /** Machine-readable twin of a kind-5 error frame. */
  | { type: 'error'; code: string; message: string };

export function isTypedEvent(data: unknown): data is { type: string } {
  return typeof data === 'object' && data !== null && typeof (data as { type?: unknown }).type === 'string';
}
