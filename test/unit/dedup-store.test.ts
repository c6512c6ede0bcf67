// The dedup store (src/dedup/store.ts): a window, a hard bound that evicts
// the oldest first and counts it, the same answers as a plain model under
// random traffic, and memory fixed at start for a million keys.
import t from 'tap';
import { DedupStore } from '../../src/dedup/store.js';
import { Hash64 } from '../../src/dedup/hash.js';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_MAX_KEYS, DEFAULT_WINDOW_MS } from '../../src/dedup/config.js';

// A full collection on demand, so that garbage the loops leave is not taken
// for the store's memory (the usual way to get gc() without --expose-gc).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

t.test('a million distinct keys: memory fixed at start, the oldest evicted, every eviction counted', async (t) => {
  const maxKeys = 500_000;
  const h = new Hash64();
  const key = (i: number) => h.begin().number(i).end();
  // The same loop on a small store first: the heap's young generation grows
  // to its working size (the loop's numbers are garbage) before RSS is taken,
  // so the growth measured below is the store's.
  const warm = new DedupStore(1024, 3_600_000);
  for (let i = 0; i < 1_000_000; i++) {
    key(i);
    warm.seen(h.hi, h.lo, i / 100);
  }
  gc();
  const before = process.memoryUsage().rss;
  const s = new DedupStore(maxKeys, 3_600_000);
  // ring: 4 + 4 + 8 bytes a key; table: the power of two at or above 2 × maxKeys, 8 bytes a slot (low half, ring slot)
  const atStart = s.bytes();
  for (let i = 0; i < 1_000_000; i++) {
    key(i);
    if (s.seen(h.hi, h.lo, i / 100)) t.fail(`key ${i} taken for a repeat`);
  }
  gc();
  const grown = process.memoryUsage().rss - before;
  // Asserted only now: tap's first assertion loads more of tap, which would count as growth.
  t.equal(atStart, maxKeys * 16 + 1_048_576 * 8, 'typed arrays sized at start');
  t.equal(s.counters.evictions, 500_000, 'every key past the bound evicted one, counted');
  t.equal(s.bytes(), maxKeys * 16 + 1_048_576 * 8, 'no array grew');
  t.ok(grown <= s.bytes() + 4 * 1024 * 1024, `RSS grew ${grown} bytes, within the store's ${s.bytes()} (+ 4 MiB for the test itself)`);
  key(999_999);
  t.equal(s.seen(h.hi, h.lo, 10_000), true, 'the newest key is kept');
  key(500_000);
  t.equal(s.seen(h.hi, h.lo, 10_000), true, 'the oldest key kept is kept');
  key(499_999);
  t.equal(s.seen(h.hi, h.lo, 10_000), false, 'the youngest evicted key is gone');
});

t.test('the default bound\'s memory, as docs/http.md states it: 64 MiB', async (t) => {
  t.equal(new DedupStore(DEFAULT_MAX_KEYS, 60_000).bytes(), 64 * 1024 * 1024);
  const schema = JSON.parse(readFileSync(new URL('../../config.schema.json', import.meta.url), 'utf8')) as
    { properties: { flavors: { items: { properties: { dedup: { properties: Record<string, { default: number }> } } } } } };
  const dedup = schema.properties.flavors.items.properties.dedup.properties;
  t.equal(dedup.maxKeys!.default, DEFAULT_MAX_KEYS, 'the schema\'s default is this one');
  t.equal(dedup.windowMs!.default, DEFAULT_WINDOW_MS);
});

t.test('a key is seen within its window and forgotten after it', async (t) => {
  const s = new DedupStore(16, 1000);
  t.equal(s.seen(1, 2, 10_000), false, 'first time');
  t.equal(s.seen(1, 2, 10_999), true, 'within the window');
  t.equal(s.seen(1, 3, 10_999), false, 'another key');
  t.equal(s.seen(2, 2, 10_999), false, 'another key (other half)');
  t.equal(s.seen(1, 2, 11_000), false, 'window over: remembered anew');
  t.equal(s.seen(1, 2, 11_500), true, 'from the new time');
  t.equal(s.counters.evictions, 0);
});

