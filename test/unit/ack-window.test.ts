// The acknowledgement window behind the spool's watermark and the replay's
// resume position: whatever order the reports come in, the watermark is
// the end of the longest settled prefix, also across the window's
// compactions (thousands of items), and a search finds each key.
import t from 'tap';
import { AckWindow } from '../../src/ack-window.js';
import { Fifo } from '../../src/fifo.js';

/** A fixed pseudo-random order, so a failure repeats. */
function shuffled(n: number, seed: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  let x = seed;
  for (let i = n - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const j = x % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

t.test('the fifo keeps its order through its compactions', async (t) => {
  const q = new Fifo<number>();
  const out: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    q.push(i);
    if (i % 3 !== 0) out.push(q.shift()!);
  }
  t.equal(q.at(0), out.length, 'the head is the next in order');
  t.equal(q.at(q.length - 1), 9_999);
  t.equal(q.at(q.length), undefined);
  t.equal(q.at(-1), undefined);
  while (q.length > 0) out.push(q.shift()!);
  t.same(out, Array.from({ length: 10_000 }, (_, i) => i));
  t.equal(q.shift(), undefined);
});

t.test('the watermark is the end of the settled prefix, reports in any order', async (t) => {
  const n = 5000;
  const keys = Array.from({ length: n }, (_, i) => 10 + i * 3); // keys with gaps, as spool sequences have
  const w = new AckWindow<number>();
  for (const k of keys) w.push(k, k * 2);
  t.equal(w.waiting, n);
  const settled = new Set<number>();
  let mark = -1;
  let prefix = 0;
  let bad = 0;
  for (const i of shuffled(n, 7)) {
    if (w.settle(keys[i]!) !== keys[i]! * 2) bad++;
    if (w.settle(keys[i]!) !== null) bad++; // settled once only
    settled.add(i);
    w.advance((item, key) => {
      if (item !== key * 2) bad++;
      mark = key;
      return true;
    });
    while (settled.has(prefix)) prefix++;
    if (mark !== (prefix === 0 ? -1 : keys[prefix - 1]!)) bad++;
    if (w.waiting !== n - settled.size) bad++;
  }
  t.equal(bad, 0, 'every report settled its own item once, and the mark followed the prefix');
  t.equal(mark, keys[n - 1]);
  t.equal(w.settle(keys[0]!), null, 'a key behind the head is not in the window');
});

t.test('settled keys behind a waiting one; the first waiting; advance stops when told', async (t) => {
  const w = new AckWindow<string>();
  for (const k of [1, 2, 4, 8, 16]) w.push(k, `i${k}`, k === 8);
  t.equal(w.settle(3), null, 'no such key');
  t.ok(w.settle(4));
  t.ok(w.isSettled(4));
  t.ok(w.isSettled(8), 'pushed settled');
  t.notOk(w.isSettled(2));
  t.same(w.settledKeys(), [4, 8]);
  t.equal(w.firstWaiting(), 'i1');
  t.equal(w.waiting, 3);
  w.settle(1);
  w.settle(2);
  const passed: number[] = [];
  w.advance((_item, key) => key < 4 && passed.push(key) > 0);
  t.same(passed, [1, 2], 'stopped at the one it did not take');
  t.same(w.settledKeys(), [4, 8], 'the one not taken stays');
  t.equal(w.firstWaiting(), 'i16');
  w.clear();
  t.equal(w.waiting, 0);
  t.equal(w.firstWaiting(), undefined);
});
