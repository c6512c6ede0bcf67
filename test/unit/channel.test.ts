// The bounded channel: non-blocking send, batch receive, close and drain.
import t from 'tap';
import { Channel } from '../../src/channel.js';

t.test('send reports full instead of waiting', async (t) => {
  const c = new Channel<number>(3);
  t.same([c.send(1), c.send(2), c.send(3), c.send(4)], [true, true, true, false]);
  t.equal(c.length, 3);
  t.same([...(await c.receive())], [1, 2, 3]);
  t.equal(c.length, 0);
  t.ok(c.send(5), 'room again after a receive');
});

t.test('a waiting receive gets everything sent in the same turn as one batch', async (t) => {
  const c = new Channel<number>(10);
  const batch = c.receive();
  c.send(1);
  c.send(2);
  c.send(3);
  t.same([...(await batch)], [1, 2, 3]);
});

t.test('close: no more sends, the rest is received, then empty batches', async (t) => {
  const c = new Channel<string>(10);
  c.send('a');
  c.close();
  t.notOk(c.send('b'));
  t.same([...(await c.receive())], ['a']);
  t.same([...(await c.receive())], []);
  const waiting = new Channel<string>(1);
  const r = waiting.receive();
  waiting.close();
  t.same([...(await r)], [], 'a waiting receive wakes on close');
});

t.test('bounded by bytes too: a send that would take the bytes queued over maxBytes is refused', async (t) => {
  const c = new Channel<string>(100, 10, (s) => s.length);
  t.same([c.send('aaaa'), c.send('bbbb'), c.send('ccc'), c.send('dd')], [true, true, false, true]);
  t.equal(c.bytes, 10);
  t.same([...(await c.receive())], ['aaaa', 'bbbb', 'dd']);
  t.equal(c.bytes, 0, 'a receive takes the bytes with the items');
  t.ok(c.send('0123456789'), 'room again');
  t.notOk(new Channel<string>(100, 10, (s) => s.length).send('0123456789a'), 'an item larger than the bound never fits');
});

t.test('drainAll before a waiting receive wakes: the receive waits on for the next item, an empty batch still means closed', async (t) => {
  const c = new Channel<number>(10);
  const r = c.receive();
  c.send(1);
  c.send(2);
  t.same([...c.drainAll()], [1, 2]);
  let woke = false;
  void r.then(() => { woke = true; });
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(woke, 'no empty batch while open');
  c.send(3);
  t.same([...(await r)], [3], 'the next item wakes it');
  const d = new Channel<number>(10);
  const closedR = d.receive();
  d.send(1);
  d.drainAll();
  d.close();
  t.same([...(await closedR)], [], 'drained and closed: the empty batch');
});
