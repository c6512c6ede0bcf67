/**
 * The keys a flavor saw in its window: like the original's little key-value
 * store (SET with a TTL, GET), but only for "seen?" and sized at start.
 *
 * Keys are 64-bit hashes (hash.ts). A ring holds them in insertion order
 * with their time, so the oldest is always at its tail: expiry looks at the
 * tail only (at most EXPIRE_PER_CALL entries per call, O(1), and a call
 * inserts at most one), and when the ring is full the tail is evicted and
 * counted. An open-addressing table (linear probing, at most half full,
 * deletion by backward shift so no tombstones pile up) maps a key to its
 * ring slot; each table entry holds the key's low half beside the slot, so
 * probing and shifting read only the table (one cache line, mostly), and the
 * ring only on a match. Everything lives in typed arrays allocated here: a lookup
 * allocates nothing, and memory is `bytes()` whatever the traffic.
 */

/** Expired tail entries removed per call: more than the one a call adds, so the ring keeps up. */
const EXPIRE_PER_CALL = 2;
const EMPTY = 0;

export interface StoreCounters {
  /** Keys pushed out by the bound before their window ended. */
  evictions: number;
}

export class DedupStore {
  readonly maxKeys: number;
  readonly windowMs: number;
  /** The ring: key halves and insertion time of each slot. */
  private readonly ringHi: Uint32Array;
  private readonly ringLo: Uint32Array;
  private readonly ringTime: Float64Array;
  /** Per table slot: the key's low half, then its ring slot + 1 (0: empty). */
  private readonly table: Uint32Array;
  private readonly mask: number;
  /** Next ring slot to write; `count` slots behind it are live. */
  private head = 0;
  private count = 0;
  /** What prefetch read, kept so that its reads are not optimised away. */
  prefetched = 0;

  constructor(maxKeys: number, windowMs: number, readonly counters: StoreCounters = { evictions: 0 }) {
    this.maxKeys = maxKeys;
    this.windowMs = windowMs;
    this.ringHi = new Uint32Array(maxKeys);
    this.ringLo = new Uint32Array(maxKeys);
    this.ringTime = new Float64Array(maxKeys);
    let size = 2;
    while (size < maxKeys * 2) size *= 2;
    this.table = new Uint32Array(size * 2);
    this.mask = size - 1;
  }

  /** Bytes held, all allocated by the constructor. */
  bytes(): number {
    return this.ringHi.byteLength + this.ringLo.byteLength + this.ringTime.byteLength + this.table.byteLength;
  }

  /** Keys held now (some may have expired and not yet been removed). */
  size(): number {
    return this.count;
  }

  /**
   * Read, and only read, the two table slots a coming `seen` of key `lo`
   * will probe: its own, and that of the ring's tail it will evict or
   * expire, `ahead` keys on (the keys of its batch before it). The table is
   * far larger than the CPU's caches, so each is a miss; read for a whole
   * batch before any is judged, the misses do not wait one for another, and
   * `seen` then finds its slots cached. A wrong guess costs a read, never
   * an answer.
   */
  prefetch(lo: number, ahead: number): void {
    const table = this.table;
    const mask = this.mask;
    let tail = this.head - this.count + ahead;
    if (tail < 0) tail += this.maxKeys;
    if (tail >= this.maxKeys) tail %= this.maxKeys;
    this.prefetched ^= table[2 * (lo & mask) + 1]! ^ table[2 * (this.ringLo[tail]! & mask) + 1]!;
  }

  /**
   * Whether key (hi, lo) was seen within the window before `now`; if not, it
   * is remembered from `now`. A repeat does not extend the window: the
   * first hit's time counts.
   */
  seen(hi: number, lo: number, now: number): boolean {
    const oldest = now - this.windowMs;
    for (let i = 0; i < EXPIRE_PER_CALL && this.count > 0; i++) {
      const tail = this.tail();
      if (this.ringTime[tail]! > oldest) break;
      this.removeTail(tail);
    }
    const table = this.table;
    const mask = this.mask;
    let t = lo & mask;
    for (;;) {
      const r = table[2 * t + 1]!;
      if (r === EMPTY) break;
      if (table[2 * t] === lo && this.ringHi[r - 1] === hi) {
        if (this.ringTime[r - 1]! > oldest) return true;
        // Expired but not yet reached by the tail: forgotten here, its ring
        // slot left for the tail to pass, and remembered anew below.
        this.deleteAt(t);
        break;
      }
      t = (t + 1) & mask;
    }
    const slot = this.push(hi, lo, now);
    // push may have evicted and shifted entries: probe again for the free slot.
    t = lo & mask;
    while (table[2 * t + 1] !== EMPTY) t = (t + 1) & mask;
    table[2 * t] = lo;
    table[2 * t + 1] = slot + 1;
    return false;
  }

  private tail(): number {
    const t = this.head - this.count;
    return t < 0 ? t + this.maxKeys : t;
  }

  /** Write the key at the head, evicting the tail first when the ring is full. */
  private push(hi: number, lo: number, now: number): number {
    if (this.count === this.maxKeys) {
      const tail = this.tail();
      if (this.ringTime[tail]! > now - this.windowMs) this.counters.evictions++;
      this.removeTail(tail);
    }
    const slot = this.head;
    this.ringHi[slot] = hi;
    this.ringLo[slot] = lo;
    this.ringTime[slot] = now;
    this.head = slot + 1 === this.maxKeys ? 0 : slot + 1;
    this.count++;
    return slot;
  }

  /** Drop the tail slot, and its table entry if the table still points at it. */
  private removeTail(tail: number): void {
    this.count--;
    const table = this.table;
    const mask = this.mask;
    let t = this.ringLo[tail]! & mask;
    for (;;) {
      const r = table[2 * t + 1]!;
      if (r === EMPTY) return;
      if (r === tail + 1) break;
      t = (t + 1) & mask;
    }
    this.deleteAt(t);
  }

  /** Backward-shift deletion (Knuth 6.4, algorithm R): later entries of the run move up. */
  private deleteAt(hole: number): void {
    const table = this.table;
    const mask = this.mask;
    let i = hole;
    for (;;) {
      i = (i + 1) & mask;
      const r = table[2 * i + 1]!;
      if (r === EMPTY) break;
      const home = table[2 * i]! & mask;
      // Move the entry into the hole unless its home lies cyclically in (hole, i].
      const stays = hole <= i ? hole < home && home <= i : hole < home || home <= i;
      if (stays) continue;
      table[2 * hole] = table[2 * i]!;
      table[2 * hole + 1] = r;
      hole = i;
    }
    table[2 * hole + 1] = EMPTY;
  }
}
