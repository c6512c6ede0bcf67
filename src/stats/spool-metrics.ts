/** The Kafka spool's numbers in /metrics (only when the spool is on), read from its /stats `kafka_spool`. */
import type { Registry } from 'prom-client';
import type { KafkaStatsSource, SpoolSnapshot } from '../kafka/stats.js';
import { spoolDropReasons } from '../kafka/spool/drop-reasons.js';
import { one, registerFamilies, type Family } from './family.js';

const gauge = (name: string, help: string, read: (s: SpoolSnapshot) => number): Family<SpoolSnapshot | null> =>
  ({ name, help, type: 'gauge', read: (s) => one(s === null ? 0 : read(s)) });
const counter = (name: string, help: string, read: (s: SpoolSnapshot) => number): Family<SpoolSnapshot | null> =>
  ({ name, help, type: 'counter', read: (s) => one(s === null ? 0 : read(s)) });

export const spoolFamilies: readonly Family<SpoolSnapshot | null>[] = [
  gauge('scratchd_kafka_spool_bytes', 'Bytes of the Kafka spool\'s segment files on disk.', (s) => s.bytes),
  gauge('scratchd_kafka_spool_records', 'Lines in the Kafka spool not yet acknowledged by Kafka.', (s) => s.records),
  gauge('scratchd_kafka_spool_segments', 'Segment files of the Kafka spool.', (s) => s.segments),
  gauge('scratchd_kafka_spool_oldest_age_seconds', 'Age of the oldest Line in the Kafka spool (0 when empty).', (s) => s.oldest_age_seconds),
  gauge('scratchd_kafka_spool_drain_rate', 'Lines acknowledged from the Kafka spool per second, over the last few seconds.', (s) => s.drain_rate_per_second),
  gauge('scratchd_kafka_spool_drain_duty', 'Share of the event loop the Kafka spool\'s drainer may take now: lower while requests keep the loop busy.', (s) => s.drain_duty),
  gauge('scratchd_kafka_spool_spilling', '1 while new Lines go to the Kafka spool instead of librdkafka.', (s) => s.spilling),
  counter('scratchd_kafka_spool_spilled_total', 'Lines written to the Kafka spool.', (s) => s.spilled_total),
  counter('scratchd_kafka_spool_drained_total', 'Lines from the Kafka spool acknowledged by Kafka (not those given up on: they count as dropped).', (s) => s.drained_total),
  counter('scratchd_kafka_spool_drain_errors_total', 'Errors of the Kafka spool\'s drainer; it retries after each, with a growing pause.', (s) => s.drain_errors_total),
  counter('scratchd_kafka_spool_quarantined_total', 'Kafka spool records (or runs of them, torn tails) and unreadable segments found damaged; their bytes kept under quarantine/ when found at start.', (s) => s.quarantined_total),
  {
    name: 'scratchd_kafka_spool_dropped_lines_total',
    help: `Lines the Kafka spool could not take, by reason (${spoolDropReasons.join(', ')}).`,
    type: 'counter',
    read: (s) => spoolDropReasons.map((reason) => ({ labels: { reason }, value: s?.dropped_total[reason] ?? 0 })),
  },
];

/** The spool's families over a Kafka backend read directly (tests; createMetrics reads its snapshot). */
export function registerSpoolMetrics(registry: Registry, kafka: Pick<KafkaStatsSource, 'spoolSnapshot'>): void {
  registerFamilies(registry, spoolFamilies, () => kafka.spoolSnapshot());
}