t.test('the bound evicts the oldest first and counts only keys still in their window', async (t) => {
  const s = new DedupStore(3, 1000);
  for (const k of [1, 2, 3]) t.equal(s.seen(0, k, 0), false);
  t.equal(s.seen(0, 4, 1), false, '4 pushes 1 out');
  t.equal(s.counters.evictions, 1);
  t.equal(s.seen(0, 3, 2), true, '3 kept');
  t.equal(s.seen(0, 2, 2), true, '2 kept');
  t.equal(s.seen(0, 1, 2), false, '1 was evicted, and now pushes 2 out');
  t.equal(s.counters.evictions, 2);
  t.equal(s.seen(0, 2, 3), false, '2 was evicted');
  t.equal(s.counters.evictions, 3);
  // All expired: the ring's tail leaves by expiry, not counted as evictions.
  for (const k of [10, 11, 12]) t.equal(s.seen(0, k, 5000), false);
  t.equal(s.counters.evictions, 3);
  t.equal(s.size(), 3);
});

/** The store's rules over a Map and an array: what it must answer. */
class Model {
  queue: { k: number; time: number }[] = [];
  map = new Map<number, { k: number; time: number }>();
  evictions = 0;
  constructor(readonly max: number, readonly window: number) {}
  seen(k: number, now: number): boolean {
    const oldest = now - this.window;
    for (let i = 0; i < 2 && this.queue.length > 0; i++) {
      const front = this.queue[0]!;
      if (front.time > oldest) break;
      this.queue.shift();
      if (this.map.get(front.k) === front) this.map.delete(front.k);
    }
    const e = this.map.get(k);
    if (e !== undefined && e.time > oldest) return true;
    if (e !== undefined) this.map.delete(k);
    if (this.queue.length === this.max) {
      const front = this.queue.shift()!;
      if (front.time > oldest) this.evictions++;
      if (this.map.get(front.k) === front) this.map.delete(front.k);
    }
    const ent = { k, time: now };
    this.queue.push(ent);
    this.map.set(k, ent);
    return false;
  }
}

t.test('random traffic: the same answers and evictions as the model', async (t) => {
  let x = 12345;
  const rand = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  // The last case gives every key the same table home (its low half a multiple of the table's
  // size), so runs are as long as the table holds and every deletion shifts.
  for (const [max, window, keys, spread] of [[64, 50, 200, 1], [7, 20, 12, 1], [1, 5, 3, 1], [100, 1000, 90, 1], [100, 300, 300, 256]] as const) {
    const s = new DedupStore(max, window);
    const m = new Model(max, window);
    let now = 0;
    let bad = 0;
    for (let i = 0; i < 200_000; i++) {
      now += rand(3);
      const k = rand(keys);
      // A batch's prefetch reads ahead, right or wrong: it never changes an answer.
      if (i % 7 === 0) for (let a = 0; a < 40; a++) s.prefetch(((i + a) % keys) * spread, a);
      // hi chosen so that many keys share a table home and probe runs form
      const hi = k % 5;
      if (s.seen(hi, k * spread, now) !== m.seen(k, now)) bad++;
    }
    t.equal(bad, 0, `maxKeys ${max}, window ${window}, ${keys} keys: no answer differs`);
    t.equal(s.counters.evictions, m.evictions, 'evictions counted alike');
    t.ok(m.evictions > 0 || max >= keys, 'the bound was met');
  }
});

t.test('a reload keeps a store whose window and bound are unchanged, and frees the stores no flavor uses', async (t) => {
  const { DedupState } = await import('../../src/dedup/state.js');
  const state = new DedupState();
  const config = { key: ['pv_id'], windowMs: 1000, maxKeys: 8 };
  const gr = state.of('gr', config)!;
  t.equal(state.of('gr', config), gr, 'the same settings object: the same entry');
  t.equal(state.of('gr', { ...config })!.store, gr.store, 'equal settings (a reload): the same store');
  t.equal(state.of('gr', { ...config, key: ['r'] })!.store, gr.store, 'another key: the store is kept');
  t.not(state.of('gr', { ...config, maxKeys: 9 })!.store, gr.store, 'another bound: a new store');
  t.equal(state.of('gr', { ...config, maxKeys: 9 })!.counters, gr.counters, 'the counters are kept');
  state.of('tr', config);
  t.same(state.held().sort(), ['gr', 'tr']);
  state.retain([{ name: 'gr', dedup: null }, { name: 'tr', dedup: config }]);
  t.same(state.held(), ['tr'], 'gr turned dedup off: its store is freed');
  t.same([...state.counters.keys()].sort(), ['gr', 'tr'], 'counters stay');
  t.equal(state.of('uk', null), null, 'no dedup: nothing made');
});
