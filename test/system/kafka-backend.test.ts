/**
 * KafkaBackend against a real broker (KAFKA_BOOTSTRAP, or one started here),
 * with Lines made by hand: what lands in Kafka, byte for byte.
 */
import t from 'tap';
import { KafkaBackend } from '../../src/kafka/backend.js';
import { rdkafkaConfigError } from '../../src/kafka/settings.js';
import { startKafka } from '../helpers/kafka.js';
import { consume } from '../helpers/consume.js';
import { backend, flavor, kafkaConfig, line, log } from '../helpers/lines.js';
import { until } from '../helpers/wait.js';

const kafka = await startKafka();
t.teardown(() => kafka.stop());

t.test('values, timestamps, topics and no key, for three flavors', async (t) => {
  const flavors = [flavor('gr'), flavor('tr'), flavor('uk')];
  const k = backend(t, kafkaConfig(kafka.bootstrap));
  await k.start();
  const sent = flavors.map((f, i) => [
    line(f, { foo: 'bar', i: String(i), nested: { a: ['1', null] }, 'ünï': 'cödé ✓' }, 1_700_000_000_000 + i),
    line(f, {}, 1_700_000_000_100 + i),
  ]);
  for (const pair of sent) for (const l of pair) t.equal(k.send(l), true);
  await until('6 deliveries', () => k.counters.persisted === 6, 30_000);
  t.equal(k.queued(), 0);
  t.same(k.health(), { state: 'ok' });
  for (const [i, f] of flavors.entries()) {
    const got = await consume(kafka.bootstrap, f.topic, { count: 2 });
    t.equal(got.length, 2, `${f.name}: two messages`);
    t.same(got.map((m) => m.value.toString('utf8')), sent[i].map((l) => l.json.toString()), `${f.name}: the Line's JSON bytes, no newline`);
    t.same(got.map((m) => m.timestamp), sent[i].map((l) => l.time), `${f.name}: timestamp = Line time`);
    t.same(got.map((m) => m.key), [null, null], `${f.name}: no key by default`);
    t.ok(got.every((m) => m.topic === f.topic));
  }
  await k.close();
  t.same(k.counters, { persisted: 6, failed: 0, dropped: 0, retried: 0 });
});

t.test('key from a Values field', async (t) => {
  const f = flavor('keyed');
  const k = backend(t, kafkaConfig(kafka.bootstrap, { key: 'uid' }));
  await k.start();
  k.send(line(f, { uid: 'u-42', x: '1' }));
  k.send(line(f, { x: '2' }));
  k.send(line(f, { uid: null }));
  k.send(line(f, { uid: { a: '1' } }));
  const got = await consume(kafka.bootstrap, f.topic, { count: 4 });
  t.same(got.map((m) => m.key?.toString() ?? null), ['u-42', null, null, '{"a":"1"}']);
  await k.close();
});

t.test('10 000 Lines delivered exactly once, in order', async (t) => {
  const f = flavor('many');
  const k = backend(t, kafkaConfig(kafka.bootstrap));
  await k.start();
  const n = 10_000;
  let accepted = 0;
  for (let i = 0; i < n; i++) if (k.send(line(f, { n: String(i) }))) accepted++;
  t.equal(accepted, n);
  // Not `await` between sends: all of them queue at once, as a burst of requests would.
  await until('10 000 deliveries', () => k.counters.persisted === n, 60_000);
  const got = await consume(kafka.bootstrap, f.topic, { count: n, settleMs: 2000 });
  t.equal(got.length, n, 'no duplicates, nothing missing');
  t.same(got.map((m) => JSON.parse(m.value.toString()).n), Array.from({ length: n }, (_, i) => String(i)), 'in order');
  await k.close();
  t.same(k.counters, { persisted: n, failed: 0, dropped: 0, retried: 0 });
});

t.test('close() with Lines in flight delivers them first', async (t) => {
  const f = flavor('closing');
  const k = backend(t, kafkaConfig(kafka.bootstrap));
  await k.start();
  for (let i = 0; i < 5000; i++) k.send(line(f, { n: String(i) }));
  t.ok(k.queued() > 0, 'Lines are queued when close() begins');
  await k.close();
  t.equal(k.counters.persisted, 5000);
  t.equal(k.queued(), 0);
  t.equal(k.send(line(f, { late: '1' })), false, 'no Lines accepted after close');
  t.equal(k.counters.dropped, 1);
  const got = await consume(kafka.bootstrap, f.topic, { count: 5000, settleMs: 1000 });
  t.equal(got.length, 5000);
});

t.test('a Line librdkafka refuses is counted, not lost silently', async (t) => {
  const f = flavor('big');
  const k = backend(t, kafkaConfig(kafka.bootstrap, {}, { 'message.max.bytes': 2000 }));
  await k.start();
  k.send(line(f, { big: 'x'.repeat(5000) }));
  k.send(line(f, { small: 'y' }));
  await until('both settled', () => k.counters.persisted + k.counters.dropped === 2, 30_000);
  t.same(k.counters, { persisted: 1, failed: 1, dropped: 1, retried: 0 });
  t.match(k.health(), { state: 'degraded', reason: /dropped in the last minute: refused: .*too large/i });
  await k.close();
});

t.test('librdkafka settings it refuses fail at construction, with its reason', async (t) => {
  t.equal(rdkafkaConfigError({ 'metadata.broker.list': kafka.bootstrap }), null);
  t.match(rdkafkaConfigError({ 'no.such.setting': 1 }), /No such configuration property: "no.such.setting"/);
  t.match(rdkafkaConfigError({ 'linger.ms': -5 }), /outside allowed range/);
  t.throws(() => new KafkaBackend(kafkaConfig(kafka.bootstrap, {}, { acks: 'sometimes' }), log), /request.required.acks/);
});
