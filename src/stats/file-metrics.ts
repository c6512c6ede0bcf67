/** The file backend's per-flavor drops and its days (sealed, compressed, pruned, late Lines) in /metrics, read from /stats `file`. */
import type { FileStats } from '../file/stats.js';
import { one, type Family, type Sample } from './family.js';

type Flavor = FileStats['flavors'][string];

const byFlavor = (labels: Record<string, string>, read: (f: Flavor) => number) => (s: FileStats): Sample[] =>
  Object.entries(s.flavors).map(([flavor, f]) => ({ labels: { ...labels, flavor }, value: read(f) }));
const total = (name: string, help: string, read: (s: FileStats) => number): Family<FileStats> =>
  ({ name, help, type: 'counter', read: (s) => one(read(s)) });

export const fileFamilies: readonly Family<FileStats>[] = [
  {
    name: 'scratchd_backend_dropped_total',
    help: 'Lines a backend gave up on, by flavor (the file backend: a broken flavor\'s share full, or the whole queue full).',
    type: 'counter',
    read: byFlavor({ backend: 'file' }, (f) => f.dropped),
  },
  total('scratchd_file_sealed_days_total', 'Past days sealed: fsynced and their manifest (.done) written.', (s) => s.sealed_days),
  total('scratchd_file_compressed_days_total', 'Sealed days compressed to .log.gz.', (s) => s.compressed_days),
  total('scratchd_file_pruned_days_total', 'Sealed days removed by retainDays.', (s) => s.pruned_days),
  total('scratchd_file_torn_lines_total', 'Torn last Lines (from a crash mid-write) cut off to .torn.', (s) => s.torn_lines),
  {
    name: 'scratchd_file_late_lines_total',
    help: 'Lines whose day was already sealed, written to a later day\'s file instead.',
    type: 'counter',
    read: byFlavor({}, (f) => f.late),
  },
  {
    name: 'scratchd_file_unsealed_past_days',
    help: 'Past days with a file and no manifest yet, by flavor.',
    type: 'gauge',
    read: (s) => Object.keys(s.flavors).map((flavor) => ({ labels: { flavor }, value: s.unsealed_past_days[flavor]?.length ?? 0 })),
  },
];
