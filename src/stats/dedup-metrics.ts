/**
 * What the flavors' dedup stores did (dedup/key.ts counts): /stats `dedup`,
 * and from it `scratchd_duplicates_total{flavor}`, `scratchd_dedup_evictions_total{flavor}`.
 */
import type { DedupCounters } from '../dedup/key.js';
import { each, type Family } from './family.js';

/** dedup[flavor] = { duplicates, evictions } */
export type DedupSnapshot = Record<string, { duplicates: number; evictions: number }>;

export function dedupSnapshot(counters: ReadonlyMap<string, DedupCounters>): DedupSnapshot {
  const out: DedupSnapshot = {};
  for (const [flavor, c] of counters) out[flavor] = { duplicates: c.duplicates, evictions: c.evictions };
  return out;
}

export const dedupFamilies: readonly Family<DedupSnapshot>[] = [
  {
    name: 'scratchd_duplicates_total',
    help: 'Hits answered and not recorded because their dedup key was seen in the flavor within its window, by flavor.',
    type: 'counter',
    read: (s) => each(s, 'flavor', (d) => d.duplicates),
  },
  {
    name: 'scratchd_dedup_evictions_total',
    help: 'Dedup keys pushed out by the flavor\'s maxKeys bound before their window ended (oldest first), by flavor.',
    type: 'counter',
    read: (s) => each(s, 'flavor', (d) => d.evictions),
  },
];
