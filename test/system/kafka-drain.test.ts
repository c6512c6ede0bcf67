/**
 * The Kafka backend's drainer and start, against a real broker that is
 * killed and paused (a private one: KAFKA_BOOTSTRAP ignored; never skips).
 * Split from kafka-delivery.test.ts so that each file stays well inside
 * tap's timeout on a loaded machine. From the list there:
 *   - topic-level settings reach librdkafka (an operator's message.timeout.ms
 *     is applied; test/unit/kafka-scope.test.ts shows the conf dump);
 *   - a delivery error is told by its code, so a retriable one re-spools a
 *     normal Line and rewinds a spooled record, and nothing is lost;
 *   - each report is matched to its own Line: after a pause, a resume and a
 *     kill 40 ms later, then SIGTERM and a restart, every answered Line is in
 *     the topic once, and the counters equal what the topic holds;
 *   - a failure's loss window carries the Line's own flavor and arrival time;
 *   - a reload's flavors decide the topic of spooled Lines;
 *   - a start against a healthy broker is quiet;
 *   - a drainer error is retried, counted and logged, never final.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { request } from '../helpers/http.js';
import { health, stats, waitFor } from '../helpers/kafka-daemon.js';
import { spoolDir } from '../helpers/kafka-spool.js';
import { ownedBroker, startKafkaDaemon, spoolHoldsNothing } from '../helpers/kafka-daemon.js';
import { sleep } from '../helpers/wait.js';

const { kafka, newTopic, check } = await ownedBroker(t, 'drain');
const spoolEmpty = spoolHoldsNothing;

t.test('a reload that adds a flavor and re-points another: their spooled Lines go to the topics configured now', async (t) => {
  const [grOld, grNew, xxTopic] = [newTopic(), newTopic(), newTopic()];
  for (const topic of [grOld, grNew, xxTopic]) await kafka.createTopic(topic, 1);
  const d = await startKafkaDaemon(kafka.bootstrap, {
    topics: { gr: grOld },
    kafka: { flushTimeoutMs: 2000, spool: { dir: spoolDir(), fsyncMs: 100 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  await kafka.kill();
  await d.waitLog((l) => l.msg === 'librdkafka error');
  const config = d.config as { flavors: { name: string; topic: string; hosts: string[] }[] };
  const flavors = [
    ...config.flavors.map((f) => (f.name === 'gr' ? { ...f, topic: grNew } : f)),
    { name: 'xx', hosts: ['xx.test'], timeZone: 'UTC', topic: xxTopic },
  ];
  writeFileSync(join(d.dir, 'config.json'), JSON.stringify({ ...d.config, flavors }, null, 2));
  d.proc.kill('SIGHUP');
  await d.waitLog((l) => l.msg === 'config reloaded');
  for (let i = 0; i < 10; i++) {
    t.equal((await request(d.port, `/track?id=gr${i}`, { host: 'gr.test' })).status, 200);
    t.equal((await request(d.port, `/track?id=xx${i}`, { host: 'xx.test' })).status, 200);
  }
  await waitFor('20 Lines spooled', async () => (await stats(d)).kafka_spool?.records === 20, 10_000);
  await kafka.restart();
  await waitFor('the spool empty', () => spoolEmpty(d), 60_000).catch(() => {});
  t.equal(await d.stop(), 0);
  const ids = (prefix: string): string[] => Array.from({ length: 10 }, (_, i) => `${prefix}${i}`);
  const gr = await check(grNew, ids('gr'), { stopped: true });
  t.same(gr.missing, [], 'gr\'s Lines in its new topic');
  const xx = await check(xxTopic, ids('xx'), { stopped: true });
  t.same(xx.missing, [], 'the new flavor\'s Lines in its configured topic');
});

t.test('a fresh start and a restart against a healthy broker, Lines at once: nothing spooled, nothing logged at warn or above', async (t) => {
  const topic = newTopic();
  await kafka.createTopic(topic, 1);
  const dir = spoolDir();
  const ids: string[] = [];
  for (const run of [1, 2]) {
    const d = await startKafkaDaemon(kafka.bootstrap, { topics: { gr: topic }, kafka: { spool: { dir, fsyncMs: 100 } } });
    t.teardown(() => d.stop());
    // At once: before librdkafka's first connection.
    for (let i = 0; i < 20; i++) {
      ids.push(`${run}-${i}`);
      t.equal((await request(d.port, `/track?id=${run}-${i}`, { host: 'gr.test' })).status, 200);
    }
    await waitFor('delivered', async () => (await stats(d)).backends?.kafka?.persisted === 20, 30_000).catch(() => {});
    t.equal(await d.stop(), 0);
    const closed = d.logs.find((l) => l.msg === 'kafka backend closed') as { spool?: { spilled_total: number } } | undefined;
    t.equal(closed?.spool?.spilled_total, 0, `run ${run}: nothing went to the spool`);
    // Every component, the spool's start-up included (#28: a fresh spool is silent).
    const loud = d.logs.filter((l) => (l.level as number) >= 40);
    t.same(loud, [], `run ${run}: no line at warn or above`);
  }
  const c = await check(topic, ids, { stopped: true });
  t.same(c.missing, []);
  t.equal(c.duplicated, 0);
});

t.test('the drainer fails on an unreadable segment: logged, counted, retried with a pause until it reads again; nothing lost', async (t) => {
  const topic = newTopic();
  await kafka.createTopic(topic, 1);
  const dir = spoolDir();
  const d = await startKafkaDaemon(kafka.bootstrap, {
    topics: { gr: topic },
    kafka: { flushTimeoutMs: 2000, spool: { dir, fsyncMs: 50, segmentBytes: 4096 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  await kafka.kill();
  await d.waitLog((l) => l.msg === 'librdkafka error');
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) {
    ids.push(String(i));
    t.equal((await request(d.port, `/track?id=${i}&pad=${'p'.repeat(200)}`, { host: 'gr.test' })).status, 200, `request ${i}`, { diagnostic: false });
  }
  await waitFor('200 Lines written', async () => (await stats(d)).kafka_spool?.segments >= 4, 10_000);
  // A segment in the middle becomes a directory: reading it fails (EISDIR).
  const segs = readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
  const victim = join(dir, segs[2]!);
  renameSync(victim, `${victim}.away`);
  mkdirSync(victim);
  await kafka.restart();
  await d.waitLog((l) => l.msg === 'kafka spool drainer failed; retrying', 30_000);
  await waitFor('retried', async () => (await stats(d)).kafka_spool?.drain_errors_total >= 2, 30_000);
  t.ok((await stats(d)).kafka_spool.drain_errors_total >= 2, 'the drainer failed and tried again');
  rmdirSync(victim);
  renameSync(`${victim}.away`, victim);
  await waitFor('the spool empty', () => spoolEmpty(d), 60_000).catch(() => {});
  t.equal(await d.stop(), 0);
  const c = await check(topic, ids, { stopped: true });
  t.same(c.missing, [], 'every answered Line in the topic once the segment reads again');
  t.equal(c.duplicated, 0, 'none twice');
});

t.test('health follows the spool: down while a full spool drops Lines, not once it has drained', async (t) => {
  const topic = newTopic();
  await kafka.createTopic(topic, 1);
  const d = await startKafkaDaemon(kafka.bootstrap, {
    topics: { gr: topic },
    kafka: { flushTimeoutMs: 2000, spool: { dir: spoolDir(), fsyncMs: 50, maxBytes: 65536 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  await kafka.kill();
  await d.waitLog((l) => l.msg === 'librdkafka error');
  for (let i = 0; ((await stats(d)).kafka_spool?.dropped_total?.spool_full ?? 0) === 0; i++) {
    t.equal((await request(d.port, `/track?id=${i}&pad=${'p'.repeat(500)}`, { host: 'gr.test' })).status, 200, `request ${i}`, { diagnostic: false });
  }
  const full = await health(d);
  t.equal(full.body.backends.kafka?.state, 'down', `the spool drops Lines: ${full.body.backends.kafka?.reason}`);
  await kafka.restart();
  await waitFor('the spool empty', () => spoolEmpty(d), 60_000);
  await sleep(500);
  const drained = await health(d);
  t.not(drained.body.backends.kafka?.state, 'down', `drained: ${JSON.stringify(drained.body.backends.kafka)}`);
  t.equal(drained.status, 200, '/health 200 again');
  t.equal(await d.stop(), 0);
});

// Issue 34 part 5: the broker is killed between auto-creating the topic and
// answering for it.
t.test('a topic auto-created as an outage begins: its first Lines are not lost', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, {
    kafka: { flushTimeoutMs: 2000, spool: { dir: spoolDir(), fsyncMs: 50 }, rdkafka: { 'topic.metadata.propagation.max.ms': 2000 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  const ids: string[] = [];
  const sending = (async () => {
    for (let i = 0; i < 50; i++) {
      ids.push(String(i));
      await request(d.port, `/track?id=${i}`, { host: 'uk.test' });
    }
  })();
  await sleep(15);
  await kafka.kill();
  await sending;
  await sleep(5000);
  await kafka.restart();
  await waitFor('the spool empty', () => spoolEmpty(d), 60_000).catch(() => {});
  await sleep(2000);
  const s = await stats(d);
  t.equal(s.backends?.kafka?.dropped, 0, 'nothing dropped');
  // Back, the broker said "unknown topic" (it creates it again), after
  // topic.metadata.propagation.max.ms: librdkafka failed the Lines. Those
  // were lost when the producer had counted the broker up by then.
  t.ok(d.logs.some((l) => l.msg === 'kafka delivery failed, Line re-spooled' && l.code === 'ERR_UNKNOWN_TOPIC_OR_PART'), 'the fault happened: unknown topic while no broker answered');
  t.equal(await d.stop(), 0);
  const c = await check(d.topics.uk!, ids, { stopped: true });
  t.same(c.missing, []);
});

// The order of the killed case in which it lost Lines, made certain: a
// paused broker keeps its connection, so the producer counts it up all
// along; once it runs again it answers "unknown topic" while it creates the
// topic, after librdkafka's window for that topic has passed.
t.test('a broker paused before it creates a new topic, for longer than the propagation window: no Line lost', async (t) => {
  const d = await startKafkaDaemon(kafka.bootstrap, {
    kafka: { flushTimeoutMs: 2000, spool: { dir: spoolDir(), fsyncMs: 50 }, rdkafka: { 'topic.metadata.propagation.max.ms': 1000 } },
  });
  t.teardown(async () => {
    await kafka.resume();
    await d.stop();
  });
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  await kafka.pause();
  const ids = Array.from({ length: 20 }, (_, i) => String(i));
  for (const id of ids) t.equal((await request(d.port, `/track?id=${id}`, { host: 'uk.test' })).status, 200);
  // Longer than the window, shorter than the broker's own session timeout
  // (its controller would fence it) and than the producer's stall.
  await sleep(1500);
  await kafka.resume();
  const settled = async (): Promise<boolean> => {
    const k = (await stats(d)).backends?.kafka;
    return k.persisted + k.dropped === ids.length;
  };
  await waitFor('every Line delivered or dropped', settled, 60_000).catch(() => {});
  const s = await stats(d);
  t.equal(s.backends?.kafka?.dropped, 0, 'nothing dropped');
  t.ok(d.logs.some((l) => /^kafka delivery failed/.test(String(l.msg)) && l.code === 'ERR_UNKNOWN_TOPIC_OR_PART'),
    'the fault happened: unknown topic from a broker that answers');
  t.equal(await d.stop(), 0);
  const c = await check(d.topics.uk!, ids, { stopped: true });
  t.same(c.missing, []);
});

t.test('a spooled Line Kafka refuses counts as dropped, not drained', async (t) => {
  const topic = newTopic();
  await kafka.createTopic(topic, 1, { 'max.message.bytes': '2000' });
  const d = await startKafkaDaemon(kafka.bootstrap, {
    topics: { gr: topic },
    kafka: { flushTimeoutMs: 2000, spool: { dir: spoolDir(), fsyncMs: 50 } },
  });
  t.teardown(() => d.stop());
  await d.waitLog((l) => l.msg === 'kafka producer connected');
  await kafka.kill();
  await d.waitLog((l) => l.msg === 'librdkafka error');
  for (let i = 0; i < 10; i++) {
    // Over the topic's limit even compressed (random): the broker refuses it.
    const pad = i === 5 ? `&pad=${randomBytes(3000).toString('hex')}` : '';
    t.equal((await request(d.port, `/track?id=${i}${pad}`, { host: 'gr.test' })).status, 200);
  }
  await waitFor('10 spooled', async () => (await stats(d)).kafka_spool?.spilled_total === 10, 10_000);
  await kafka.restart();
  await waitFor('the spool empty', () => spoolEmpty(d), 60_000).catch(() => {});
  const s = await stats(d);
  // The broker refuses the whole batch the big Line is in (docs/faults.md: batch.size row).
  const { dropped, persisted } = s.backends.kafka as { dropped: number; persisted: number };
  t.ok(dropped >= 1, `refused Lines dropped: ${dropped}`);
  t.equal(s.kafka_spool?.drained_total, persisted, 'drained_total = the Lines Kafka has');
  t.equal(dropped + s.kafka_spool?.drained_total, 10, 'each Line counted once: drained or dropped');
  t.equal(await d.stop(), 0);
});
