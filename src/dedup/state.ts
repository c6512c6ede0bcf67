/**
 * Every flavor's dedup store, one per process, kept across config reloads:
 * a flavor whose `dedup` is unchanged keeps its keys; a new bound or window
 * starts an empty store. Counters are kept by flavor name for good, so they
 * only grow (`scratchd_duplicates_total`, `scratchd_dedup_evictions_total`).
 */
import type { DedupConfig } from './config.js';
import { DedupHit, KeySpec, type DedupCounters, type FlavorDedup } from './key.js';
import { DedupStore } from './store.js';

export type { DedupCounters };

interface Entry extends FlavorDedup {
  readonly config: DedupConfig;
}

export class DedupState {
  private readonly stores = new Map<string, Entry>();
  private readonly scratch = new DedupHit();

  /**
   * `counters`: by flavor name, read by the stats listener. `stores`: false
   * on a serving thread, which only computes keys (no memory for stores).
   */
  constructor(readonly counters: Map<string, DedupCounters> = new Map(), private readonly stores_ = true) {}

  /** The flavor's dedup, made or remade when its config is new; null when it has none. */
  of(name: string, config: DedupConfig | null): FlavorDedup | null {
    if (config === null) return null;
    let e = this.stores.get(name);
    if (e !== undefined && e.config === config) return e;
    if (e === undefined || !sameConfig(e.config, config)) {
      let counters = this.counters.get(name);
      if (counters === undefined) {
        counters = { duplicates: 0, evictions: 0 };
        this.counters.set(name, counters);
      }
      const store = this.stores_ ? new DedupStore(config.maxKeys, config.windowMs, counters) : null;
      e = { config, spec: new KeySpec(config), store, counters };
    } else {
      e = { ...e, config, spec: new KeySpec(config) };
    }
    this.stores.set(name, e);
    return e;
  }

  /**
   * After a reload: free the stores of flavors gone or with dedup now off
   * (their counters stay: they only grow).
   */
  retain(flavors: readonly { name: string; dedup: DedupConfig | null }[]): void {
    const on = new Set(flavors.filter((f) => f.dedup !== null).map((f) => f.name));
    for (const name of this.stores.keys()) if (!on.has(name)) this.stores.delete(name);
  }

  /** Whether a key a serving thread computed (DedupHit.keyOf) was seen within the window; counted if so, else remembered. */
  seenKey(name: string, config: DedupConfig, hi: number, lo: number, now: number): boolean {
    const d = this.of(name, config)!;
    const seen = d.store!.seen(hi, lo, now);
    if (seen) d.counters.duplicates++;
    return seen;
  }

  /** The flavor's store (made or remade as `of` does): to prefetch for a batch of keys. */
  storeOf(name: string, config: DedupConfig): DedupStore {
    return this.of(name, config)!.store!;
  }

  /** Stores held now, by flavor name (tests). */
  held(): string[] {
    return [...this.stores.keys()];
  }

  /** A GET's hit: checked before its handler returns, so one object serves all. */
  get(d: FlavorDedup, ip: string, userAgent: string, query: string): DedupHit {
    return this.scratch.start(d, ip, userAgent, query);
  }

  /** A POST's hit: its body arrives later. */
  post(d: FlavorDedup, ip: string, userAgent: string, query: string): DedupHit {
    return new DedupHit().start(d, ip, userAgent, query);
  }
}

function sameConfig(a: DedupConfig, b: DedupConfig): boolean {
  return a.maxKeys === b.maxKeys && a.windowMs === b.windowMs;
}
