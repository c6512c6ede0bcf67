/**
 * The test broker helper itself: starts, answers, survives SIGKILL +
 * restart with its data, and a paused broker answers again after resume.
 * Owned broker (kills it), so KAFKA_BOOTSTRAP is ignored here.
 */
import t from 'tap';
import Kafka from 'node-rdkafka';
import { startKafka, waitForMetadata } from '../helpers/kafka.js';
import { consume } from '../helpers/consume.js';

function produce(bootstrap: string, topic: string, values: string[]): Promise<void> {
  const p = new Kafka.Producer({ 'metadata.broker.list': bootstrap, dr_cb: true });
  return new Promise((resolve, reject) => {
    let left = values.length;
    p.on('delivery-report', (err) => {
      if (err) reject(err);
      else if (--left === 0) p.disconnect(() => resolve());
    });
    p.setPollInterval(20);
    p.connect({}, (err) => {
      if (err) return reject(err);
      for (const v of values) p.produce(topic, null, Buffer.from(v), null, Date.now());
    });
  });
}

t.test('broker lifecycle', async (t) => {
  const kafka = await startKafka({ owned: true });
  t.teardown(() => kafka.stop());
  t.match(kafka.bootstrap, /^127\.0\.0\.1:\d+$/);
  await kafka.createTopic('lifecycle', 2);
  await produce(kafka.bootstrap, 'lifecycle', ['a', 'b', 'c']);
  let got = await consume(kafka.bootstrap, 'lifecycle', { count: 3, timeoutMs: 20_000 });
  t.same(got.map((m) => m.value.toString()).sort(), ['a', 'b', 'c']);

  await kafka.kill();
  await t.rejects(waitForMetadata(kafka.bootstrap, 1500), 'killed broker does not answer');
  await kafka.restart();
  got = await consume(kafka.bootstrap, 'lifecycle', { timeoutMs: 20_000 });
  t.same(got.map((m) => m.value.toString()).sort(), ['a', 'b', 'c'], 'data survives SIGKILL + restart');

  await kafka.pause();
  await t.rejects(waitForMetadata(kafka.bootstrap, 1500), 'paused broker does not answer');
  await kafka.resume();
  await waitForMetadata(kafka.bootstrap, 30_000);
  await produce(kafka.bootstrap, 'lifecycle', ['d']);
  got = await consume(kafka.bootstrap, 'lifecycle', { count: 4, timeoutMs: 20_000 });
  t.equal(got.length, 4);
});
