/**
 * When a topic a broker calls unknown is given up on (src/kafka/unknown-topics.ts):
 * not at librdkafka's first verdict, which an outage or a pause can make
 * while the topic is being auto-created, but once brokers kept calling it
 * unknown for a window with no outage between; a deleted topic's Lines are
 * still dropped then. test/system/kafka-drain.test.ts has the faults.
 */
import t from 'tap';
import { UnknownTopics } from '../../src/kafka/unknown-topics.js';

t.test('the first verdict is retried; still unknown a whole window later, the topic is gone', async (t) => {
  const u = new UnknownTopics({ 'topic.metadata.propagation.max.ms': 10_000 });
  t.ok(u.mayAppear('gone', 0), 'librdkafka\'s first verdict: retried');
  t.ok(u.mayAppear('gone', 9_999), 'within the window: retried');
  t.ok(u.mayAppear('gone', 10_000), 'a window later, brokers not yet seen answering since: retried');
  u.heard(10_000);
  t.notOk(u.mayAppear('gone', 10_000), 'a window later, brokers answering: final (dropped)');
  t.notOk(u.mayAppear('gone', 60_000), 'and from then on, at once');
  t.ok(u.mayAppear('other', 60_000), 'another topic has its own window');
});

t.test('an outage between starts the window again: what brokers said before it tells nothing', async (t) => {
  const u = new UnknownTopics({ 'topic.metadata.propagation.max.ms': 10_000 });
  t.ok(u.mayAppear('new', 0));
  u.outage();
  t.ok(u.mayAppear('new', 30_000), 'after the outage: retried');
  u.heard(40_000);
  t.notOk(u.mayAppear('new', 40_000), 'a window after that: final');
});

t.test('a message delivered to the topic: it exists, a later verdict is retried again', async (t) => {
  const u = new UnknownTopics({ 'topic.metadata.propagation.max.ms': 10_000 });
  t.ok(u.mayAppear('t', 0));
  u.exists('t');
  t.ok(u.mayAppear('t', 50_000), 'deleted later: its first verdict retried');
  u.heard(60_000);
  t.notOk(u.mayAppear('t', 60_000));
});

t.test('the window: librdkafka\'s default, the operator\'s setting, never shorter than librdkafka needs to ask again', async (t) => {
  const dflt = new UnknownTopics({});
  dflt.mayAppear('t', 0);
  dflt.heard(40_000);
  t.ok(dflt.mayAppear('t', 29_999), 'default 30 s');
  t.notOk(dflt.mayAppear('t', 30_000));
  const short = new UnknownTopics({ 'topic.metadata.propagation.max.ms': 100 });
  short.mayAppear('t', 0);
  short.heard(10_000);
  t.ok(short.mayAppear('t', 4_999), 'a short setting: at least 5 s');
  t.notOk(short.mayAppear('t', 5_000));
  t.notOk(new UnknownTopics({}).mayAppear(undefined, 0), 'no topic named: final, as before');
});

t.test('brokers silent past the window\'s end (librdkafka\'s verdict is cached): not final until statistics find them answering again', async (t) => {
  const u = new UnknownTopics({ 'topic.metadata.propagation.max.ms': 10_000 });
  u.heard(0);
  t.ok(u.mayAppear('t', 1_000));
  u.heard(5_000); // answering within the window, then silent
  t.ok(u.mayAppear('t', 20_000), 'no statistics since the window\'s end: retried');
  u.outage(); // statistics found them silent: the window starts again
  t.ok(u.mayAppear('t', 26_000), 'back: the first verdict again');
  u.heard(36_000);
  t.notOk(u.mayAppear('t', 36_000), 'answering a whole window later: final');
  const blind = new UnknownTopics({ 'topic.metadata.propagation.max.ms': 10_000, 'statistics.interval.ms': 0 });
  blind.mayAppear('t', 0);
  t.notOk(blind.mayAppear('t', 10_000), 'without statistics: final once the window passed, as no tick would come');
});
