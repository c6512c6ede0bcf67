/**
 * An outage longer than librdkafka's default message.timeout.ms (5 minutes)
 * under steady traffic, with and without the spool, loses no Line: the
 * shipped default (message.timeout.ms=0, docs/kafka.md) reaches librdkafka,
 * so nothing it holds expires, and neither does the drainer's one-record
 * probe (a probe that expired would show as a failed delivery from the
 * spool, counted and logged). One private broker (KAFKA_BOOTSTRAP ignored;
 * never skips), SIGKILLed for OUTAGE_MS, two daemons against it at once:
 * one without the spool, one with it, each its own topic.
 */
import t from 'tap';
import { startKafka } from '../helpers/kafka.js';
import { health, startKafkaDaemon, stats, topicHolds, topicNamer, traffic, waitFor, type KafkaDaemon } from '../helpers/kafka-daemon.js';
import { segments, spoolDir, startSpoolDaemon } from '../helpers/kafka-spool.js';
import { sleep } from '../helpers/wait.js';

// The outage alone is longer than tap's default timeout per file.
t.setTimeout(10 * 60_000);

/** Longer than librdkafka's default message.timeout.ms (300 000), with a margin for Lines produced as it began. */
const OUTAGE_MS = 310_000;
/** /health is sampled this often during the outage. */
const HEALTH_EVERY_MS = 10_000;

const kafka = await startKafka({ owned: true });
t.teardown(() => kafka.stop());
const newTopic = topicNamer('long-outage');

t.test(`broker dead for ${OUTAGE_MS / 1000} s under traffic, with and without the spool: every answered Line once, nothing dropped or expired`, async (t) => {
  const plainTopic = newTopic();
  const spoolTopic = newTopic();
  await kafka.createTopic(plainTopic, 1);
  await kafka.createTopic(spoolTopic, 1);
  // Shipped defaults on both (no message.timeout.ms, queues as shipped);
  // the spool daemon has the spool helper's small RAM queue, so the drain
  // after the outage runs many windows.
  const plain = await startKafkaDaemon(kafka.bootstrap, { topics: { gr: plainTopic } });
  t.teardown(() => plain.stop());
  const dir = spoolDir();
  const spooled = await startSpoolDaemon(kafka.bootstrap, dir, { topics: { gr: spoolTopic } });
  t.teardown(() => spooled.stop());
  await plain.waitLog((l) => l.msg === 'kafka producer connected');
  await spooled.waitLog((l) => l.msg === 'kafka producer connected');

  // Light load: 2 keep-alive connections per daemon, one request each per
  // 50 ms, so a few thousand Lines per daemon over the whole outage: far
  // below what the daemon without the spool holds (librdkafka's default
  // queue.buffering.max.messages, then its own queueCapacity), so a loss
  // here is an expiry, never a full queue. Its `retried` stays 0 to show it.
  const plainTraffic = traffic(plain, 'gr.test', 2, 50);
  const spoolTraffic = traffic(spooled, 'gr.test', 2, 50);
  await waitFor('Lines delivered before the outage', async () =>
    (await stats(plain)).backends.kafka.persisted >= 50 && (await stats(spooled)).backends.kafka.persisted >= 50);

  await kafka.kill();
  const killedAt = Date.now();
  const states = { plain: new Map<string, number>(), spooled: new Map<string, number>() };
  const note = (m: Map<string, number>, what: string): void => { m.set(what, (m.get(what) ?? 0) + 1); };
  // librdkafka notices a dead connection at once; the first seconds are
  // left out so a sample never races that notice.
  await sleep(5000);
  while (Date.now() - killedAt < OUTAGE_MS) {
    const [p, s] = await Promise.all([health(plain), health(spooled)]);
    note(states.plain, `${p.status} ${p.body.backends.kafka?.state}`);
    note(states.spooled, `${s.status} ${s.body.backends.kafka?.state}`);
    await sleep(Math.min(HEALTH_EVERY_MS, Math.max(0, OUTAGE_MS - (Date.now() - killedAt))));
  }
  const samples = [...states.plain.values()].reduce((a, b) => a + b, 0);
  // docs/kafka.md: without the spool, no broker connection is `down` (503);
  // with it, `spooling` (200: the data is safe on disk).
  t.same(Object.fromEntries(states.plain), { '503 down': samples }, 'without the spool: down (503) all through the outage');
  t.same(Object.fromEntries(states.spooled), { '200 spooling': samples }, 'with the spool: spooling (200) all through the outage');
  const during = await stats(spooled);
  t.ok(during.kafka_spool.records > 0, `the spool holds ${during.kafka_spool.records} Lines`);

  await kafka.restart();
  t.comment(`broker back after ${((Date.now() - killedAt) / 1000).toFixed(0)} s`);
  await sleep(5000);
  const a = await plainTraffic.stop();
  const b = await spoolTraffic.stop();
  t.same([...a.bad, ...b.bad], [], 'every request answered 200');

  // Delivered: every answered Line persisted (no spool), the spool empty and back to normal.
  await waitFor('the daemon without the spool delivered everything', async () => {
    const k = (await stats(plain)).backends.kafka;
    return k.persisted + k.dropped >= a.ok.length && k.queued === 0;
  }, 120_000).catch(() => {});
  await waitFor('the spool empties', async () => {
    const s = await stats(spooled);
    return s.kafka_spool.records === 0 && s.kafka_spool.spilling === 0 && s.backends.kafka.queued === 0;
  }, 120_000).catch(() => {});
  await waitFor('its segments are deleted', () => segments(dir).length === 0, 10_000).catch(() => {});

  const check = async (d: KafkaDaemon, what: string, topic: string, ok: string[]): Promise<void> => {
    const s = await stats(d);
    const k = s.backends.kafka;
    const c = await topicHolds(kafka.bootstrap, topic, ok);
    t.same(c.missing.slice(0, 20), [], `${what}: every one of ${ok.length} answered Lines in the topic (missing ${c.missing.length})`);
    t.equal(c.duplicated, 0, `${what}: none twice`);
    t.equal(k.dropped, 0, `${what}: dropped 0`);
    // An expired message (librdkafka's default timeout reaching it, the probe included) is a failed delivery.
    t.equal(k.failed, 0, `${what}: no delivery failed (nothing expired)`);
    t.equal(k.persisted, c.total, `${what}: persisted = what the topic holds (${c.total})`);
    t.same(s.loss_windows, { open: [], recent: [] }, `${what}: no loss window`);
  };
  await check(plain, 'without the spool', plainTopic, a.ok);
  t.equal((await stats(plain)).backends.kafka.retried, 0, 'without the spool: librdkafka\'s queue never full (retried 0)');
  await check(spooled, 'with the spool', spoolTopic, b.ok);
  const after = await stats(spooled);
  t.ok(after.kafka_spool.spilled_total > 0, `with the spool: ${after.kafka_spool.spilled_total} Lines spilled`);
  t.equal(after.kafka_spool.drained_total, after.kafka_spool.spilled_total, 'with the spool: drained = spilled');
  t.same(after.kafka_spool.dropped_total, { spool_full: 0, disk_full: 0, spool_error: 0 }, 'with the spool: the spool dropped nothing');
  t.same(segments(dir), [], 'with the spool: its segments deleted');
  t.same(spooled.logs.filter((l) => l.msg === 'kafka delivery from the spool failed, will retry'), [], 'with the spool: no spooled record (the probe) failed');

  t.equal(await plain.stop(), 0, 'without the spool: exit 0');
  t.equal(await spooled.stop(), 0, 'with the spool: exit 0');
});
