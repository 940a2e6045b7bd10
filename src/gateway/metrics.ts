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

/**
 * How a conversation ended, for quillman_sessions_total: `completed` only
 * for one that went live and ended normally; `left_queue` for a client that
 * left before it was connected; `shutdown` when the gateway closed it after
 * its drain grace; otherwise the error that ended it.
 */
export type SessionOutcome = ErrorKind | 'completed' | 'left_queue' | 'worker_error' | 'shutdown' | 'too_many_queued';

/** prom-client's default gauges whose names end in `_total`, which Prometheus keeps for counters. */
const MISNAMED_DEFAULTS = ['nodejs_active_resources_total', 'nodejs_active_handles_total', 'nodejs_active_requests_total'];
const PREFIX = 'quillman_gateway_';

export type GatewayMetrics = ReturnType<typeof createMetrics>;

export function createMetrics(pool: WorkerPool) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  // Their per-type twins (…_active_handles{type}) stay; sum them for the totals.
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(PREFIX + name);
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
    refusals: new Counter({
      name: 'quillman_refusals_total',
      help: 'Connections and conversations refused before they started, by reason (origin, credentials, per-address limits, slow requests, draining)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    eventLoopDelay: new Histogram({
      name: `${PREFIX}event_loop_delay_seconds`,
      help: "How late the gateway's event loop ran a 100 ms timer",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    eventLoopStalls: new Counter({
      name: `${PREFIX}event_loop_stalls_total`,
      help: 'Event-loop delays over 250 ms, by cause: gateway (it used 250 ms of CPU meanwhile: its own work) or machine (it waited for a core)',
      labelNames: ['cause'],
      registers: [registry],
    }),
  };
  return m;
}

const KIND_NAMES = ['handshake', 'audio', 'text', 'control', 'metadata', 'error', 'ping'];
export const kindLabel = (kind: number) => KIND_NAMES[kind] ?? 'other';
