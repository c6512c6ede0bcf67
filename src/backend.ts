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

export type BackendState = 'ok' | 'degraded' | 'down';

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
  /** Lines accepted by `send` and not yet persisted or dropped. */
  queued(): number;
  health(): BackendHealth;
  start(): Promise<void>;
  send(line: Line): boolean;
  /** SIGHUP: reopen whatever the backend holds open (log rotation). */
  reopen(): void;
  /** Stop accepting, persist everything queued, release resources. */
  close(): Promise<void>;
}

export function newCounters(): BackendCounters {
  return { persisted: 0, failed: 0, dropped: 0, retried: 0 };
}
