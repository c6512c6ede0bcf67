/** The file backend's per-flavor drops and its days (sealed, compressed, pruned, late Lines), read at scrape time. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { FileStatsSource } from '../file/stats.js';
import { scrapedCounter } from './scraped.js';

export function registerFileMetrics(registry: Registry, fileBackend: FileStatsSource): void {
  new Counter({
    name: 'scratchd_backend_dropped_total',
    help: 'Lines a backend gave up on, by flavor (the file backend: a broken flavor\'s share full, or the whole queue full).',
    labelNames: ['backend', 'flavor'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [flavor, f] of Object.entries(fileBackend.fileStats().flavors)) this.inc({ backend: 'file', flavor }, f.dropped);
    },
  });
  const total = (name: string, help: string, read: (s: ReturnType<FileStatsSource['fileStats']>) => number): void =>
    scrapedCounter(registry, name, help, () => read(fileBackend.fileStats()));
  total('scratchd_file_sealed_days_total', 'Past days sealed: fsynced and their manifest (.done) written.', (s) => s.sealed_days);
  total('scratchd_file_compressed_days_total', 'Sealed days compressed to .log.gz.', (s) => s.compressed_days);
  total('scratchd_file_pruned_days_total', 'Sealed days removed by retainDays.', (s) => s.pruned_days);
  total('scratchd_file_torn_lines_total', 'Torn last Lines (from a crash mid-write) cut off to .torn.', (s) => s.torn_lines);
  new Counter({
    name: 'scratchd_file_late_lines_total',
    help: 'Lines whose day was already sealed, written to a later day\'s file instead.',
    labelNames: ['flavor'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [flavor, f] of Object.entries(fileBackend.fileStats().flavors)) this.inc({ flavor }, f.late);
    },
  });
  new Gauge({
    name: 'scratchd_file_unsealed_past_days',
    help: 'Past days with a file and no manifest yet, by flavor.',
    labelNames: ['flavor'] as const,
    registers: [registry],
    collect() {
      const s = fileBackend.fileStats();
      this.reset();
      for (const flavor of Object.keys(s.flavors)) this.set({ flavor }, s.unsealed_past_days[flavor]?.length ?? 0);
    },
  });
}
