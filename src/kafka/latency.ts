/**
 * Time from a Line's arrival to the report that Kafka has it: a histogram
 * kept as plain numbers by the Kafka backend (counts per bucket, their sum),
 * read by src/stats/metrics.ts at scrape time like every other counter.
 * Observed once per delivered message on the serving thread, so no
 * prom-client here (its observe() hashes labels and checks on every call).
 */
/** Upper bounds in seconds: normally milliseconds, but a drained outage reaches hours. */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400];

export class DeliveryLatency {
  /** Reports per bucket (not cumulative); the last slot is above every bound. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  count = 0;
  sum = 0;

  observe(seconds: number): void {
    if (!(seconds >= 0) || !Number.isFinite(seconds)) return;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += seconds;
  }
}
