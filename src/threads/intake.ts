/**
 * The main thread's side of a relayed Line: its Flavor, the dedup store's
 * verdict (its table read ahead for the whole batch first), then every
 * backend. The flavor table grows with each reload and
 * keeps names a reload removed: a Line a thread relayed under the old
 * config is still written (under the newest definition of its flavor).
 */
import type { Backend } from '../backend.js';
import type { DedupState } from '../dedup/state.js';
import type { DedupStore } from '../dedup/store.js';
import type { Flavor } from '../flavor.js';
import type { Line } from '../line.js';
import type { DedupKey } from './relay.js';

export interface Intake {
  line(flavor: string, time: number, json: Buffer, key: DedupKey | null): void;
  /** Before a batch's Lines: the store's slots for one of its keys read ahead (DedupStore.prefetch). */
  prefetch(flavor: string, lo: number, ahead: number): void;
  /** The flavors of a config now in force (before the threads get it). */
  useFlavors(flavors: readonly Flavor[]): void;
}

export function makeIntake(backends: readonly Backend[], dedup: DedupState, flavors: readonly Flavor[]): Intake {
  const byName = new Map<string, Flavor>();
  // The last flavor prefetched for, and its store: a batch's keys mostly share one.
  let lastName = '';
  let lastStore: DedupStore | null = null;
  const use = (fs: readonly Flavor[]): void => {
    for (const f of fs) byName.set(f.name, f);
    dedup.retain([...byName.values()]);
    lastName = '';
    lastStore = null;
  };
  use(flavors);
  return {
    line(name, time, json, key) {
      const flavor = byName.get(name)!; // every name a thread knows was put here first
      if (key !== null && flavor.dedup !== null && dedup.seenKey(name, flavor.dedup, key.hi, key.lo, time)) return;
      const line: Line = { flavor, json, time };
      for (let i = 0; i < backends.length; i++) backends[i]!.send(line);
    },
    prefetch(name, lo, ahead) {
      if (name !== lastName) {
        const dedupConfig = byName.get(name)!.dedup;
        lastName = name;
        lastStore = dedupConfig === null ? null : dedup.storeOf(name, dedupConfig);
      }
      if (lastStore !== null) lastStore.prefetch(lo, ahead);
    },
    useFlavors: use,
  };
}
