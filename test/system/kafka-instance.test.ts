/**
 * The `instance` header (issue 27): every message a daemon produces names the
 * instance that answered its hit, beside `flavor`, whether it went straight
 * to the broker or through the disk spool during an outage (the drainer takes
 * the name from the config). One private broker, killed once.
 */
import t from 'tap';
import { consume } from '../helpers/consume.js';
import { startKafka, waitForMetadata } from '../helpers/kafka.js';
import { stats, traffic, waitFor } from '../helpers/kafka-daemon.js';
import { RAM_QUEUE, spoolDir, startSpoolDaemon } from '../helpers/kafka-spool.js';

const kafka = await startKafka({ owned: true });
t.teardown(() => kafka.stop());

t.test('live and spooled messages carry the instance header beside flavor', async (t) => {
  const d = await startSpoolDaemon(kafka.bootstrap, spoolDir(), { config: { instance: 'edge-a' } });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const gr = traffic(d, 'gr.test', 2, 5);
  await waitFor('Lines delivered live', async () => (await stats(d)).backends.kafka.persisted >= 50);
  await kafka.kill();
  await waitFor('Lines spooled during the outage', async () => (await stats(d)).kafka_spool.spilled_total >= RAM_QUEUE, 120_000);
  await kafka.restart();
  await waitForMetadata(kafka.bootstrap, 60_000);
  const { ok, bad } = await gr.stop();
  t.same(bad, [], 'every request answered 200');
  await waitFor('the spool empties', async () => {
    const s = (await stats(d)).kafka_spool;
    return s.records === 0 && s.spilling === 0;
  }, 180_000);
  const spilled = (await stats(d)).kafka_spool.drained_total as number;
  t.ok(spilled >= RAM_QUEUE, `${spilled} Lines went through the spool`);
  const got = await consume(kafka.bootstrap, d.topics.gr!, { count: ok.length, settleMs: 1000, timeoutMs: 120_000 });
  t.ok(got.length >= ok.length, `${got.length} messages for ${ok.length} answered Lines`);
  const headerSets = new Set(got.map((m) => JSON.stringify(m.headers)));
  t.same([...headerSets], [JSON.stringify({ flavor: 'gr', instance: 'edge-a' })], 'every message: flavor and instance headers');
  t.equal(await d.stop(), 0);
});
