import type { Registry } from 'prom-client';
import type { KafkaStatsSource, SpoolSnapshot } from '../kafka/stats.js';
import { spoolDropReasons } from '../kafka/spool/drop-reasons.js';
import { scrapedCounter, scrapedGauge, scrapedLabelledCounter } from './scraped.js';

/** The Kafka spool's numbers, read at scrape time (only when the spool is on). */
export function registerSpoolMetrics(registry: Registry, kafka: KafkaStatsSource): void {
  const gauge = (name: string, help: string, read: (s: SpoolSnapshot) => number): void =>
    scrapedGauge(registry, name, help, () => {
      const s = kafka.spoolSnapshot();
      return s === null ? null : read(s);
    });
  const counter = (name: string, help: string, read: (s: SpoolSnapshot) => number): void =>
    scrapedCounter(registry, name, help, () => {
      const s = kafka.spoolSnapshot();
      return s === null ? 0 : read(s);
    });
  gauge('scratchd_kafka_spool_bytes', 'Bytes of the Kafka spool\'s segment files on disk.', (s) => s.bytes);
  gauge('scratchd_kafka_spool_records', 'Lines in the Kafka spool not yet acknowledged by Kafka.', (s) => s.records);
  gauge('scratchd_kafka_spool_segments', 'Segment files of the Kafka spool.', (s) => s.segments);
  gauge('scratchd_kafka_spool_oldest_age_seconds', 'Age of the oldest Line in the Kafka spool (0 when empty).', (s) => s.oldest_age_seconds);
  gauge('scratchd_kafka_spool_drain_rate', 'Lines acknowledged from the Kafka spool per second, over the last few seconds.', (s) => s.drain_rate_per_second);
  gauge('scratchd_kafka_spool_drain_duty', 'Share of the event loop the Kafka spool\'s drainer may take now: lower while requests keep the loop busy.', (s) => s.drain_duty);
  gauge('scratchd_kafka_spool_spilling', '1 while new Lines go to the Kafka spool instead of librdkafka.', (s) => s.spilling);
  counter('scratchd_kafka_spool_spilled_total', 'Lines written to the Kafka spool.', (s) => s.spilled_total);
  counter('scratchd_kafka_spool_drained_total', 'Lines from the Kafka spool acknowledged by Kafka (not those given up on: they count as dropped).', (s) => s.drained_total);
  counter('scratchd_kafka_spool_drain_errors_total', 'Errors of the Kafka spool\'s drainer; it retries after each, with a growing pause.', (s) => s.drain_errors_total);
  counter('scratchd_kafka_spool_quarantined_total', 'Kafka spool records (or runs of them, torn tails) and unreadable segments found damaged; their bytes kept under quarantine/ when found at start.', (s) => s.quarantined_total);
  scrapedLabelledCounter(registry, 'scratchd_kafka_spool_dropped_lines_total',
    `Lines the Kafka spool could not take, by reason (${spoolDropReasons.join(', ')}).`, ['reason'], () => {
      const s = kafka.spoolSnapshot();
      return spoolDropReasons.map((reason) => [{ reason }, s?.dropped_total[reason] ?? 0]);
    });
}
