/**
 * Lines delivered above a watermark a missing topic holds (src/kafka/
 * delivered-ahead.ts), across more than one stop: the second start skips
 * them and is stopped inside the window again, with Lines of its own
 * delivered above the watermark; the third, with the topic there at last,
 * delivers the missing topic's Lines. Each Line once in its topic, and
 * `persisted` over the three runs equals what the topics hold.
 */
import t, { type Test } from 'tap';
import { drainedCounters } from '../helpers/files.js';
import { request } from '../helpers/http.js';
import { startKafka } from '../helpers/kafka.js';
import { idCounts, spoolHoldsNothing, startKafkaDaemon, stats, topicNow, type KafkaDaemon } from '../helpers/kafka-daemon.js';
import { spoolDir } from '../helpers/kafka-spool.js';
import { until } from '../helpers/wait.js';

const kafka = await startKafka({ props: ['auto.create.topics.enable=false'] });
t.teardown(() => kafka.stop());

const persisted = async (d: KafkaDaemon): Promise<number> => (await stats(d)).backends.kafka!.persisted as number;

t.test('topic missing, with the spool, SIGTERM inside the window twice running, then the topic created: each Line once in its topic, counted once', async (t: Test) => {
  const dir = spoolDir();
  const kafkaOpts = { flushTimeoutMs: 2000, spool: { dir, fsyncMs: 50 }, rdkafka: { 'topic.metadata.propagation.max.ms': 1000 } };
  const config = { shutdown: { graceMs: 0, drainTimeoutMs: 5000 } };
  const d1 = await startKafkaDaemon(kafka.bootstrap, { config, kafka: kafkaOpts });
  t.teardown(() => d1.stop());
  await kafka.createTopic(d1.topics.gr!, 3); // uk's not yet; gr's reports out of order across partitions
  await d1.waitLog((l) => l.msg === 'kafka producer connected');
  const uk = Array.from({ length: 20 }, (_, i) => `uk${i}`);
  const gr1 = Array.from({ length: 10 }, (_, i) => `gr${i}`);
  const gr2 = Array.from({ length: 10 }, (_, i) => `gr${10 + i}`);
  for (const id of uk.slice(0, 10)) t.equal((await request(d1.port, `/track?id=${id}`, { host: 'uk.test' })).status, 200);
  await d1.waitLog((l) => /^kafka delivery failed/.test(String(l.msg)) && l.code === 'ERR_UNKNOWN_TOPIC_OR_PART');
  for (const id of uk.slice(10)) t.equal((await request(d1.port, `/track?id=${id}`, { host: 'uk.test' })).status, 200);
  for (const id of gr1) t.equal((await request(d1.port, `/track?id=${id}`, { host: 'gr.test' })).status, 200);
  await until('gr\'s Lines delivered behind uk\'s', async () => (await persisted(d1)) >= gr1.length, 10_000);
  t.equal(await d1.stop(), 0);
  const c1 = drainedCounters(d1.logs, 'kafka');
  t.match(c1, { persisted: gr1.length, dropped: 0 }, 'first run: gr\'s delivered, uk\'s kept in the spool');

  // Second run: uk's Lines retried again, the first run's gr Lines skipped,
  // its own gr Lines delivered above the watermark; stopped inside the window.
  const d2 = await startKafkaDaemon(kafka.bootstrap, { config, kafka: kafkaOpts, topics: d1.topics });
  t.teardown(() => d2.stop());
  await d2.waitLog((l) => l.msg === 'kafka producer connected');
  for (const id of gr2) t.equal((await request(d2.port, `/track?id=${id}`, { host: 'gr.test' })).status, 200);
  await until('the second run\'s gr Lines delivered', async () => (await persisted(d2)) >= gr2.length, 10_000);
  t.equal(await d2.stop(), 0);
  const c2 = drainedCounters(d2.logs, 'kafka');
  t.match(c2, { persisted: gr2.length, dropped: 0 }, 'second run: its own gr Lines counted, the first run\'s not again; uk\'s still kept');

  // Third run: uk's topic exists now.
  await kafka.createTopic(d1.topics.uk!);
  const d3 = await startKafkaDaemon(kafka.bootstrap, { config, kafka: kafkaOpts, topics: d1.topics });
  t.teardown(() => d3.stop());
  await until('the spool empty', () => spoolHoldsNothing(d3), 30_000);
  t.equal(await d3.stop(), 0);
  const c3 = drainedCounters(d3.logs, 'kafka');
  t.match(c3, { persisted: uk.length, dropped: 0 }, 'third run: uk\'s Lines delivered, gr\'s not counted again');

  const gr = idCounts((await topicNow(kafka.bootstrap, d1.topics.gr!)).map((m) => m.value));
  const all = [...gr1, ...gr2];
  t.same(all.map((id) => `${id} ${gr.get(id) ?? 0}`), all.map((id) => `${id} 1`), 'each gr Line in its topic exactly once');
  const ukGot = idCounts((await topicNow(kafka.bootstrap, d1.topics.uk!)).map((m) => m.value));
  t.same(uk.map((id) => `${id} ${ukGot.get(id) ?? 0}`), uk.map((id) => `${id} 1`), 'each uk Line in its topic exactly once');
  t.equal(c1.persisted! + c2.persisted! + c3.persisted!, all.length + uk.length, 'persisted over the three runs: what the topics hold');
});
