import t from 'tap';
import { InOrder } from '../../src/threads/in-order.js';

t.test('batches are taken in number order, whatever order they come in', async (t) => {
  const got: number[] = [];
  const o = new InOrder<number>((n) => got.push(n));
  for (const n of [2, 0, 3, 1, 4]) o.arrived(n, n);
  t.same(got, [0, 1, 2, 3, 4]);
  t.equal(o.waiting, 0);
});

t.test('the numbers wrap at 2^32 (a shared Uint32 counter), and so does the order', async (t) => {
  const top = 2 ** 32 - 1;
  const got: number[] = [];
  const o = new InOrder<number>((n) => got.push(n));
  // Start just below the wrap.
  (o as unknown as { next: number }).next = top - 1;
  o.arrived(1, 1);
  o.arrived(0, 0);
  o.arrived(top, top);
  t.same(got, [], 'nothing before top - 1 came');
  o.arrived(top - 1, top - 1);
  t.same(got, [top - 1, top, 0, 1]);
});

t.test('flush takes what waits behind a gap, in number order from where it stopped', async (t) => {
  const got: number[] = [];
  const o = new InOrder<number>((n) => got.push(n));
  o.arrived(0, 0);
  o.arrived(3, 3);
  o.arrived(2, 2);
  t.same(got, [0]);
  o.flush();
  t.same(got, [0, 2, 3]);
  t.equal(o.waiting, 0);
});
