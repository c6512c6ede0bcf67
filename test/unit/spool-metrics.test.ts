// The Kafka spool's Prometheus metrics read the backend's snapshot at scrape
// time: every gauge and counter, and the drops by reason, with their values.
import { Registry } from 'prom-client';
import t from 'tap';
import type { SpoolSnapshot } from '../../src/kafka/stats.js';
import { registerSpoolMetrics } from '../../src/stats/spool-metrics.js';

t.test('every spool metric carries the snapshot\'s value; counters read 0 while there is none', async (t) => {
  const snap: SpoolSnapshot | null = {
    bytes: 1, records: 2, segments: 3, oldest_age_seconds: 4, drain_rate_per_second: 5, drain_duty: 0.25, spilling: 1,
    spilled_total: 7, drained_total: 8, drain_errors_total: 13, quarantined_total: 9, dropped_total: { spool_full: 10, disk_full: 11, spool_error: 12 },
  } as SpoolSnapshot;
  let current: SpoolSnapshot | null = snap;
  const registry = new Registry();
  registerSpoolMetrics(registry, { spoolSnapshot: () => current } as never);
  const lines = async (): Promise<string[]> => (await registry.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.same(await lines(), [
    'scratchd_kafka_spool_bytes 1',
    'scratchd_kafka_spool_records 2',
    'scratchd_kafka_spool_segments 3',
    'scratchd_kafka_spool_oldest_age_seconds 4',
    'scratchd_kafka_spool_drain_rate 5',
    'scratchd_kafka_spool_drain_duty 0.25',
    'scratchd_kafka_spool_spilling 1',
    'scratchd_kafka_spool_spilled_total 7',
    'scratchd_kafka_spool_drained_total 8',
    'scratchd_kafka_spool_drain_errors_total 13',
    'scratchd_kafka_spool_quarantined_total 9',
    'scratchd_kafka_spool_dropped_lines_total{reason="spool_full"} 10',
    'scratchd_kafka_spool_dropped_lines_total{reason="disk_full"} 11',
    'scratchd_kafka_spool_dropped_lines_total{reason="spool_error"} 12',
  ]);
  current = null;
  const off = await lines();
  t.same(off.filter((l) => l.includes('_total')), [
    'scratchd_kafka_spool_spilled_total 0',
    'scratchd_kafka_spool_drained_total 0',
    'scratchd_kafka_spool_drain_errors_total 0',
    'scratchd_kafka_spool_quarantined_total 0',
    'scratchd_kafka_spool_dropped_lines_total{reason="spool_full"} 0',
    'scratchd_kafka_spool_dropped_lines_total{reason="disk_full"} 0',
    'scratchd_kafka_spool_dropped_lines_total{reason="spool_error"} 0',
  ], 'counters read 0 with no snapshot');
});
