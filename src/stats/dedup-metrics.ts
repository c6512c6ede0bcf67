/**
 * What the flavors' dedup stores did (dedup/key.ts counts):
 * `scratchd_duplicates_total{flavor}`, `scratchd_dedup_evictions_total{flavor}`,
 * and the same numbers in /stats under `dedup`.
 */
import type { Registry } from 'prom-client';
import type { DedupCounters } from '../dedup/key.js';
import { scrapedLabelledCounter } from './scraped.js';

/** dedup[flavor] = { duplicates, evictions } */
export type DedupSnapshot = Record<string, { duplicates: number; evictions: number }>;

export function registerDedupMetrics(registry: Registry, counters: ReadonlyMap<string, DedupCounters>): void {
  scrapedLabelledCounter(registry, 'scratchd_duplicates_total',
    'Hits answered and not recorded because their dedup key was seen in the flavor within its window, by flavor.',
    ['flavor'], function* () {
      for (const [flavor, c] of counters) yield [{ flavor }, c.duplicates];
    });
  scrapedLabelledCounter(registry, 'scratchd_dedup_evictions_total',
    'Dedup keys pushed out by the flavor\'s maxKeys bound before their window ended (oldest first), by flavor.',
    ['flavor'], function* () {
      for (const [flavor, c] of counters) yield [{ flavor }, c.evictions];
    });
}

export function dedupSnapshot(counters: ReadonlyMap<string, DedupCounters>): DedupSnapshot {
  const out: DedupSnapshot = {};
  for (const [flavor, c] of counters) out[flavor] = { duplicates: c.duplicates, evictions: c.evictions };
  return out;
}
