/**
 * Every backend's numbers: one row each, read from the backend once per
 * snapshot into /stats `backends.<name>`, and from there into /metrics.
 */
import { backendStates, type Backend, type BackendState } from '../backend.js';
import type { Family } from './family.js';

export type BackendNumber = 'queued' | 'persisted' | 'failed' | 'dropped' | 'retried';

/** /stats `backends.<name>`. */
export type BackendSnapshot = Record<BackendNumber, number> & {
  /** `backendStates[state].up`: 1 ok, 0.5 degraded or spooling, 0 down (Graphite wants numbers). */
  up: number;
};

interface BackendRow {
  key: BackendNumber;
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  read(b: Backend): number;
}

const rows: readonly BackendRow[] = [
  { key: 'queued', name: 'scratchd_backend_queued_lines', type: 'gauge',
    help: 'Lines accepted by a backend and not yet persisted or dropped.', read: (b) => b.queued() },
  { key: 'persisted', name: 'scratchd_backend_persisted_lines_total', type: 'counter',
    help: 'Lines durably handed over by a backend (written to a file, acknowledged by Kafka).', read: (b) => b.counters.persisted },
  { key: 'failed', name: 'scratchd_backend_failures_total', type: 'counter',
    help: 'Failed write or delivery attempts by a backend; the Lines may still succeed on retry.', read: (b) => b.counters.failed },
  { key: 'dropped', name: 'scratchd_backend_dropped_lines_total', type: 'counter',
    help: 'Lines a backend gave up on (queue full, or retries exhausted at shutdown).', read: (b) => b.counters.dropped },
  { key: 'retried', name: 'scratchd_backend_retries_total', type: 'counter',
    help: 'Retries by a backend after a failure.', read: (b) => b.counters.retried },
];

/** What a snapshot holds of the backends: /stats' part, and each one's state by name (only /metrics shows it). */
export interface BackendsSnapshot {
  stats: Record<string, BackendSnapshot>;
  states: Record<string, BackendState>;
}

export function backendsSnapshot(backends: readonly Backend[]): BackendsSnapshot {
  const out: BackendsSnapshot = { stats: {}, states: {} };
  for (const b of backends) {
    const state = b.health().state;
    const s = {} as BackendSnapshot;
    for (const r of rows) s[r.key] = r.read(b);
    s.up = backendStates[state].up;
    out.stats[b.name] = s;
    out.states[b.name] = state;
  }
  return out;
}

const stateNames = Object.keys(backendStates) as BackendState[];

export const backendFamilies: readonly Family<BackendsSnapshot>[] = [
  ...rows.map((r): Family<BackendsSnapshot> => ({
    name: r.name, help: r.help, type: r.type,
    read: (s) => Object.entries(s.stats).map(([backend, b]) => ({ labels: { backend }, value: b[r.key] })),
  })),
  {
    name: 'scratchd_backend_state',
    help: `Backend health: 1 for the state the backend is in (${stateNames.join(', ')}), 0 for the others.`,
    type: 'gauge',
    read: (s) => Object.entries(s.states).flatMap(([backend, now]) =>
      stateNames.map((state) => ({ labels: { backend, state }, value: now === state ? 1 : 0 }))),
  },
];
