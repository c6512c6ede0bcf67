import type { Line } from './line.js';

/** Counters every backend keeps; the stats listener reads them as they are. */
export interface BackendCounters {
  /** Lines durably handed over (written to a file, acknowledged by Kafka). */
  persisted: number;
  /** Failed attempts (a write or delivery error); the Line may still succeed on retry. */
  failed: number;
  /** Lines given up on: queue full, or retries exhausted at shutdown. */
  dropped: number;
  /** Retries after a failure. */
  retried: number;
}

/**
 * Every state a backend can be in, and its `up` in /stats (Graphite wants a
 * number): the one list the type, /stats and `scratchd_backend_state` read.
 */
export const backendStates = {
  ok: { up: 1 },
  /** Retrying; may recover on its own. */
  degraded: { up: 0.5 },
  /** Kafka only: unreachable, but every Line is safe in the disk spool. */
  spooling: { up: 0.5 },
  down: { up: 0 },
} as const;

export type BackendState = keyof typeof backendStates;

/** Why a backend gave up on a Line. */
export type LossReason =
  | 'queue_full' // its bounded queue was full at `send`
  | 'refused' // the destination refused it outright (e.g. too large)
  | 'delivery_failed' // a delivery failed for good
  | 'drain_timeout' // still queued when the shutdown deadline passed
  | 'spool_full' | 'disk_full' | 'spool_error' // the Kafka spool could not take it
  | 'relay_full'; // refused by a serving thread: its relay to the backends was full

/**
 * Told of every Line a backend gives up on, by flavor name and arrival time
 * (ms since the epoch); `count` Lines of that flavor around that time when the
 * backend only knows them in bulk. The loss-window tracker listens; the
 * default ignores.
 */
export type LossListener = (backend: string, flavor: string, time: number, reason: LossReason, count?: number) => void;

export const ignoreLoss: LossListener = () => {};

export interface BackendHealth {
  state: BackendState;
  reason?: string;
}

/**
 * A destination for Lines. `send` is called on the request path: it must
 * never block or throw, and returns false when the Line was dropped (its
 * bounded queue is full or it is closing).
 */
export interface Backend {
  readonly name: string;
  readonly counters: BackendCounters;
  /** Called for every Line given up on; set by main before `start`. */
  onLoss: LossListener;
  /** Lines accepted by `send` and not yet persisted or dropped. */
  queued(): number;
  health(): BackendHealth;
  start(): Promise<void>;
  send(line: Line): boolean;
  /** SIGHUP: reopen whatever the backend holds open (log rotation). */
  reopen(): void;
  /** Stop accepting, persist everything queued, release resources. */
  close(): Promise<void>;
  /**
   * The drain deadline passed while `close` still runs, and the process is
   * about to exit: count every Line still queued as dropped and tell the loss
   * listener (`drain_timeout`). A backend whose `close` has its own deadline
   * and reports its leftovers itself (Kafka: `flushTimeoutMs`) needs none.
   */
  abandon?(): void;
}

export function newCounters(): BackendCounters {
  return { persisted: 0, failed: 0, dropped: 0, retried: 0 };
}
