/**
 * The disk spool behind the Kafka backend, against a real broker that is
 * killed and restarted, with librdkafka's RAM queue set to RAM_QUEUE messages so
 * an outage outgrows it within seconds: every answered Line reaches its
 * topic, in arrival order, once; SIGTERM during an outage loses nothing;
 * SIGKILL loses nothing written before it (kafka-spool-crash.test.ts holds
 * the exact count; here a margin of fsyncMs). Always a private broker
 * (KAFKA_BOOTSTRAP is ignored, and says so); never skips.
 */
import t from 'tap';
import { startKafka, waitForMetadata } from '../helpers/kafka.js';
import { health, stats, traffic, waitFor } from '../helpers/kafka-daemon.js';
import { flavorHeaders, orderAgainstFile, RAM_QUEUE, readTopic, segments, spoolDir, startSpoolDaemon } from '../helpers/kafka-spool.js';

const kafka = await startKafka({ owned: true });
t.teardown(() => kafka.stop());
t.afterEach(async () => {
  await waitForMetadata(kafka.bootstrap, 5000).catch(() => kafka.restart());
});

import { sleep } from '../helpers/wait.js';

t.test('an outage 10× longer than the RAM queue holds: every answered Line in its topic, in order, once; the spool empties', async (t) => {
  const dir = spoolDir();
  const d = await startSpoolDaemon(kafka.bootstrap, dir);
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const gr = traffic(d, 'gr.test', 2, 5);
  const tr = traffic(d, 'tr.test', 2, 5);
  await waitFor('Lines delivered before the outage', async () => (await stats(d)).backends.kafka.persisted >= 300);
  await kafka.kill();
  // The outage lasts until the spool took 10× what librdkafka's RAM queue holds.
  await waitFor('10× the RAM queue spilled', async () => (await stats(d)).kafka_spool.spilled_total >= 10 * RAM_QUEUE, 180_000);
  const h = await health(d);
  t.equal(h.body.backends.kafka?.state, 'spooling', `kafka health during the outage: ${JSON.stringify(h.body.backends.kafka)}`);
  t.equal(h.status, 200, 'spooling is not down: stats /health stays 200');
  const during = await stats(d);
  t.ok(during.kafka_spool.records > 0 && during.kafka_spool.bytes > 0 && during.kafka_spool.segments > 0, 'records, bytes, segments visible');
  t.ok(during.kafka_spool.oldest_age_seconds > 0, `oldest ${during.kafka_spool.oldest_age_seconds} s`);
  await kafka.restart();
  // Traffic goes on while the spool drains: the drainer must still catch up
  // with a tail that keeps growing and hand back to the normal path.
  await waitFor('normal mode again under traffic', async () => (await stats(d)).kafka_spool.spilling === 0, 180_000);
  // The hand-back leaves the last records read in flight, and a queue that
  // catches up: /health says ok once their reports came, within seconds.
  let last: unknown;
  const healthy = await waitFor('kafka ok again', async () => {
    last = (await health(d)).body.backends.kafka;
    return (last as { state?: string } | undefined)?.state === 'ok';
  }, 15_000).then(() => true, () => false);
  t.ok(healthy, `kafka ok again while traffic flows (${JSON.stringify(last)})`);
  await sleep(1000);
  const a = await gr.stop();
  const b = await tr.stop();
  t.same([...a.bad, ...b.bad], [], 'every request answered 200');
  await waitFor('the spool empties', async () => {
    const s = (await stats(d)).kafka_spool;
    return s.records === 0 && s.spilling === 0;
  }, 180_000);
  await waitFor('its segments are deleted', () => segments(dir).length === 0, 10_000);
  const after = await stats(d);
  t.equal(after.kafka_spool.drained_total, after.kafka_spool.spilled_total, 'drained = spilled');
  t.same(after.kafka_spool.dropped_total, { spool_full: 0, disk_full: 0, spool_error: 0 });
  t.equal((await health(d)).body.backends.kafka?.state, 'ok', 'normal again');
  for (const [flavor, ok] of [['gr', a.ok], ['tr', b.ok]] as const) {
    const got = await readTopic(kafka.bootstrap, d.topics[flavor]!, ok, undefined, true);
    t.same(got.missing, [], `${flavor}: every one of ${ok.length} answered Lines is in the topic`);
    t.equal(got.duplicates, 0, `${flavor}: none twice`);
    orderAgainstFile(t, d, flavor, got.ids);
    const headers = await flavorHeaders(kafka.bootstrap, d.topics[flavor]!, got.ids.length);
    t.same([...new Set(headers)], [flavor], `${flavor}: every message, spooled or not, has the flavor header`);
  }
  t.equal(await d.stop(), 0);
});

