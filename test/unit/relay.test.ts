// The relay's record format, both ends: what a serving thread packs is what
// the main thread unpacks, Line by Line, flavor by flavor, with keys.
import t from 'tap';
import { prefetchKeys, RelayWriter, unpack, type RelayBatch } from '../../src/threads/relay.js';

t.test('every record unpacks to its own flavor, time, key and JSON, in order', async (t) => {
  const batches: RelayBatch[] = [];
  const w = new RelayWriter(new Int32Array(new SharedArrayBuffer(4)), 1 << 30, (b) => batches.push(b), new Uint32Array(new SharedArrayBuffer(4)));
  // Same-length names that differ in one byte, in runs and alone: a name
  // remembered from the record before must never be reused for another.
  const names = ['alpha', 'alphb', 'alphb', 'beta', 'alpha', 'é-shop', 'alpha', 'alpha'];
  const sent = names.map((flavor, i) => ({
    flavor,
    time: 1_700_000_000_000 + i,
    json: Buffer.from(JSON.stringify({ n: String(i), pad: 'x'.repeat(i * 37) })),
    key: i % 3 === 0 ? null : { hi: 0xffffffff - i, lo: i },
  }));
  for (const s of sent) w.add(s.flavor, s.time, s.json, s.key);
  w.flush();
  t.equal(batches.length, 1, 'one turn, one batch');
  const got: { flavor: string; time: number; json: Buffer; key: { hi: number; lo: number } | null }[] = [];
  unpack(batches[0]!.lines, (flavor, time, json, key) => got.push({ flavor, time, json, key: key === null ? null : { ...key } }));
  t.same(got.map((g) => g.flavor), names);
  t.same(got.map((g) => g.time), sent.map((s) => s.time));
  t.same(got.map((g) => g.key), sent.map((s) => s.key));
  t.same(got.map((g) => g.json.toString()), sent.map((s) => s.json.toString()));
  t.equal(batches[0]!.keyed, true, 'the batch says it carries keys');
  const ahead: [string, number, number][] = [];
  prefetchKeys(batches[0]!.lines, (flavor, lo, k) => ahead.push([flavor, lo, k]));
  const keyed = sent.filter((s) => s.key !== null);
  t.same(ahead, keyed.map((s, k) => [s.flavor, s.key!.lo, k]), 'prefetch: each keyed record\'s flavor and low half, numbered in order');
});

t.test('a batch without keys says so: the main thread reads nothing ahead', async (t) => {
  const batches: RelayBatch[] = [];
  const w = new RelayWriter(new Int32Array(new SharedArrayBuffer(4)), 1 << 30, (b) => batches.push(b), new Uint32Array(new SharedArrayBuffer(4)));
  w.add('gr', 1, Buffer.from('{}'), { hi: 1, lo: 2 });
  w.flush();
  w.add('gr', 2, Buffer.from('{}'), null);
  w.flush();
  t.same(batches.map((b) => b.keyed), [true, false], 'the flag is per batch');
});
