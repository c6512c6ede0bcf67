/**
 * A Prometheus metric family as one table row: its name, its help, and how
 * its samples are read from a stats snapshot. Registered into a prom-client
 * Registry as a plain object with `get()`, the way the registry reads any
 * metric, so a scrape costs one snapshot and no prom-client bookkeeping.
 */
import type { Metric, Registry } from 'prom-client';

export type Labels = Record<string, string | number>;

export interface Sample {
  labels: Labels;
  value: number;
  /** A histogram's `_bucket`, `_sum` and `_count` lines; the family's name otherwise. */
  metricName?: string;
}

export interface Family<S> {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  /** This family's samples in the snapshot `s`. */
  read(s: S): Iterable<Sample>;
}

/** One sample without labels. */
export function one(value: number): Sample[] {
  return [{ labels: {}, value }];
}

/** A sample per entry of `o`, labelled `label: key`. */
export function each<T>(o: Record<string, T>, label: string, value: (v: T) => number): Sample[] {
  return Object.entries(o).map(([k, v]) => ({ labels: { [label]: k }, value: value(v) }));
}

/**
 * Register `families` into `registry`, reading `snapshot()` at each scrape.
 * A throwing snapshot makes the scrape reject (the stats listener answers 500).
 */
export function registerFamilies<S>(registry: Registry, families: readonly Family<S>[], snapshot: () => S): void {
  for (const f of families) {
    const metric = {
      name: f.name,
      help: f.help,
      type: f.type,
      aggregator: 'sum',
      async get() {
        return { name: f.name, help: f.help, type: f.type, aggregator: 'sum', values: [...f.read(snapshot())] };
      },
      reset() {},
    };
    registry.registerMetric(metric as unknown as Metric);
  }
}