t.test('SIGTERM during an outage, restart with the broker back: nothing missing', async (t) => {
  const dir = spoolDir();
  const d1 = await startSpoolDaemon(kafka.bootstrap, dir, { config: { shutdown: { graceMs: 0, drainTimeoutMs: 5000 } } });
  t.teardown(() => d1.stop());
  await d1.waitLog((l) => l.msg === 'kafka producer connected');
  const tr1 = traffic(d1, 'gr.test', 2, 5);
  await waitFor('Lines delivered before the outage', async () => (await stats(d1)).backends.kafka.persisted >= 200);
  await kafka.kill();
  // An outage longer than librdkafka's queue holds.
  await waitFor('the RAM queue spilled', async () => (await stats(d1)).kafka_spool.spilled_total >= RAM_QUEUE, 60_000);
  const a = await tr1.stop();
  t.same(a.bad, []);
  t.equal(await d1.stop(), 0, 'exit 0');
  const closed = d1.logs.find((l) => l.msg === 'kafka backend closed') as { dropped?: number } | undefined;
  t.equal(closed?.dropped, 0, 'nothing counted lost');
  const purged = d1.logs.find((l) => l.msg === 'kafka: Lines librdkafka still held at shutdown written to the spool') as { lines?: number } | undefined;
  t.comment(`Lines librdkafka still held at SIGTERM, written to the spool: ${purged?.lines ?? 0}`);

  await kafka.restart();
  const d2 = await startSpoolDaemon(kafka.bootstrap, dir, { topics: d1.topics });
  t.teardown(() => d2.stop());
  await waitFor('the spool empties', async () => (await stats(d2)).kafka_spool.records === 0, 60_000);
  const got = await readTopic(kafka.bootstrap, d1.topics.gr!, a.ok, undefined, true);
  t.same(got.missing, [], `every one of ${a.ok.length} answered Lines is in the topic`);
  // A Line the broker wrote but could not acknowledge before it died is
  // still librdkafka's at SIGTERM, so it is spooled and comes again (docs/kafka.md:
  // Kafka outages, Shutdown): only those can come twice.
  t.ok(got.duplicates <= (purged?.lines ?? 0), `twice: ${got.duplicates}, at most the ${purged?.lines ?? 0} Lines librdkafka still held`);
  await waitFor('its segments are deleted', () => segments(dir).length === 0, 10_000);
  t.equal(await d2.stop(), 0);
});

t.test('SIGKILL while spooling: nothing answered before the last fsync is missing; SIGKILL while draining: duplicates within the bound', async (t) => {
  const dir = spoolDir();
  const fsyncMs = 200;
  await kafka.kill();
  const d1 = await startSpoolDaemon(kafka.bootstrap, dir, { spool: { fsyncMs } });
  t.teardown(() => d1.stop('SIGKILL'));
  const tr1 = traffic(d1, 'uk.test', 2, 2);
  await waitFor('Lines spooled', async () => (await stats(d1)).kafka_spool.records > 3000, 120_000);
  d1.proc.kill('SIGKILL');
  const killedAt = Date.now();
  const a = await tr1.stop();
  await d1.exited;

  await kafka.restart();
  const d2 = await startSpoolDaemon(kafka.bootstrap, dir, { topics: d1.topics });
  t.teardown(() => d2.stop('SIGKILL'));
  // Kill it again mid-drain: the Lines delivered but not yet in the persisted ledger come again.
  await waitFor('draining', async () => (await stats(d2)).kafka_spool.drained_total > 0, 60_000);
  // The drain rate just before the kill, for the bound below.
  const before = { n: (await stats(d2)).kafka_spool.drained_total, at: Date.now() };
  await sleep(500);
  const last = { n: (await stats(d2)).kafka_spool.drained_total, at: Date.now() };
  d2.proc.kill('SIGKILL');
  const drainRate = (last.n - before.n) / Math.max(0.1, (last.at - before.at) / 1000);
  await d2.exited;
  const d3 = await startSpoolDaemon(kafka.bootstrap, dir, { topics: d1.topics });
  t.teardown(() => d3.stop());
  await waitFor('the spool empties', async () => (await stats(d3)).kafka_spool.records === 0, 120_000);

  const got = await readTopic(kafka.bootstrap, d1.topics.uk!, a.ok, undefined, true);
  // The spool's promise: what was answered before the last fsync (plus the
  // moment a Line takes from the answer to the spool's RAM) is on disk.
  const margin = fsyncMs + 100;
  const missing = new Set(got.missing);
  const missingOld = a.ok.filter((id, i) => missing.has(id) && a.okAt[i]! < killedAt - margin);
  t.same(missingOld, [], `nothing answered more than ${margin} ms before the SIGKILL is missing (of ${a.ok.length})`);
  t.comment(`missing, all answered in the last ${margin} ms before the SIGKILL: ${got.missing.length}`);
  // docs/kafka.md: at most the Lines in flight from the spool (half the RAM queue
  // here) plus those acknowledged since the last ledger write (fsyncMs of
  // draining, plus as long again for the write's own fsyncs and once more for
  // a flush delayed on a loaded machine, at the drain rate measured just before the kill).
  const bound = RAM_QUEUE / 2 + Math.ceil((drainRate * 3 * fsyncMs) / 1000);
  t.ok(got.duplicates <= bound, `duplicates after a SIGKILL mid-drain: ${got.duplicates} (bound ${bound})`);
  t.equal(await d3.stop(), 0);
});
