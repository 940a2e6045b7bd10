/**
 * Prometheus metrics for the gateway. One registry per gateway instance, so
 * several gateways in one process (tests) never mix their counts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { WorkerPool, WorkerState } from '../pool/types.js';

const WORKER_STATES: WorkerState[] = ['starting', 'idle', 'busy', 'resetting', 'stopping', 'down'];

export type ErrorKind =
  | 'invalid_params'
  | 'malformed_frame'
  | 'corrupt_audio'
  | 'text_message'
  | 'oversized_message'
  | 'too_fast'
  | 'slow_consumer'
  | 'client_idle'
  | 'queue_full'
  | 'no_workers'
  | 'worker_refused'
  | 'worker_unreachable'
  | 'worker_stalled'
  | 'worker_lost'
  | 'time_limit';

export type GatewayMetrics = ReturnType<typeof createMetrics>;

export function createMetrics(pool: WorkerPool) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'quillman_gateway_' });
  const m = {
    registry,
    sessionsActive: new Gauge({ name: 'quillman_sessions_active', help: 'Conversations relaying to a worker', registers: [registry] }),
    sessionsQueued: new Gauge({
      name: 'quillman_sessions_queued',
      help: 'Conversations waiting for a worker',
      registers: [registry],
      collect() {
        this.set(pool.snapshot().queued);
      },
    }),
    sessionsTotal: new Counter({ name: 'quillman_sessions_total', help: 'Conversations accepted, by how they ended', labelNames: ['outcome'], registers: [registry] }),
    workers: new Gauge({
      name: 'quillman_workers',
      help: 'Workers by state',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const counts = new Map<string, number>(WORKER_STATES.map((s) => [s, 0]));
        for (const w of pool.snapshot().workers) counts.set(w.state, (counts.get(w.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    }),
    timeToHandshake: new Histogram({
      name: 'quillman_time_to_handshake_seconds',
      help: 'From the client connecting to the worker handshake reaching it, queueing included',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    sessionLength: new Histogram({
      name: 'quillman_session_length_seconds',
      help: 'Length of live conversations',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200],
      registers: [registry],
    }),
    framesRelayed: new Counter({ name: 'quillman_frames_relayed_total', help: 'Frames relayed, by direction and kind', labelNames: ['direction', 'kind'], registers: [registry] }),
    errors: new Counter({ name: 'quillman_errors_total', help: 'Errors, by kind', labelNames: ['kind'], registers: [registry] }),
  };
  return m;
}

const KIND_NAMES = ['handshake', 'audio', 'text', 'control', 'metadata', 'error', 'ping'];
export const kindLabel = (kind: number) => KIND_NAMES[kind] ?? 'other';
