/**
 * Metrics whose value is read from a backend's plain numbers when Prometheus
 * scrapes, never pushed from the request path.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export function scrapedGauge(registry: Registry, name: string, help: string, read: () => number | null): void {
  new Gauge({
    name, help, registers: [registry],
    collect() {
      const v = read();
      if (v !== null) this.set(v);
    },
  });
}

export function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name, help, registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter with labels: `read` gives each label set's value at scrape time. */
export function scrapedLabelledCounter(registry: Registry, name: string, help: string, labelNames: readonly string[],
  read: () => Iterable<[Record<string, string>, number]>): void {
  new Counter({
    name, help, labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}
