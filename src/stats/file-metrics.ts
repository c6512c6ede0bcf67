/** The file backend's per-flavor drops and its days (sealed, compressed, pruned, late Lines), read at scrape time. */
import { Gauge, type Registry } from 'prom-client';
import type { FileStats, FileStatsSource } from '../file/stats.js';
import { scrapedCounter, scrapedLabelledCounter } from './scraped.js';

export function registerFileMetrics(registry: Registry, fileBackend: FileStatsSource): void {
  type Flavor = FileStats['flavors'][string];
  const byFlavor = (labels: Record<string, string>, read: (f: Flavor) => number) => (): Array<[Record<string, string>, number]> =>
    Object.entries(fileBackend.fileStats().flavors).map(([flavor, f]) => [{ ...labels, flavor }, read(f)]);
  scrapedLabelledCounter(registry, 'scratchd_backend_dropped_total',
    'Lines a backend gave up on, by flavor (the file backend: a broken flavor\'s share full, or the whole queue full).',
    ['backend', 'flavor'], byFlavor({ backend: 'file' }, (f) => f.dropped));
  const total = (name: string, help: string, read: (s: FileStats) => number): void =>
    scrapedCounter(registry, name, help, () => read(fileBackend.fileStats()));
  total('scratchd_file_sealed_days_total', 'Past days sealed: fsynced and their manifest (.done) written.', (s) => s.sealed_days);
  total('scratchd_file_compressed_days_total', 'Sealed days compressed to .log.gz.', (s) => s.compressed_days);
  total('scratchd_file_pruned_days_total', 'Sealed days removed by retainDays.', (s) => s.pruned_days);
  total('scratchd_file_torn_lines_total', 'Torn last Lines (from a crash mid-write) cut off to .torn.', (s) => s.torn_lines);
  scrapedLabelledCounter(registry, 'scratchd_file_late_lines_total',
    'Lines whose day was already sealed, written to a later day\'s file instead.', ['flavor'], byFlavor({}, (f) => f.late));
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
