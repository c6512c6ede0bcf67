/**
 * What the Kafka backend exposes to src/stats/metrics.ts beyond
 * BackendCounters: plain numbers read at scrape time (types only here, so
 * the stats module never loads node-rdkafka).
 */
import type { DeliveryLatency } from './latency.js';
import type { SpoolDrops } from './spool/drop-reasons.js';

export interface SpoolSnapshot {
  /** The spool was opened (recovery done). */
  ready: number;
  /** 1 while Lines go to the spool instead of librdkafka. */
  spilling: number;
  bytes: number;
  records: number;
  segments: number;
  /** Age of the oldest unacknowledged record, 0 when empty. */
  oldest_age_seconds: number;
  /** Records acknowledged per second over the last few seconds. */
  drain_rate_per_second: number;
  /** Share of the event loop's time the drainer's slices may take now (src/kafka/drain-pace.ts). */
  drain_duty: number;
  spilled_total: number;
  /** Records Kafka acknowledged; records given up on (refused, failed for good) are counted as dropped instead. */
  drained_total: number;
  /** Errors of the drainer; it retries after each. */
  drain_errors_total: number;
  dropped_total: SpoolDrops;
  quarantined_total: number;
}

export interface KafkaStatsSource {
  readonly deliveryLatency: DeliveryLatency;
  /** null when the spool is off. */
  spoolSnapshot(): SpoolSnapshot | null;
}

export function isKafkaStatsSource(b: object): b is KafkaStatsSource {
  return 'deliveryLatency' in b && typeof (b as { spoolSnapshot?: unknown }).spoolSnapshot === 'function';
}
