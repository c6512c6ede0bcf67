/**
 * The Kafka backend's queue overflows while the broker is healthy: more
 * Lines arrive at once than the queue holds (one bulk body, unpacked by the
 * main thread in one turn). With a spool, an overflowing queue is "memory or
 * disk", as nsqd's put(): the Lines that do not fit go to the spool behind
 * the ones queued, in order, and reach the topic; nothing is dropped. Without
 * a spool they are dropped, counted as queue_full, in a loss window.
 */
import t from 'tap';
import { request } from '../helpers/http.js';
import { ownedBroker, stats, waitFor } from '../helpers/kafka-daemon.js';
import { readTopic, spoolDir, startSpoolDaemon } from '../helpers/kafka-spool.js';
import { startKafkaDaemon } from '../helpers/kafka-daemon.js';

const { kafka } = await ownedBroker(t, 'overload');
const ENTRIES = 400;
const QUEUE = 8;
const limits = { limits: { maxBulkRequests: ENTRIES } };
const bulk = (run: string) => JSON.stringify({ requests: Array.from({ length: ENTRIES }, (_, i) => `?id=${run}-${i}`) });
const post = (port: number, body: string) =>
  request(port, '/track', { host: 'gr.test', method: 'POST', body, headers: { 'content-type': 'application/json' } });

t.test('with a spool: a burst past the queue goes to the spool behind it, every Line in the topic once, in order', async (t) => {
  const d = await startSpoolDaemon(kafka.bootstrap, spoolDir(), { config: limits, kafka: { queueCapacity: QUEUE } });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const ids: string[] = [];
  for (const run of ['a', 'b', 'c']) {
    const r = await post(d.port, bulk(run));
    t.equal(r.status, 204, `bulk ${run} accepted`);
    for (let i = 0; i < ENTRIES; i++) ids.push(`${run}-${i}`);
  }
  await waitFor('every Line delivered or dropped, the spool empty', async () => {
    const s = await stats(d);
    return s.backends.kafka.persisted + s.backends.kafka.dropped === ids.length && s.kafka_spool.records === 0;
  }, 60_000);
  const s = await stats(d);
  t.equal(s.backends.kafka.dropped, 0, 'nothing dropped');
  t.ok(s.kafka_spool.spilled_total > 0, `the overflow went to the spool (${s.kafka_spool.spilled_total} Lines)`);
  const got = await readTopic(kafka.bootstrap, d.topics.gr!, ids, undefined, true);
  t.same(got.missing, [], `all ${ids.length} in the topic`);
  t.equal(got.duplicates, 0, 'none twice');
  t.same(got.ids, ids, 'in the order they were sent');
  t.equal(await d.stop(), 0);
});

t.test('without a spool: the Lines past the queue are dropped as queue_full and counted', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, { config: limits, kafka: { queueCapacity: QUEUE } });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  t.equal((await post(d.port, bulk('x'))).status, 204);
  await waitFor('every Line produced or dropped', async () => {
    const k = (await stats(d)).backends.kafka;
    return k.persisted + k.dropped === ENTRIES;
  }, 30_000);
  const k = (await stats(d)).backends.kafka;
  t.ok(k.dropped > 0 && k.dropped <= ENTRIES - QUEUE, `dropped ${k.dropped}, kept at least the ${QUEUE} the queue holds`);
  t.equal(await d.stop(), 0);
});
